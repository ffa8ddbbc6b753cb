/**
 * The flush: hands the outbox to the current link in seq order, as far as the outbox's window
 * allows, while the session is ready. It stops at the first frame the link will not take, and
 * as soon as the link is no longer current (a send that failed synchronously dropped it), so a
 * message can never be overtaken by the ones after it. A send result that frees the window
 * pumps again: later when it comes later (mini programs), or by letting the running loop go on
 * when it comes synchronously (browsers, Node), since one nested call per message would
 * overflow the stack on a long replay.
 *
 * With `ack` on, one timer watches the link: while anything is in flight, some ack must come
 * within `ack.timeout`, or the link is dropped (`ACK_TIMEOUT`) and what was in flight is sent
 * again on the next one, in order, with the same ids.
 */
import { MpbusError } from '../errors'
import type { Outbox } from '../outbox'
import type { SocketData } from '../platform/types'
import type { Link } from '../transport'
import type { Framing } from './framing'
import type { Pending } from './pending'

export interface Flush {
  /** The link to flush to from now on (it may not be ready yet). */
  attach(link: Link): void
  /** The link ended: everything in flight waits for the next one. */
  detach(): void
  /** Sends what the window allows, now. */
  pump(): void
  /** Pumps at the next macrotask: one pass for every send of this one. */
  schedule(): void
  /** The server acknowledged `id`. */
  acked(id: string): void
}

export function createFlush(
  outbox: Outbox,
  framing: Framing,
  pending: Pending,
  ackTimeout: number | undefined,
  isReady: () => boolean,
  report: (error: MpbusError) => void,
): Flush {
  let link: Link | undefined
  let pumping = false
  let pumpTimer: ReturnType<typeof setTimeout> | undefined
  let ackTimer: ReturnType<typeof setTimeout> | undefined
  /** Sent on this link and not yet acknowledged. */
  let unacked = 0

  function watchAcks(restart: boolean): void {
    if (restart) {
      clearTimeout(ackTimer)
      ackTimer = undefined
    }
    if (ackTimer !== undefined || !unacked || !link) return
    const watched = link
    ackTimer = setTimeout(() => {
      ackTimer = undefined
      watched.drop(new MpbusError('ACK_TIMEOUT', `no ack within ${ackTimeout} ms`))
    }, ackTimeout)
  }

  function result(sentOn: Link, id: string) {
    return (error?: MpbusError) => {
      if (sentOn !== link || !sentOn.current) return
      if (error) {
        // The socket refused a send while we thought it open: the link is broken.
        outbox.rewind()
        sentOn.drop(error)
        return
      }
      if (outbox.sent(id)) pending.delivered(id)
      pump()
    }
  }

  function pump(): void {
    clearTimeout(pumpTimer)
    pumpTimer = undefined
    const current = link
    if (!current || pumping || !isReady()) return
    pumping = true
    try {
      // `link === current` too: a listener called from inside the loop (a drop) may close the bus.
      while (link === current && current.current) {
        const envelope = outbox.next()
        if (!envelope) break
        const { id } = envelope
        let data: SocketData
        try {
          data = framing.encode(envelope.op, envelope.payload, id)
        } catch (e) {
          // A codec that throws on this message fails its send; it never blocks the ones after it.
          outbox.remove(id)
          report(e as MpbusError)
          pending.failed(id, e as MpbusError)
          continue
        }
        pending.sent(id)
        if (!current.send(data, result(current, id))) {
          outbox.rewind()
          break
        }
        if (ackTimeout !== undefined) {
          unacked++
          watchAcks(false)
        }
      }
    } finally {
      pumping = false
    }
  }

  return {
    attach(next) {
      link = next
      unacked = 0
      watchAcks(true)
    },
    detach() {
      link = undefined
      clearTimeout(pumpTimer)
      pumpTimer = undefined
      outbox.rewind()
      watchAcks(true)
    },
    pump,
    schedule() {
      if (pumpTimer === undefined && link) pumpTimer = setTimeout(pump, 0)
    },
    acked(id) {
      if (!outbox.ack(id)) return
      pending.delivered(id)
      if (unacked) unacked--
      watchAcks(true)
      pump()
    },
  }
}

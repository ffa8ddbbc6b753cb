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
 * again on the next one, in order, with the same ids. An ack only notes its time; the timer,
 * when it fires, waits out the rest from there: one timer per `ack.timeout`, not a re-arm per ack.
 * The acks of one frame (a batched ack) are settled in the order the frame lists them, then the
 * window refills in one pass: one burst of writes per batched ack.
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
  /**
   * The server acknowledged these ids (one frame's worth); unknown ones are ignored. With `refusal`,
   * it refused them: they leave the outbox too (a refusal is final, never resent), and fail with it.
   */
  acked(ids: unknown[], refusal?: MpbusError): void
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
  /** When the watch started, or the last ack came (Date.now()). */
  let heard = 0
  /** Sent on this link and not yet acknowledged. */
  let unacked = 0

  function stopWatch(): void {
    clearTimeout(ackTimer)
    ackTimer = undefined
  }

  function watch(wait: number): void {
    const watched = link!
    ackTimer = setTimeout(() => {
      const left = heard + ackTimeout! - Date.now()
      if (left > 0) return watch(left)
      ackTimer = undefined
      watched.drop(new MpbusError('ACK_TIMEOUT', `no ack within ${ackTimeout} ms`))
    }, wait)
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
    if (pumpTimer !== undefined) clearTimeout(pumpTimer)
    pumpTimer = undefined
    const current = link
    if (!current || pumping || !isReady()) return
    pumping = true
    try {
      // `link === current` too: a listener called from inside the loop (a drop) may close the bus.
      while (link === current && current.current) {
        const next = outbox.next()
        if (!next) break
        const id = next.id
        let data: SocketData
        try {
          data = framing.queued(next.json, id)
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
        // `link === current`: a send that failed synchronously has dropped the link by now.
        if (ackTimeout !== undefined && link === current && !unacked++) {
          heard = Date.now()
          watch(ackTimeout)
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
      stopWatch()
    },
    detach() {
      link = undefined
      clearTimeout(pumpTimer)
      pumpTimer = undefined
      outbox.rewind()
      unacked = 0
      stopWatch()
    },
    pump,
    schedule() {
      if (pumpTimer === undefined && link) pumpTimer = setTimeout(pump, 0)
    },
    acked(ids, refusal) {
      let any = false
      for (const each of ids) {
        const id = String(each)
        if (!outbox.ack(id)) continue
        any = true
        refusal ? pending.failed(id, refusal) : pending.delivered(id)
        if (unacked) unacked--
      }
      if (!any) return
      heard = Date.now()
      if (!unacked) stopWatch()
      pump()
    },
  }
}

// The flush (src/bus/flush.ts): the outbox to the current link in seq order, as far as the
// window allows, never overtaking; a broken send rewinds; with acks on, one timer watches them.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createFlush } from '../src/bus/flush'
import { createFraming } from '../src/bus/framing'
import { type BusOptions, resolveOptions } from '../src/bus/options'
import { createPending } from '../src/bus/pending'
import { MpbusError } from '../src/errors'
import type { OutboxOptions } from '../src/outbox'
import { createFakeLink } from './helpers/fake-link'
import { createOutbox } from './helpers/resolved'
import { createScriptPlatform } from './helpers/script-platform'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function setup(outboxOptions: OutboxOptions = {}, busOptions: Partial<BusOptions> = {}) {
  const options = resolveOptions({ url: 'ws://x', platform: createScriptPlatform().platform, ...busOptions })
  const outbox = createOutbox({ ack: !!options.ack, ...outboxOptions })
  const pending = createPending()
  const errors: MpbusError[] = []
  let ready = true
  const flush = createFlush(
    outbox,
    createFraming(options, () => {}),
    pending,
    options.ack && options.ack.timeout,
    () => ready,
    (e) => errors.push(e),
  )
  const send = (n: number) => {
    const { id } = outbox.enqueue('M', { n })
    return {
      id,
      settled: pending.send(id).then(
        () => 'delivered',
        (e: MpbusError) => e.code,
      ),
    }
  }
  return { outbox, flush, pending, errors, send, setReady: (on: boolean) => (ready = on) }
}

const ns = (sent: unknown[]) => sent.map((data) => JSON.parse(data as string).n)
const ids = (sent: unknown[]) => sent.map((data) => JSON.parse(data as string).MsgId)

describe('flush', () => {
  it('sends in seq order only while the session is ready', () => {
    const { flush, send, setReady } = setup()
    const link = createFakeLink()
    for (let n = 1; n <= 3; n++) send(n)
    setReady(false)
    flush.attach(link)
    flush.pump()
    expect(link.sent).toEqual([])
    setReady(true)
    flush.pump()
    expect(ns(link.sent)).toEqual([1, 2, 3])
  })

  it('stops at the window, and each send result that frees it sends the next', async () => {
    const { flush, send, outbox } = setup({ window: 2 })
    const link = createFakeLink()
    const sends = [1, 2, 3, 4].map(send)
    flush.attach(link)
    flush.pump()
    expect(ns(link.sent)).toEqual([1, 2])
    link.dones[0]!()
    expect(ns(link.sent)).toEqual([1, 2, 3])
    link.dones[1]!()
    link.dones[2]!()
    link.dones[3]!()
    expect(outbox.size).toBe(0)
    expect(await Promise.all(sends.map((s) => s.settled))).toEqual(Array(4).fill('delivered'))
  })

  it('a link that takes nothing stops the pass; the next link gets everything from the first, same ids', () => {
    const { flush, send } = setup()
    const first = createFakeLink()
    send(1)
    send(2)
    flush.attach(first)
    flush.pump()
    first.accepting = false
    send(3)
    flush.pump()
    expect(ns(first.sent)).toEqual([1, 2])
    flush.detach()
    const second = createFakeLink()
    flush.attach(second)
    flush.pump()
    expect(ns(second.sent)).toEqual([1, 2, 3])
    expect(ids(second.sent).slice(0, 2)).toEqual(ids(first.sent))
  })

  it('a frame the link refused is not lost when the same link takes frames again (back from the background)', () => {
    const { flush, send } = setup()
    const link = createFakeLink()
    send(1)
    flush.attach(link)
    flush.pump()
    link.accepting = false
    send(2)
    flush.pump()
    link.accepting = true
    flush.pump()
    expect(ns(link.sent)).toContain(2)
  })

  it('a send the platform fails drops the link with its error; what was in flight goes again on the next', () => {
    const { flush, send, outbox } = setup()
    const first = createFakeLink()
    send(1)
    send(2)
    flush.attach(first)
    flush.pump()
    const error = new MpbusError('SOCKET_ERROR', 'send failed')
    first.dones[0]!(error)
    expect(first.dropped).toEqual([error])
    expect(outbox.size).toBe(2)
    flush.detach()
    const second = createFakeLink()
    flush.attach(second)
    flush.pump()
    expect(ns(second.sent)).toEqual([1, 2])
  })

  it('a codec that throws on one message fails that message alone; the next ones go', async () => {
    const { flush, send, errors, outbox } = setup(
      {},
      {
        codec: {
          encode: (frame) => {
            if (frame.n === 2) throw new Error('cannot encode')
            return JSON.stringify(frame)
          },
          decode: (data) => JSON.parse(data as string),
        },
      },
    )
    const link = createFakeLink()
    const sends = [1, 2, 3].map(send)
    flush.attach(link)
    flush.pump()
    expect(ns(link.sent)).toEqual([1, 3])
    expect(errors.map((e) => e.code)).toEqual(['BAD_PAYLOAD'])
    expect(await sends[1]!.settled).toBe('BAD_PAYLOAD')
    expect(outbox.size).toBe(2)
  })

  describe('with acks', () => {
    it('a message leaves on its ack, not on its send result; unknown ids are ignored', async () => {
      const { flush, send, outbox } = setup({}, { ack: true })
      const link = createFakeLink()
      const a = send(1)
      send(2)
      flush.attach(link)
      flush.pump()
      for (const done of link.dones) done()
      expect(outbox.size).toBe(2)
      flush.acked(['nope', a.id])
      expect(outbox.size).toBe(1)
      expect(await a.settled).toBe('delivered')
    })

    it('no ack within ack.timeout drops the link ACK_TIMEOUT; each ack restarts the wait', () => {
      const { flush, send } = setup({}, { ack: { timeout: 1000 } })
      const link = createFakeLink()
      const a = send(1)
      send(2)
      flush.attach(link)
      flush.pump()
      vi.advanceTimersByTime(900)
      flush.acked([a.id])
      vi.advanceTimersByTime(900)
      expect(link.dropped).toEqual([])
      vi.advanceTimersByTime(100)
      expect(link.dropped.map((e) => e.code)).toEqual(['ACK_TIMEOUT'])
    })

    it('once everything is acked the watch stops: an idle link is never dropped', () => {
      const { flush, send } = setup({}, { ack: { timeout: 1000 } })
      const link = createFakeLink()
      const a = send(1)
      flush.attach(link)
      flush.pump()
      flush.acked([a.id])
      vi.advanceTimersByTime(10_000)
      expect(link.dropped).toEqual([])
      expect(vi.getTimerCount()).toBe(0)
    })
  })
})

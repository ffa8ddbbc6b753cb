// Acknowledgements at throughput (issue 13): the batched ack form (`MsgIds`, docs/protocol.md)
// beside the one-id form, no timer work per inbound frame, the test server's batching, and the
// frame of a queued message spliced from its payload's JSON.
import fc from 'fast-check'
import { afterEach, describe, expect, it, vi } from 'vitest'
import WebSocket from 'ws'
import { createFraming } from '../src/bus/framing'
import { createBus, webSocketPlatform } from '../src/index'
import { encode } from '../src/outbox/record'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { createTestServer } from '../src/testing/index'
import { byteLength } from '../src/utf8'
import { createOutbox } from './helpers/resolved'
import { setupBus } from './helpers/script-bus'

afterEach(() => {
  // Spies first: restoring one after the clock would put a fake timer function back.
  vi.restoreAllMocks()
  vi.useRealTimers()
})

const tick = () => vi.advanceTimersByTimeAsync(0)
const ack = (ids: unknown[]) => JSON.stringify({ Operator: 'Ack', MsgIds: ids })

describe('batched acks', () => {
  it('one batched ack settles several sends, in the order it lists them', async () => {
    vi.useFakeTimers()
    const { sp, bus, frames, errors } = setupBus({ ack: true })
    const order: number[] = []
    const sends = [0, 1, 2, 3].map((n) => bus.send('M', { n }).then(() => order.push(n)))
    sp.last!.open()
    await tick()
    const ids = frames().map((f) => f.MsgId)
    expect(ids).toHaveLength(4)
    sp.last!.message(ack([ids[2], ids[0], ids[1]]))
    await tick()
    expect(order).toEqual([2, 0, 1])
    expect(bus.queued).toBe(1)
    // The one-id form still works beside it.
    sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgId: ids[3] }))
    await Promise.all(sends)
    expect(order).toEqual([2, 0, 1, 3])
    expect(bus.queued).toBe(0)
    expect(errors).toEqual([])
    bus.close()
  })

  it('unknown, repeated, already-acked and malformed ids are harmless: nothing settles twice, nothing else moves', async () => {
    vi.useFakeTimers()
    const { sp, bus, frames, errors } = setupBus({ ack: { timeout: 1000 } })
    const settled: string[] = []
    for (const n of [0, 1])
      bus.send('M', { n }).then(
        () => settled.push(`${n}`),
        (e) => settled.push(e.code),
      )
    sp.last!.open()
    await tick()
    const [a, b] = frames().map((f) => f.MsgId)
    sp.last!.message(ack([a, 'never-sent', a, 42, null, { id: b }]))
    await tick()
    expect(settled).toEqual(['0'])
    sp.last!.message(ack([a])) // acked already
    sp.last!.message(ack([])) // empty
    sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgIds: b })) // not a list: no id at all
    await tick()
    expect(settled).toEqual(['0'])
    expect(bus.queued).toBe(1)
    sp.last!.message(ack([b, b]))
    await tick()
    expect(settled).toEqual(['0', '1'])
    expect(errors).toEqual([])
    expect(sp.sockets).toHaveLength(1)
    // Nothing in flight: no ack watch left to fire.
    await vi.advanceTimersByTimeAsync(5000)
    expect(sp.sockets).toHaveLength(1)
    bus.close()
  })

  it('a batched ack restarts the ack watch, as a single one does', async () => {
    vi.useFakeTimers()
    const { sp, bus, frames, errors } = setupBus({ ack: { timeout: 2000 }, outbox: { window: 4 } })
    for (let n = 0; n < 6; n++) bus.send('M', { n }).catch(() => {})
    sp.last!.open()
    await tick()
    const ids = frames().map((f) => f.MsgId)
    expect(ids).toHaveLength(4)
    await vi.advanceTimersByTimeAsync(1500)
    sp.last!.message(ack(ids.slice(0, 2)))
    await tick()
    expect(frames().map((f) => f.n)).toEqual([0, 1, 2, 3, 4, 5]) // the window refilled
    await vi.advanceTimersByTimeAsync(1999)
    expect(sp.sockets).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(errors.map((e) => e.code)).toEqual(['ACK_TIMEOUT'])
    sp.last!.open()
    await tick()
    // What was in flight goes again, in order, with the same ids.
    expect(frames().map((f) => f.n)).toEqual([2, 3, 4, 5])
    bus.close()
  })

  it('inbound frames and acks arm no timer: 200 acks, one at a time, with heartbeat and ack watch on', async () => {
    vi.useFakeTimers()
    const { sp, bus, frames } = setupBus({ ack: true, heartbeat: { interval: 1000, timeout: 500 } })
    const sends = Array.from({ length: 200 }, (_, n) => bus.send('M', { n }))
    sp.last!.open()
    await tick()
    const ids = frames().map((f) => f.MsgId)
    expect(ids).toHaveLength(200)
    const set = vi.spyOn(globalThis, 'setTimeout')
    const clear = vi.spyOn(globalThis, 'clearTimeout')
    for (const MsgId of ids.slice(0, 199)) sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgId }))
    await tick()
    expect(set).not.toHaveBeenCalled()
    // The outbox's commit at the end of the task clears its (unarmed) retry timer: once, not per ack.
    expect(clear.mock.calls.length).toBeLessThanOrEqual(1)
    sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgId: ids[199] }))
    await Promise.all(sends)
    // The last ack leaves nothing in flight: the watch stops (one clearTimeout), nothing is armed.
    expect(set).not.toHaveBeenCalled()
    set.mockRestore()
    clear.mockRestore()
    // The heartbeat still pings `interval` after the last frame, and calls the link dead `timeout` later.
    await vi.advanceTimersByTimeAsync(999)
    expect(frames().filter((f) => f.Operator === 'Heart')).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(1)
    expect(frames().filter((f) => f.Operator === 'Heart')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(500)
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    bus.close()
  })

  it('handlers of the ack operator see batched acks too', async () => {
    vi.useFakeTimers()
    const { sp, bus, frames } = setupBus({ ack: true })
    const seen: unknown[] = []
    bus.on('Ack', (frame) => seen.push(frame.MsgIds))
    const sent = [bus.send('M', 1), bus.send('M', 2)]
    sp.last!.open()
    await tick()
    const ids = frames().map((f) => f.MsgId)
    sp.last!.message(ack(ids))
    await Promise.all(sent)
    expect(seen).toEqual([ids])
    bus.close()
  })
})

describe('test server: ack.batch', () => {
  it('coalesces the acks of one macrotask into one MsgIds frame, and a lone id goes as MsgId', async () => {
    const server = await createTestServer({ ack: { batch: true } })
    const bus = createBus({ url: server.url, platform: webSocketPlatform(WebSocket), ack: true })
    const acks: any[] = []
    bus.on('Ack', (frame) => acks.push(frame))
    try {
      await bus.send('M', { n: -1 })
      expect(acks).toHaveLength(1)
      expect(acks[0]).toHaveProperty('MsgId')
      expect(acks[0]).not.toHaveProperty('MsgIds')
      acks.length = 0
      // 100 sends go out in one pass; the server reads them together and acks them together.
      await Promise.all(Array.from({ length: 100 }, (_, n) => bus.send('M', { n })))
      const ids = acks.flatMap((frame) => frame.MsgIds || [frame.MsgId])
      expect(ids).toHaveLength(100)
      expect(acks.length).toBeLessThan(100)
      expect(acks.some((frame) => frame.MsgIds && frame.MsgIds.length > 1)).toBe(true)
      expect(server.received.slice(1).map((r) => r.frame.n)).toEqual(Array.from({ length: 100 }, (_, n) => n))
      // What the server acknowledged, in the order it received it.
      expect(ids).toEqual(server.received.slice(1).map((r) => r.frame.MsgId))
    } finally {
      bus.close()
      await server.close()
    }
  })
})

describe('the frame of a queued message', () => {
  const framing = createFraming(
    { opKey: 'Operator', idKey: 'MsgId', maxInboundBytes: 1 << 20 } as any,
    () => {},
  )
  const jsonObject = fc.oneof(
    fc.dictionary(fc.string(), fc.jsonValue()),
    // The fields the frame sets, at the top and deeper.
    fc.record({ Operator: fc.jsonValue(), x: fc.jsonValue() }, { requiredKeys: [] }),
    fc.record({ MsgId: fc.jsonValue(), y: fc.record({ Operator: fc.string() }) }, { requiredKeys: [] }),
  )

  /** The JSON the outbox holds for a message: record.ts's `encode`, as enqueue writes it. */
  const queued = (op: string, payload: unknown, id: string) =>
    framing.queued(
      encode({ id, seq: 7, op, payload, createdAt: 1, expiresAt: 2 }, JSON.stringify(payload)),
      id,
    )

  it('is the frame a fresh payload gets, whatever the payload, operator or id (spliced from the stored JSON)', () => {
    fc.assert(
      fc.property(
        fc.oneof(jsonObject, fc.jsonValue()),
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        (value, op, id) => {
          // A queued payload came back from JSON: the same here.
          const payload = JSON.parse(JSON.stringify(value) ?? 'null')
          const fast = queued(op, payload, id) as string
          const slow = framing.encode(op, payload, id) as string
          expect(JSON.parse(fast)).toEqual(JSON.parse(slow))
          expect(JSON.parse(fast).Operator).toBe(op)
          expect(JSON.parse(fast).MsgId).toBe(id)
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('keeps an own __proto__ key as data; an empty or missing payload is just the operator and the id; a payload naming the keys is decoded', () => {
    const payload = JSON.parse('{"__proto__":{"polluted":1},"a":2}')
    expect(queued('Op', payload, 'i')).toBe('{"Operator":"Op","__proto__":{"polluted":1},"a":2,"MsgId":"i"}')
    expect(queued('Op', {}, 'i')).toBe('{"Operator":"Op","MsgId":"i"}')
    expect(queued('Op', undefined, 'i')).toBe('{"Operator":"Op","MsgId":"i"}')
    expect(queued('Op', [1, { a: 2 }], 'i')).toBe('{"Operator":"Op","data":[1,{"a":2}],"MsgId":"i"}')
    // The frame's own keys win, as `encode` has them.
    expect(JSON.parse(queued('Op', { MsgId: 'x', n: { Operator: 1 } }, 'i') as string)).toEqual({
      Operator: 'Op',
      MsgId: 'i',
      n: { Operator: 1 },
    })
    expect(({} as any).polluted).toBeUndefined()
  })

  it('from damaged stored data: odd createdAt and expiresAt are not trusted, an empty id is a corrupt record', () => {
    const storage = createMemoryStorage()
    const stored = [
      { id: 'a', seq: 1, op: 'x', payload: { k: 1 }, createdAt: { a: 1, createdAt: 2 } },
      { id: 'b', seq: 2, op: 'x', createdAt: { a: 1, payload: 2 }, expiresAt: null },
      { id: 'c', seq: 3, op: 'x', payload: [1], createdAt: 5, expiresAt: '5' },
      { id: '', seq: 4, op: 'x', createdAt: 5 },
    ]
    storage.set('mpbus/1', JSON.stringify({ v: 1, m: stored }))
    const errors: string[] = []
    const outbox = createOutbox({ storage, now: () => 1e15 })
    outbox.on('error', (e) => errors.push(e.code))
    const frames: unknown[] = []
    for (let next = outbox.next(); next; next = outbox.next())
      frames.push(JSON.parse(framing.queued(next.json, next.id) as string))
    // Kept until sent (a damaged field loses no message), each frame what `encode` gives.
    expect(frames).toEqual([
      { Operator: 'x', k: 1, MsgId: 'a' },
      { Operator: 'x', MsgId: 'b' },
      { Operator: 'x', data: [1], MsgId: 'c' },
    ])
    expect(errors).toEqual(['CORRUPT_RECORD'])
  })

  it('is the frame a fresh payload gets with other operator and id keys too, `data` and odd characters included', () => {
    const keys = fc.constantFrom('Operator', 'MsgId', 'op', 'id', 'data', 'a"b', 'x\\y', '__proto__x')
    fc.assert(
      fc.property(
        keys,
        keys,
        fc.oneof(
          fc.dictionary(fc.constantFrom('op', 'id', 'data', 'a"b', 'k'), fc.jsonValue()),
          fc.jsonValue(),
        ),
        fc.string({ minLength: 1 }),
        (opKey, idKey, value, op) => {
          fc.pre(opKey !== idKey)
          const keyed = createFraming({ opKey, idKey, maxInboundBytes: 1 << 20 } as any, () => {})
          const payload = JSON.parse(JSON.stringify(value) ?? 'null')
          const json = encode({ id: 'i-1', seq: 1, op, payload, createdAt: 1 }, JSON.stringify(payload))
          expect(JSON.parse(keyed.queued(json, 'i-1') as string)).toEqual(
            JSON.parse(keyed.encode(op, payload, 'i-1') as string),
          )
        },
      ),
      { numRuns: 1000 },
    )
  })

  it('with a codec, goes through the codec', () => {
    const seen: unknown[] = []
    const coded = createFraming(
      {
        opKey: 'op',
        idKey: 'id',
        maxInboundBytes: 1 << 20,
        codec: { encode: (frame: unknown) => (seen.push(frame), 'x'), decode: JSON.parse },
      } as any,
      () => {},
    )
    expect(coded.queued(encode({ id: 'i', seq: 1, op: 'Op', payload: { a: 1 }, createdAt: 1 }), 'i')).toBe(
      'x',
    )
    expect(seen).toEqual([{ op: 'Op', a: 1, id: 'i' }])
  })
})

describe('byteLength', () => {
  it('counts UTF-8 bytes, ASCII or not', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(byteLength(text)).toBe(Buffer.byteLength(text))
      }),
      { numRuns: 1000 },
    )
    expect(byteLength('x'.repeat(100))).toBe(100)
  })
})

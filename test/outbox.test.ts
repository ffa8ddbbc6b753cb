import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../src/errors'
import type { Envelope, OutboxEvents, OutboxOptions } from '../src/outbox'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { alipayPlatform, miniProgramPlatform } from '../src/platform/mini-program'
import type { Storage } from '../src/platform/types'
import { createMyRuntime, createStorageArea, createWxRuntime } from '../src/testing'
import { createOutbox, nextOf } from './helpers/resolved'
import { useOutboxClock } from './outbox.clock'
import { createCountingStorage, createQuotaStorage } from './outbox.storage'

const DAY = 24 * 3600e3

let time = 1_000_000
const now = () => time

beforeEach(() => {
  useOutboxClock()
  time = 1_000_000
})
afterEach(() => {
  vi.useRealTimers()
})

/** An outbox whose events are recorded. */
function open(options: OutboxOptions = {}) {
  const outbox = createOutbox({ now, ...options })
  const seen = {
    drops: [] as OutboxEvents['drop'][],
    delivered: [] as Envelope[],
    errors: [] as MpbusError[],
  }
  outbox.on('drop', (d) => seen.drops.push(d))
  outbox.on('delivered', (e) => seen.delivered.push(e))
  outbox.on('error', (e) => seen.errors.push(e))
  return Object.assign(outbox, { seen })
}

/** The mark stored under `prefix`: `[low, next]`, or undefined before anything left the queue. */
function mark(storage: Storage, prefix = 'mpbus'): [number, number] | undefined {
  const raw = storage.get(`${prefix}/seq`)
  return raw === undefined ? undefined : JSON.parse(raw)
}

/**
 * The seqs still queued in storage under `prefix`, record by record, in key order: envelopes below
 * the mark's `low` have left the queue (layout v1, see src/outbox), so they are not listed.
 */
function stored(storage: Storage, prefix = 'mpbus'): number[][] {
  const low = mark(storage, prefix)?.[0] ?? 0
  return storage
    .keys()
    .filter((k) => /^\d+$/.test(k.slice(prefix.length + 1)) && k.startsWith(prefix + '/'))
    .sort((a, b) => +a.slice(prefix.length + 1) - +b.slice(prefix.length + 1))
    .map((k) =>
      JSON.parse(storage.get(k)!)
        .m.map((e: Envelope) => e.seq)
        .filter((seq: number) => seq >= low),
    )
}

const flush = () => vi.runOnlyPendingTimers()
const drain = (outbox: ReturnType<typeof open>) => {
  const out: Envelope[] = []
  for (let e = nextOf(outbox); e; e = nextOf(outbox)) out.push(e)
  return out
}

describe('enqueue', () => {
  it('makes an envelope with a fresh id, the next seq, the time and the default ttl', () => {
    const outbox = open()
    const a = outbox.enqueue('Chat', { text: 'hi' })
    const b = outbox.enqueue('Chat', [1, 2])
    expect(a).toEqual({
      id: a.id,
      seq: 1,
      op: 'Chat',
      payload: { text: 'hi' },
      createdAt: time,
      expiresAt: time + 7 * DAY,
    })
    expect(a.id).toMatch(/^[a-z0-9]{8,}-1$/)
    expect(b.id).not.toBe(a.id)
    // Another outbox (another bus, device or life) draws another random part.
    expect(open().enqueue('Chat', 1).id.split('-')[0]).not.toBe(a.id.split('-')[0])
    expect(b.seq).toBe(2)
    expect(outbox.size).toBe(2)
    expect(outbox.bytes).toBe(JSON.stringify(a).length + JSON.stringify(b).length)
  })

  it('counts bytes as UTF-8', () => {
    const outbox = open()
    const e = outbox.enqueue('Chat', '你好😀é')
    expect(outbox.bytes).toBe(Buffer.byteLength(JSON.stringify(e)))
  })

  it('takes a per-message ttl, and none at all for Infinity', () => {
    const outbox = open({ ttl: 1000 })
    expect(outbox.enqueue('a', 1).expiresAt).toBe(time + 1000)
    expect(outbox.enqueue('a', 1, { ttl: 5 }).expiresAt).toBe(time + 5)
    expect(outbox.enqueue('a', 1, { ttl: Number.POSITIVE_INFINITY })).not.toHaveProperty('expiresAt')
  })

  it('hands out a message without expiry (ttl Infinity) however late', () => {
    const outbox = open({ ttl: Number.POSITIVE_INFINITY })
    const e = outbox.enqueue('a', 1)
    time += 365 * 24 * 3600e3
    expect(nextOf(outbox)).toEqual(e)
  })

  it('keeps a copy: changing the payload afterwards does not change what is queued', () => {
    const outbox = open()
    const payload = { n: 1 }
    outbox.enqueue('a', payload)
    payload.n = 2
    expect(nextOf(outbox)!.payload).toEqual({ n: 1 })
  })

  it('accepts an undefined payload (stored as a missing key)', () => {
    const storage = createMemoryStorage()
    open({ storage }).enqueue('Ping', undefined)
    flush()
    const [e] = open({ storage }).list()
    expect(e!.op).toBe('Ping')
    expect(e!.payload).toBeUndefined()
  })

  const circular: any = { a: 1 }
  circular.self = circular
  it.each([
    ['circular', circular],
    ['BigInt', { n: BigInt(1) }],
    ['function', { f: () => 1 }],
    ['top-level function', () => 1],
    ['symbol', { s: Symbol('x') }],
    ['NaN', { n: Number.NaN }],
    ['Infinity', [Number.POSITIVE_INFINITY]],
    ['Map', { m: new Map([[1, 2]]) }],
    ['Set', new Set([1])],
  ])('refuses a %s payload with BAD_PAYLOAD and queues nothing', (_, payload) => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    expect(() => outbox.enqueue('Bad', payload)).toThrowError(
      expect.objectContaining({ code: 'BAD_PAYLOAD' }),
    )
    expect(outbox.size).toBe(0)
    expect(outbox.bytes).toBe(0)
    flush()
    expect(storage.counts.set).toBe(0)
    expect(outbox.enqueue('Good', 1).seq).toBe(1)
  })

  it('refuses a message one record cannot hold with TOO_LARGE', () => {
    const outbox = open({ maxBytes: 10 * 1024 * 1024 })
    expect(() => outbox.enqueue('Big', 'x'.repeat(95 * 1024))).toThrowError(
      expect.objectContaining({ code: 'TOO_LARGE' }),
    )
    expect(outbox.size).toBe(0)
    // Nearly as large still fits, in a record of its own under 100 KB.
    outbox.enqueue('Big', 'x'.repeat(89 * 1024))
    expect(outbox.size).toBe(1)
  })
})

describe('durability and layout', () => {
  it('writes one record per tick, named by its first seq, holding only what that tick added', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    for (let i = 0; i < 100; i++) outbox.enqueue('m', i)
    expect(storage.counts.set).toBe(0)
    flush()
    expect(storage.counts.set).toBe(1)
    expect(storage.keys()).toEqual(['mpbus/1'])
    const record = JSON.parse(storage.get('mpbus/1')!)
    expect(record.v).toBe(1)
    expect(record.m.map((e: Envelope) => e.payload)).toEqual(Array.from({ length: 100 }, (_, i) => i))
    storage.reset()
    const e = outbox.enqueue('m', 100)
    flush()
    expect(storage.counts).toMatchObject({ set: 1, del: 0 })
    // The envelope in the record's frame, `{"v":1,"m":[…]}`, and nothing else.
    expect(storage.counts.bytes).toBe(JSON.stringify(e).length + 14)
    expect(stored(storage)).toEqual([Array.from({ length: 100 }, (_, i) => i + 1), [101]])
  })

  it('is in storage before next() hands it out, with no timer run', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    const e = outbox.enqueue('m', 1)
    expect(storage.keys()).toEqual([])
    expect(nextOf(outbox)).toEqual(e)
    expect(stored(storage)).toEqual([[1]])
  })

  it('splits a large burst into records under 90 KB and loads them back in order', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage, maxBytes: 10 * 1024 * 1024 })
    for (let i = 0; i < 40; i++) outbox.enqueue('m', 'x'.repeat(10 * 1024))
    flush()
    const keys = storage.keys()
    expect(keys.length).toBeGreaterThanOrEqual(5)
    for (const k of keys) expect(Buffer.byteLength(storage.get(k)!)).toBeLessThanOrEqual(90 * 1024)
    expect(stored(storage).flat()).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
    expect(
      open({ storage })
        .list()
        .map((e) => e.seq),
    ).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
  })

  it('keeps two prefixes apart on one storage', () => {
    const storage = createMemoryStorage()
    const a = open({ storage, prefix: 'a' })
    const b = open({ storage, prefix: 'a/b' })
    a.enqueue('x', 'A')
    b.enqueue('x', 'B')
    flush()
    expect(storage.keys().sort()).toEqual(['a/1', 'a/b/1'])
    expect(
      open({ storage, prefix: 'a' })
        .list()
        .map((e) => e.payload),
    ).toEqual(['A'])
    expect(
      open({ storage, prefix: 'a/b' })
        .list()
        .map((e) => e.payload),
    ).toEqual(['B'])
  })

  it('loads lazily, once', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    expect(storage.counts.keys).toBe(0)
    outbox.list()
    outbox.enqueue('m', 1)
    nextOf(outbox)
    outbox.load()
    expect(storage.counts.keys).toBe(1)
  })

  it('survives a reload with the same ids, order and in-flight ones waiting again', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    const sent = [outbox.enqueue('m', 1), outbox.enqueue('m', 2), outbox.enqueue('m', 3)]
    nextOf(outbox)
    const again = open({ storage })
    expect(again.list()).toEqual(sent)
    expect(nextOf(again)).toEqual(sent[0])
    expect(again.enqueue('m', 4).seq).toBe(4)
  })

  it('a kill before the commit loses only that tick', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    flush()
    outbox.enqueue('m', 2)
    expect(
      open({ storage })
        .list()
        .map((e) => e.payload),
    ).toEqual([1])
  })

  it('never restarts seq: a drained queue leaves a high-water mark', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    for (const e of drain(outbox)) outbox.sent(e.id)
    flush()
    expect(stored(storage)).toEqual([])
    expect(open({ storage }).enqueue('m', 3).seq).toBe(3)
  })

  it('finds by id what older versions stored (ids of any shape, key order of their own, sizes in `n`); an id naming another seq finds nothing', () => {
    const storage = createMemoryStorage()
    const old = [
      { id: 'V1StGXR8_Z5jdHi6B-myT', seq: 3, op: 'a', payload: { x: 1 }, createdAt: 5, expiresAt: 9e15 },
      { seq: 4, id: 'quote"and\\slash', op: 'b', createdAt: 6 },
      { id: 'other-base-5', op: 'c', seq: 5, createdAt: 7, payload: [1] },
    ]
    storage.set('mpbus/3', JSON.stringify({ v: 1, m: old, n: [90, 60, 50] }))
    const outbox = open({ storage, ack: true })
    const mine = outbox.enqueue('d', 4)
    expect(mine.id.endsWith('-6')).toBe(true)
    expect(outbox.list().map((e) => e.id)).toEqual([...old.map((e) => e.id), mine.id])
    expect(outbox.list()[1]).toEqual(old[1])
    const ids = [nextOf(outbox)!, nextOf(outbox)!, nextOf(outbox)!, nextOf(outbox)!].map((e) => e.id)
    expect(ids).toEqual([...old.map((e) => e.id), mine.id])
    // 'x-6' ends with the seq of `mine` but is not its id; 'y-3' names the first's seq.
    expect(outbox.ack('x-6')).toBe(false)
    expect(outbox.ack('y-3')).toBe(false)
    expect([mine.id, old[1]!.id, old[0]!.id, old[2]!.id].map((id) => outbox.ack(id))).toEqual([
      true,
      true,
      true,
      true,
    ])
    expect(outbox.seen.delivered.map((e) => e.op)).toEqual(['d', 'b', 'a', 'c'])
    expect(outbox.size).toBe(0)
  })

  it('load skips what the mark says has left and deletes records wholly below it', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    for (let i = 1; i <= 6; i++) {
      outbox.enqueue('m', i)
      if (i % 3 === 0) flush()
    }
    // As if a kill came between the mark's write and the delete of record 1: 1 to 4 had left.
    storage.set('mpbus/seq', '[5,7]')
    const again = open({ storage })
    expect(again.list().map((e) => e.seq)).toEqual([5, 6])
    flush()
    expect(storage.keys().sort()).toEqual(['mpbus/4', 'mpbus/seq'])
    expect(again.enqueue('m', 7).seq).toBe(7)
  })

  it.each([['x'], ['16'], ['[1]'], ['["a",2]'], ['null'], ['[3,1]'], ['[3,2]']])(
    'ignores a damaged mark %s',
    (raw) => {
      const storage = createMemoryStorage()
      const outbox = open({ storage })
      outbox.enqueue('m', 1)
      outbox.enqueue('m', 2)
      flush()
      storage.set('mpbus/seq', raw)
      const again = open({ storage })
      expect(again.list().map((e) => e.seq)).toEqual([1, 2])
      expect(again.enqueue('m', 3).seq).toBe(3)
    },
  )

  it('never reuses a seq when the newest record goes before an older one', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage, ack: true })
    outbox.enqueue('m', 1)
    flush()
    outbox.enqueue('m', 2)
    outbox.enqueue('m', 3)
    flush()
    const [, b, c] = drain(outbox)
    outbox.ack(c!.id)
    flush()
    outbox.ack(b!.id)
    flush()
    expect(stored(storage)).toEqual([[1]])
    const again = open({ storage })
    expect(again.list().map((e) => e.seq)).toEqual([1])
    expect(again.enqueue('m', 4).seq).toBe(4)
  })
})

describe('flush', () => {
  it('hands out in seq order up to the window; new messages go behind', () => {
    const outbox = open({ window: 3 })
    for (let i = 1; i <= 4; i++) outbox.enqueue('m', i)
    const first = drain(outbox)
    expect(first.map((e) => e.seq)).toEqual([1, 2, 3])
    outbox.enqueue('m', 5)
    outbox.sent(first[0]!.id)
    expect(drain(outbox).map((e) => e.seq)).toEqual([4])
    outbox.sent(first[1]!.id)
    outbox.sent(first[2]!.id)
    expect(drain(outbox).map((e) => e.seq)).toEqual([5])
  })

  it('ack off: sent() delivers', () => {
    const outbox = open()
    const e = outbox.enqueue('m', 1)
    nextOf(outbox)
    outbox.sent(e.id)
    expect(outbox.seen.delivered).toEqual([e])
    expect(outbox.size).toBe(0)
  })

  it('ack on: sent() keeps it in flight until ack(), which delivers; unknown ids are refused', () => {
    const outbox = open({ ack: true, window: 2 })
    const a = outbox.enqueue('m', 1)
    const b = outbox.enqueue('m', 2)
    outbox.enqueue('m', 3)
    expect(drain(outbox)).toEqual([a, b])
    outbox.sent(a.id)
    outbox.sent(b.id)
    expect(outbox.size).toBe(3)
    expect(nextOf(outbox)).toBeUndefined()
    expect(outbox.ack(b.id)).toBe(true)
    expect(outbox.ack(b.id)).toBe(false)
    expect(outbox.ack('nope')).toBe(false)
    expect(outbox.seen.delivered).toEqual([b])
    expect(nextOf(outbox)!.seq).toBe(3)
  })

  it('rewind resends everything in flight first, in order, with the same ids', () => {
    const outbox = open({ ack: true })
    const sent = [1, 2, 3].map((i) => outbox.enqueue('m', i))
    drain(outbox)
    outbox.ack(sent[1]!.id)
    outbox.enqueue('m', 4)
    outbox.rewind()
    expect(drain(outbox).map((e) => [e.seq, e.id])).toEqual([
      [1, sent[0]!.id],
      [3, sent[2]!.id],
      [4, expect.any(String)],
    ])
  })

  it('remove() takes a message out unsent and unreported', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    const a = outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    flush()
    expect(outbox.remove(a.id)).toBe(true)
    expect(outbox.remove(a.id)).toBe(false)
    expect(outbox.seen).toMatchObject({ delivered: [], drops: [] })
    flush()
    expect(stored(storage)).toEqual([[2]])
  })

  it('delivering in order only moves the low mark, once per tick, and deletes a drained record', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    for (let i = 0; i < 10; i++) outbox.enqueue('m', i)
    flush()
    for (let i = 0; i < 5; i++) outbox.enqueue('m', i)
    flush()
    storage.reset()
    const out = drain(outbox)
    for (const e of out.slice(0, 4)) outbox.sent(e.id)
    flush()
    // No rewrite of the record: only the mark, [low, next] (see 'never restarts seq').
    expect(storage.counts).toMatchObject({ set: 1, del: 0 })
    expect(storage.get('mpbus/seq')).toBe('[5,16]')
    expect(JSON.parse(storage.get('mpbus/1')!).m).toHaveLength(10)
    expect(stored(storage)).toEqual([
      [5, 6, 7, 8, 9, 10],
      [11, 12, 13, 14, 15],
    ])
    storage.reset()
    for (const e of out.slice(4, 10)) outbox.sent(e.id)
    flush()
    expect(storage.counts).toMatchObject({ set: 1, del: 1 })
    expect(stored(storage)).toEqual([[11, 12, 13, 14, 15]])
    // A reload skips what the mark says has left.
    expect(
      open({ storage })
        .list()
        .map((e) => e.seq),
    ).toEqual([11, 12, 13, 14, 15])
  })

  it('rewrites a record once per tick for removals out of order; the mark stays', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage, ack: true })
    for (let i = 0; i < 10; i++) outbox.enqueue('m', i)
    const out = drain(outbox)
    outbox.ack(out[0]!.id)
    flush()
    expect(mark(storage)).toEqual([2, 11])
    storage.reset()
    // 2 is still in flight: 3, 5 and 10 leave gaps that only a rewrite of the record closes.
    outbox.ack(out[2]!.id)
    outbox.ack(out[4]!.id)
    outbox.ack(out[9]!.id)
    flush()
    expect(storage.counts).toMatchObject({ set: 1, del: 0 })
    expect(stored(storage)).toEqual([[2, 4, 6, 7, 8, 9]])
    expect(mark(storage)).toEqual([2, 11])
    const again = open({ storage })
    expect(again.list().map((e) => e.seq)).toEqual([2, 4, 6, 7, 8, 9])
    expect(again.enqueue('m', 11).seq).toBe(11)
  })
  it('acks of one tick cost one write, even with next() called between them', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage, ack: true })
    for (let i = 0; i < 10; i++) outbox.enqueue('m', i)
    const out = drain(outbox)
    storage.reset()
    for (const e of out.slice(0, 5)) {
      outbox.ack(e.id)
      nextOf(outbox)
    }
    expect(storage.counts.set).toBe(0)
    flush()
    expect(stored(storage)).toEqual([[6, 7, 8, 9, 10]])
    expect(storage.counts.set).toBe(1) // the mark; in-order acks need no rewrite of the record
  })
})

describe('bounds', () => {
  it('reject: OUTBOX_FULL at maxMessages, nothing queued, nothing dropped', () => {
    const outbox = open({ maxMessages: 2 })
    outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    expect(() => outbox.enqueue('m', 3)).toThrowError(expect.objectContaining({ code: 'OUTBOX_FULL' }))
    expect(outbox.list().map((e) => e.payload)).toEqual([1, 2])
    expect(outbox.seen.drops).toEqual([])
  })

  it('reject: OUTBOX_FULL at maxBytes', () => {
    const outbox = open({ maxBytes: 300 })
    outbox.enqueue('m', 'x'.repeat(100))
    expect(() => outbox.enqueue('m', 'x'.repeat(100))).toThrowError(
      expect.objectContaining({ code: 'OUTBOX_FULL' }),
    )
    expect(outbox.size).toBe(1)
  })

  it('dropOldest: drops the oldest waiting ones, never those in flight, and reports them', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage, maxMessages: 3, overflow: 'dropOldest' })
    const [a, b, c] = [1, 2, 3].map((i) => outbox.enqueue('m', i))
    flush()
    expect(nextOf(outbox)).toEqual(a)
    const d = outbox.enqueue('m', 4)
    expect(outbox.list()).toEqual([a, c, d])
    expect(outbox.seen.drops).toHaveLength(1)
    const [drop] = outbox.seen.drops
    expect(drop!.reason).toBe('overflow')
    expect(drop!.envelopes).toEqual([b])
    expect(drop!.error).toBeInstanceOf(MpbusError)
    expect(drop!.error.code).toBe('DROPPED')
    flush()
    expect(stored(storage).flat()).toEqual([1, 3, 4])
  })

  it('dropOldest: drops as many as the bytes need, oldest first', () => {
    const outbox = open({ maxBytes: 1000, overflow: 'dropOldest' })
    const small = [1, 2, 3, 4, 5].map(() => outbox.enqueue('m', 'x'.repeat(50)))
    const each = JSON.stringify(small[0]).length
    expect(outbox.seen.drops).toEqual([])
    const big = outbox.enqueue('m', 'y'.repeat(1000 - each * 2 - 80))
    const bigSize = JSON.stringify(big).length
    // Exactly as many of the oldest as needed: the rest plus the new one fit, one more would not.
    const kept = Math.floor((1000 - bigSize) / each)
    expect(outbox.seen.drops[0]!.envelopes).toEqual(small.slice(0, 5 - kept))
    expect(outbox.list()).toEqual([...small.slice(5 - kept), big])
    expect(outbox.bytes).toBe(kept * each + bigSize)
  })

  it('dropOldest: OUTBOX_FULL when everything is in flight, and nothing is dropped', () => {
    const outbox = open({ maxMessages: 2, overflow: 'dropOldest' })
    outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    drain(outbox)
    expect(() => outbox.enqueue('m', 3)).toThrowError(expect.objectContaining({ code: 'OUTBOX_FULL' }))
    expect(outbox.size).toBe(2)
    expect(outbox.seen.drops).toEqual([])
  })

  it('drops expired messages when next() reaches them, and reports them', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage, ttl: 1000 })
    const a = outbox.enqueue('m', 1)
    const b = outbox.enqueue('m', 2, { ttl: 5000 })
    const c = outbox.enqueue('m', 3, { ttl: 100 })
    flush()
    time += 1000
    expect(nextOf(outbox)).toEqual(b)
    expect(outbox.seen.drops).toEqual([
      { reason: 'expired', envelopes: [a], error: expect.objectContaining({ code: 'EXPIRED' }) },
    ])
    expect(nextOf(outbox)).toBeUndefined()
    expect(outbox.seen.drops[1]!.envelopes).toEqual([c])
    flush()
    expect(stored(storage)).toEqual([[2]])
  })

  it('expiry is checked at next(), so a message in flight is not dropped; after rewind it is', () => {
    const outbox = open({ ttl: 1000, ack: true })
    outbox.enqueue('m', 1)
    nextOf(outbox)
    time += 2000
    expect(nextOf(outbox)).toBeUndefined()
    expect(outbox.seen.drops).toEqual([])
    outbox.rewind()
    expect(nextOf(outbox)).toBeUndefined()
    expect(outbox.seen.drops[0]!.reason).toBe('expired')
  })
})

describe('storage failures', () => {
  it('keeps the message in memory when storage is full, reports it, and catches up later', () => {
    const storage = createQuotaStorage(50)
    const outbox = open({ storage })
    const a = outbox.enqueue('m', 1)
    flush()
    expect(outbox.seen.errors.map((e) => e.code)).toEqual(['STORAGE_FULL'])
    expect(storage.keys()).toEqual([])
    const b = outbox.enqueue('m', 2)
    storage.quota = Number.POSITIVE_INFINITY
    expect(nextOf(outbox)).toEqual(a)
    // One catch-up record holds both.
    expect(stored(storage)).toEqual([[1, 2]])
    expect(open({ storage }).list()).toEqual([a, b])
  })

  it('a message that could not be stored is still sent and delivered while the app lives', () => {
    const storage = createQuotaStorage(0)
    const outbox = open({ storage })
    const a = outbox.enqueue('m', 1)
    expect(nextOf(outbox)).toEqual(a)
    outbox.sent(a.id)
    expect(outbox.seen.delivered).toEqual([a])
    expect(() => flush()).not.toThrow()
  })

  it('wraps a non-MpbusError storage failure as STORAGE_ERROR and never throws from its timer', () => {
    const storage = createQuotaStorage()
    const outbox = open({ storage })
    outbox.load()
    storage.broken = new Error('disk on fire')
    outbox.enqueue('m', 1)
    expect(() => flush()).not.toThrow()
    expect(outbox.seen.errors).toHaveLength(1)
    expect(outbox.seen.errors[0]!.code).toBe('STORAGE_ERROR')
    expect(outbox.seen.errors[0]!.message).toContain('disk on fire')
  })

  it('skips, reports and removes corrupt records, keeps newer ones; the rest loads; foreign keys are left alone', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    for (let i = 1; i <= 5; i++) {
      outbox.enqueue('m', i)
      flush()
    }
    const good = (seq: number) => JSON.parse(storage.get(`mpbus/${seq}`)!).m[0]
    storage.set('mpbus/2', '{"v":1,"m":[')
    storage.set('mpbus/3', JSON.stringify({ v: 2, m: [good(3)] }))
    storage.set('mpbus/4', JSON.stringify({ v: 1, m: [{ ...good(4), seq: 'x' }] }))
    storage.set('mpbus/other', 'x')
    storage.set('other/1', 'x')
    const again = open({ storage })
    expect(again.list().map((e) => e.payload)).toEqual([1, 5])
    expect(again.seen.errors.map((e) => [e.code, e.message])).toEqual([
      ['CORRUPT_RECORD', 'mpbus/2'],
      ['CORRUPT_RECORD', 'mpbus/3 (format 2)'],
      ['CORRUPT_RECORD', 'mpbus/4'],
    ])
    flush()
    expect(storage.keys().sort()).toEqual(['mpbus/other', 'other/1', 'mpbus/1', 'mpbus/3', 'mpbus/5'].sort())
    expect(again.enqueue('m', 6).seq).toBe(6)
  })

  it('a compaction cut short by a kill leaves duplicates that load skips and removes', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    flush()
    outbox.enqueue('m', 2)
    flush()
    const [one, two] = stored(storage).map((_, i) => storage.get(`mpbus/${i + 1}`)!)
    // What a compaction writes first: the merged record under the first key.
    storage.set('mpbus/1', one!.replace(']}', `,${JSON.stringify(JSON.parse(two!).m[0])}]}`))
    const again = open({ storage })
    expect(again.list().map((e) => e.seq)).toEqual([1, 2])
    flush()
    expect(storage.keys()).toEqual(['mpbus/1'])
  })
})

describe('compaction', () => {
  it('merges records as the queue grows: few keys, each envelope written a few times', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    const sent: Envelope[] = []
    for (let i = 0; i < 300; i++) {
      sent.push(outbox.enqueue('m', 'x'.repeat(100)))
      flush()
    }
    // A counter in base 16: one record of 256, one of 16 per 16 after it, one of 1 per message after that.
    expect(storage.keys()).toHaveLength(1 + 2 + 12)
    expect(storage.counts.set).toBe(300)
    const envelope = JSON.stringify(sent[0]).length
    expect(storage.counts.bytes / 300).toBeLessThan(3.5 * envelope)
    expect(open({ storage }).list()).toEqual(sent)
  })

  it('merges runs of small records at load, keeping order and ids', () => {
    const storage = createCountingStorage()
    const sent: Envelope[] = []
    const outbox = open()
    for (let i = 0; i < 300; i++) sent.push(outbox.enqueue('m', 'x'.repeat(100)))
    // One record per message, as an older mpbus left them.
    for (const e of sent) storage.set(`mpbus/${e.seq}`, JSON.stringify({ v: 1, m: [e] }))
    const again = open({ storage })
    expect(again.list()).toEqual(sent)
    flush()
    const keys = storage.keys()
    expect(keys.length).toBeLessThan(10)
    for (const k of keys) expect(Buffer.byteLength(storage.get(k)!)).toBeLessThanOrEqual(16 * 1024)
    expect(open({ storage }).list()).toEqual(sent)
  })

  it('leaves large records alone', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage, maxBytes: 1e7 })
    for (let i = 0; i < 3; i++) {
      for (let j = 0; j < 200; j++) outbox.enqueue('m', 'x'.repeat(100))
      flush()
    }
    storage.reset()
    open({ storage }).list()
    flush()
    expect(storage.counts).toMatchObject({ set: 0, del: 0 })
  })
})

describe('listeners that enqueue', () => {
  it('a drop listener that calls next() during an expiry gets the message after, never the same one twice', () => {
    const outbox = open()
    outbox.enqueue('Old', 1, { ttl: 10 })
    outbox.enqueue('Kept', 2)
    outbox.enqueue('After', 3)
    time += 100
    const fromListener: Array<string | undefined> = []
    outbox.on('drop', () => fromListener.push(nextOf(outbox)?.op))
    expect(nextOf(outbox)?.op).toBe('Kept')
    expect(fromListener).toEqual(['After'])
  })

  it('an error listener enqueueing during load gets a fresh seq and overwrites no record', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    for (let i = 1; i <= 3; i++) {
      outbox.enqueue('m', i)
      flush()
    }
    storage.set('mpbus/2', '{"v":1,"m":[')
    const again = open({ storage })
    // Plausible app code: report storage trouble to the server through the same queue.
    again.on('error', () => again.enqueue('Report', 'x'))
    expect(again.list().map((e) => [e.seq, e.payload])).toEqual([
      [1, 1],
      [3, 3],
      [4, 'x'],
    ])
    flush()
    expect(
      open({ storage })
        .list()
        .map((e) => [e.seq, e.payload]),
    ).toEqual([
      [1, 1],
      [3, 3],
      [4, 'x'],
    ])
  })

  it('a drop listener enqueueing during an overflow gets a seq of its own, and nothing is lost', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage, maxMessages: 2, overflow: 'dropOldest' })
    let told = false
    outbox.on('drop', () => {
      if (told) return
      told = true
      outbox.enqueue('Notice', 'dropped')
    })
    outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    outbox.enqueue('m', 3)
    // The notice dropped 2 in turn; 3 and the notice keep seqs of their own, in order.
    expect(outbox.list().map((e) => [e.seq, e.payload])).toEqual([
      [3, 3],
      [4, 'dropped'],
    ])
    flush()
    expect(open({ storage }).list()).toEqual(outbox.list())
  })
})

describe('lifecycle', () => {
  it('dispose commits at once, and nothing is written after it', () => {
    const storage = createCountingStorage()
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    expect(vi.getTimerCount()).toBe(1)
    outbox.dispose()
    expect(stored(storage)).toEqual([[1]])
    const writes = storage.counts.set
    flush()
    expect(storage.counts.set).toBe(writes)
  })

  it('without storage it works from memory and starts no timers', () => {
    const outbox = open()
    const e = outbox.enqueue('m', 1)
    expect(vi.getTimerCount()).toBe(0)
    expect(nextOf(outbox)).toEqual(e)
    outbox.sent(e.id)
    expect(vi.getTimerCount()).toBe(0)
    expect(outbox.size).toBe(0)
  })
})

describe.each([
  ['wx', createWxRuntime, miniProgramPlatform],
  ['my', createMyRuntime, alipayPlatform],
] as const)('on the %s runtime', (_, createRuntime, adapt) => {
  const boot = (area: ReturnType<typeof createStorageArea>, totalLimit = 10 * 1024 * 1024) => {
    const runtime = createRuntime({ storage: area, totalLimit })
    return { runtime, storage: adapt(runtime as any).storage! }
  }

  it('persists, survives a kill, reports a full store and catches up', () => {
    const area = createStorageArea()
    const a = boot(area, 20 * 1024)
    const outbox = open({ storage: a.storage })
    const sent = [outbox.enqueue('m', 'a'), outbox.enqueue('m', '你好')]
    flush()
    a.runtime.control.kill()
    const again = open({ storage: boot(area, 20 * 1024).storage })
    expect(again.list()).toEqual(sent)
    // Past the 20 KB quota: the platform refuses the write, and it is reported.
    for (let i = 0; i < 3; i++) again.enqueue('m', 'x'.repeat(8 * 1024))
    flush()
    expect(again.seen.errors.map((e) => e.code)).toEqual(['STORAGE_FULL'])
    expect(again.size).toBe(5)
    // Delivering frees room; the next commit catches storage up.
    for (const e of drain(again).slice(0, 3)) again.sent(e.id)
    flush()
    const third = open({ storage: boot(area).storage })
    expect(third.list().map((e) => e.seq)).toEqual([4, 5])
  })

  it('keeps every record under the per-key limit', () => {
    const area = createStorageArea()
    const runtime = createRuntime({ storage: area, perKeyLimit: 100 * 1024 })
    const outbox = open({ storage: adapt(runtime as any).storage!, maxBytes: 1e7 })
    for (let i = 0; i < 300; i++) outbox.enqueue('m', '好'.repeat(500))
    flush()
    expect(outbox.seen.errors).toEqual([])
    expect(area.keys().length).toBeGreaterThan(3)
    expect(open({ storage: adapt(createRuntime({ storage: area }) as any).storage! }).size).toBe(300)
  })
})

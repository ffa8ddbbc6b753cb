/**
 * The outbox around its steady state: when a commit lands, quota freed while nothing else happens,
 * reads that fail, a close before the first load, and stored data that is damaged or newer.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Envelope } from '../src/outbox'
import { createMemoryStorage } from '../src/platform/memory-storage'
import type { Storage } from '../src/platform/types'
import { nextOf, openOutbox as open } from './helpers/resolved'
import { createQuotaStorage } from './helpers/storage'
import { useOutboxClock } from './helpers/time'

beforeEach(() => {
  useOutboxClock()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Payloads a fresh outbox (a cold start) loads from `storage`. */
const reload = (storage: Storage) =>
  open({ storage })
    .list()
    .map((e) => e.payload)

/** A storage whose `get` of `key` throws `times` times. */
function failingReads(storage: Storage, key: string, times = 1): Storage {
  return Object.assign({}, storage, {
    get(k: string) {
      if (k === key && times-- > 0) throw new Error('read error')
      return storage.get(k)
    },
  })
}

describe('durability point', () => {
  it('commits at the end of the current task, before any timer, in one write for the task', async () => {
    // Real microtasks, no timer ever runs: what a page unloaded right after this task would keep.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const storage = createQuotaStorage()
    let writes = 0
    const set = storage.set
    storage.set = (k, v) => {
      writes++
      set(k, v)
    }
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    outbox.enqueue('m', 2)
    await Promise.resolve()
    expect(reload(storage)).toEqual([1, 2])
    expect(writes).toBe(1)
  })

  it('commit() stores synchronously (what the bus runs at hide)', () => {
    const storage = createMemoryStorage()
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    outbox.commit()
    expect(reload(storage)).toEqual([1])
  })
})

describe('a write refused for quota', () => {
  it('is retried by time, at most 500 ms later, with nothing else happening', () => {
    const storage = createQuotaStorage(0)
    const outbox = open({ storage })
    for (let i = 1; i <= 5; i++) {
      outbox.enqueue('m', i)
      vi.advanceTimersByTime(20)
    }
    expect(outbox.errors[0]!.code).toBe('STORAGE_FULL')
    storage.quota = Number.POSITIVE_INFINITY
    vi.advanceTimersByTime(500)
    // Killed now: nothing was lost.
    expect(reload(storage)).toEqual([1, 2, 3, 4, 5])
  })

  it('retries with one attempt per interval, and dispose cancels the retry', () => {
    const storage = createQuotaStorage(0)
    const outbox = open({ storage })
    outbox.enqueue('m', 1)
    vi.advanceTimersByTime(2000)
    expect(outbox.errors.length).toBeGreaterThanOrEqual(4)
    expect(outbox.errors.length).toBeLessThanOrEqual(6)
    outbox.dispose()
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('a failed read', () => {
  function three(storage: Storage) {
    const outbox = open({ storage })
    for (let i = 1; i <= 3; i++) {
      outbox.enqueue('m', i)
      outbox.commit()
    }
  }

  it('is retried: the queue loads in order, and persistence stays on', () => {
    const storage = createMemoryStorage()
    three(storage)
    const again = open({ storage: failingReads(storage, 'mpbus/2') })
    again.enqueue('m', 4)
    expect(again.errors.map((e) => e.code)).toEqual(['STORAGE_ERROR'])
    // Nothing is handed out while part of the queue is unread.
    expect(nextOf(again)).toBeUndefined()
    vi.advanceTimersByTime(500)
    expect(again.list().map((e) => [e.seq, e.payload])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ])
    expect(nextOf(again)!.payload).toBe(1)
    vi.advanceTimersByTime(0)
    // The message queued while the read failed is stored.
    expect(reload(storage)).toEqual([1, 2, 3, 4])
  })

  it('a record that keeps failing is reported corrupt after 3 tries and the rest loads', () => {
    const storage = createMemoryStorage()
    three(storage)
    const again = open({ storage: failingReads(storage, 'mpbus/2', 99) })
    again.load()
    vi.advanceTimersByTime(2000)
    expect(again.list().map((e) => e.payload)).toEqual([1, 3])
    expect(again.errors.map((e) => e.code)).toEqual(['STORAGE_ERROR', 'STORAGE_ERROR', 'CORRUPT_RECORD'])
  })

  it('keys that cannot be listed: it waits, then writes nothing blind and runs from memory', () => {
    const storage = createQuotaStorage()
    storage.map.set('mpbus/1', '{"v":1,"m":[]}')
    storage.broken = new Error('no keys')
    const outbox = open({ storage })
    const e = outbox.enqueue('m', 1)
    expect(nextOf(outbox)).toBeUndefined()
    vi.advanceTimersByTime(2000)
    // Renumbered after what storage holds (nothing it could read): the same message.
    expect(nextOf(outbox)).toMatchObject({ id: e.id, op: 'm', payload: 1 })
    storage.broken = undefined
    vi.advanceTimersByTime(2000)
    expect(Array.from(storage.map.keys())).toEqual(['mpbus/1'])
  })
})

describe('close before the first load', () => {
  it('keeps the mark: nothing acknowledged is sent again', () => {
    const storage = createMemoryStorage()
    const first = open({ storage })
    for (let i = 1; i <= 3; i++) first.enqueue('m', i)
    for (let e = nextOf(first); e; e = nextOf(first)) first.sent(e.id)
    first.commit()
    open({ storage }).dispose()
    const third = open({ storage })
    expect(third.list()).toEqual([])
    expect(third.enqueue('m', 4).seq).toBe(4)
  })
})

describe('stored data', () => {
  it('an envelope without id, op or seq is CORRUPT_RECORD and removed, never sent', () => {
    const storage = createMemoryStorage()
    const first = open({ storage })
    const good = first.enqueue('m', 1)
    first.commit()
    const { id, op, ...rest } = good
    storage.set(
      'mpbus/2',
      JSON.stringify({
        v: 1,
        m: [
          { ...rest, seq: 2, op },
          { ...rest, seq: 3, id },
          { id, op, payload: 4 },
        ],
      }),
    )
    const again = open({ storage })
    expect(again.list()).toEqual([good])
    expect(again.errors.map((e) => e.code)).toEqual(['CORRUPT_RECORD'])
    again.commit()
    expect(storage.keys()).toEqual(['mpbus/1'])
  })

  it('a record of a newer format is kept in storage and reported, and its key is never reused', () => {
    const storage = createMemoryStorage()
    const newer = JSON.stringify({ v: 2, m: [{ id: 'x', seq: 1, op: 'm', payload: 1 }] })
    storage.set('mpbus/1', newer)
    const outbox = open({ storage })
    expect(outbox.list()).toEqual([])
    expect(outbox.errors.map((e) => [e.code, e.message])).toEqual([['CORRUPT_RECORD', 'mpbus/1 (format 2)']])
    const e: Envelope = outbox.enqueue('m', 2)
    outbox.commit()
    for (let n = nextOf(outbox); n; n = nextOf(outbox)) outbox.sent(n.id)
    outbox.commit()
    expect(e.seq).toBeGreaterThan(1)
    expect(storage.get('mpbus/1')).toBe(newer)
  })
})

describe('sent and ack', () => {
  it('say whether the message left the queue: false for an unknown id, and for sent() with ack on', () => {
    const plain = open()
    const a = plain.enqueue('m', 1)
    nextOf(plain)
    expect(plain.sent(a.id)).toBe(true)
    expect(plain.sent(a.id)).toBe(false)
    const acked = open({ ack: true })
    const b = acked.enqueue('m', 2)
    nextOf(acked)
    expect(acked.sent(b.id)).toBe(false)
    expect(acked.ack(b.id)).toBe(true)
    expect(acked.ack(b.id)).toBe(false)
  })
})

// The outbox's storage half (src/outbox/store.ts), driven through its Queue interface: when a
// message is durable, what load reads back, the order of a commit's writes, and failed reads
// and writes. The queue here is the least that interface asks (the outbox's own is index.ts).

import mitt from 'mitt'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { outboxSettings } from '../src/bus/options'
import { MpbusError } from '../src/errors'
import type { OutboxEvents, OutboxOptions } from '../src/outbox'
import { createLine } from '../src/outbox/line'
import { encode, type Item, idOf } from '../src/outbox/record'
import { createStore, type Queue } from '../src/outbox/store'
import { RETRY, TRIES } from '../src/outbox/types'
import type { Storage } from '../src/platform/types'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function createQueue(): Queue & { seq: number; ids(): string[] } {
  const line = createLine<Item>()
  const track = (j: string, s: number): Item => {
    const item: Item = { j, s, k: undefined }
    line.push(item)
    return item
  }
  const ids = () => {
    const out: string[] = []
    line.each((item) => {
      out.push(idOf(item.j))
    })
    return out
  }
  const queue = {
    seq: 1,
    line,
    track,
    ids,
    mark: (): [number, number] => {
      const head = line.head()
      return [head ? head.s : queue.seq, queue.seq]
    },
    append(e: any) {
      if (ids().indexOf(e.id) >= 0) return false
      e.seq = queue.seq++
      track(encode(e), e.seq)
      return true
    },
    clear: () => line.drain(),
    skip(n: number) {
      queue.seq = Math.max(queue.seq, n)
    },
  }
  return queue
}

/** A map storage that logs every write, and whose calls can be made to throw. */
function createLogStorage() {
  const map = new Map<string, string>()
  const log: string[] = []
  const fail: { keys?: unknown; get?: unknown; set?: unknown } = {}
  const storage: Storage = {
    get(key) {
      if (fail.get) throw fail.get
      return map.get(key)
    },
    set(key, value) {
      if (fail.set) throw fail.set
      log.push(`set ${key}`)
      map.set(key, value)
    },
    del(key) {
      log.push(`del ${key}`)
      map.delete(key)
    },
    keys() {
      if (fail.keys) throw fail.keys
      return Array.from(map.keys())
    },
  }
  return { storage, map, log, fail }
}

function setup(storage: Storage, options: OutboxOptions = {}) {
  const events = mitt<OutboxEvents>()
  const errors: string[] = []
  events.on('error', (e) => errors.push(e.code))
  const queue = createQueue()
  const store = createStore(outboxSettings({ storage, prefix: 'p', ...options }), events, queue)
  /** What enqueue does: queue it under the next seq, then tell the store. */
  const add = (id: string) => {
    const s = queue.seq++
    const item = queue.track(encode({ id, seq: s, op: 'm', payload: 1, createdAt: 1 }), s)
    store.added()
    return item
  }
  /** What settle does: the store first, while the item is still queued. */
  const take = (item: Item) => {
    const first = queue.line.head() === item
    queue.line.remove(item)
    store.left(item, first)
  }
  return { store, queue, errors, add, take }
}

const record = (...m: [string, number][]) =>
  JSON.stringify({ v: 1, m: m.map(([id, seq]) => ({ id, seq, op: 'm', createdAt: 1 })) })

describe('store', () => {
  it('what is added is written at the end of the task, and at once when the queue is about to hand it out', async () => {
    const { storage, map } = createLogStorage()
    const { store, add } = setup(storage)
    store.load()
    add('a')
    expect(map.size).toBe(0)
    await Promise.resolve()
    expect(map.get('p/1')).toContain('"a"')
    add('b')
    expect(store.ready()).toBe(true)
    expect(map.get('p/2')).toContain('"b"')
  })

  it('load reads the records back in seq order, skips what is below the mark, and numbers on after it', () => {
    const { storage, map } = createLogStorage()
    map.set('p/10', record(['c', 10]))
    map.set('p/2', record(['gone', 2], ['b', 3]))
    map.set('p/seq', JSON.stringify([3, 12]))
    map.set('q/1', record(['other', 1]))
    const { store, queue } = setup(storage)
    store.load()
    expect(queue.ids()).toEqual(['b', 'c'])
    expect(queue.seq).toBe(12)
  })

  it('messages queued before the load wait behind what storage holds, renumbered', () => {
    const { storage, map } = createLogStorage()
    map.set('p/5', record(['old', 5]))
    const { store, queue, add } = setup(storage)
    add('new')
    store.load()
    expect(queue.ids()).toEqual(['old', 'new'])
    expect(queue.mark()).toEqual([5, 7])
  })

  it('a commit writes the mark before it rewrites or deletes a record', async () => {
    const { storage, log } = createLogStorage()
    const { store, add, take } = setup(storage)
    store.load()
    const items = ['a', 'b', 'c'].map(add)
    await Promise.resolve()
    log.length = 0
    take(items[2]!)
    take(items[0]!)
    store.commit()
    expect(log).toEqual(['set p/seq', 'set p/1'])
  })

  it('a refused write reports STORAGE_FULL and is tried again RETRY ms later', async () => {
    const { storage, map, fail } = createLogStorage()
    const { store, add, errors } = setup(storage)
    store.load()
    fail.set = new MpbusError('STORAGE_FULL', 'quota')
    add('a')
    await Promise.resolve()
    expect(errors).toEqual(['STORAGE_FULL'])
    fail.set = undefined
    vi.advanceTimersByTime(RETRY - 1)
    expect(map.size).toBe(0)
    vi.advanceTimersByTime(1)
    expect(map.get('p/1')).toContain('"a"')
  })

  it('a key list that cannot be read: retried, then storage is given up for memory only', () => {
    const { storage, map, fail } = createLogStorage()
    map.set('p/1', record(['a', 1]))
    fail.keys = new Error('broken')
    const { store, queue, errors, add } = setup(storage)
    store.load()
    // Until the queue is read, nothing is handed out: it could overtake what storage holds.
    expect(store.ready()).toBe(false)
    for (let i = 1; i < TRIES; i++) vi.advanceTimersByTime(RETRY)
    expect(errors).toEqual(Array(TRIES).fill('STORAGE_ERROR'))
    expect(store.ready()).toBe(true)
    add('b')
    store.commit()
    // Writing blind could overwrite what it never read.
    expect([...map]).toEqual([['p/1', record(['a', 1])]])
    expect(queue.ids()).toEqual(['b'])
  })

  it('a record that cannot be read TRIES times is reported corrupt and skipped; the rest loads', () => {
    const { storage, map } = createLogStorage()
    map.set('p/1', record(['a', 1]))
    map.set('p/2', record(['b', 2]))
    const get = storage.get
    storage.get = (key) => {
      if (key === 'p/1') throw new Error('bad sector')
      return get(key)
    }
    const { store, queue, errors } = setup(storage)
    store.load()
    for (let i = 1; i < TRIES; i++) vi.advanceTimersByTime(RETRY)
    expect(errors).toEqual([...Array(TRIES - 1).fill('STORAGE_ERROR'), 'CORRUPT_RECORD'])
    expect(queue.ids()).toEqual(['b'])
  })
})

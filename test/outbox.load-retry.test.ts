/**
 * A send accepted while the outbox's load waits to retry a failed read: it is in storage by the
 * end of its task (a scratch record, as during a lock wait), and `dispose()` (the bus's `close()`)
 * never drops it; the retry then loads everything once, in order.
 */
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createMemoryStorage } from '../src/platform/memory-storage'
import type { Storage } from '../src/platform/types'
import { nextOf, openOutbox as open } from './helpers/resolved'
import { useOutboxClock } from './helpers/time'

beforeEach(() => {
  useOutboxClock()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Payloads a cold start loads from `storage` (another storage object: nothing of this context holds it). */
const reload = (storage: Storage) =>
  open({ storage: Object.assign({}, storage) })
    .list()
    .map((e) => e.payload)

/** The same storage, except that `get` of `key` throws `times` times. */
function failingReads(storage: Storage, key: string, times = 1): Storage {
  return Object.assign({}, storage, {
    get(k: string) {
      if (k === key && times-- > 0) throw new Error('read error')
      return storage.get(k)
    },
  })
}

/** Three messages stored, as a bus killed with them queued leaves them. */
function three(): Storage {
  const storage = createMemoryStorage()
  const outbox = open({ storage })
  for (let i = 1; i <= 3; i++) outbox.enqueue('m', i)
  outbox.dispose()
  return storage
}

describe('a send while the load waits for its retry', () => {
  it('is in storage at the end of its task, after what storage held', () => {
    const storage = three()
    const outbox = open({ storage: failingReads(storage, 'mpbus/1') })
    outbox.enqueue('m', 4)
    expect(outbox.errors.map((e) => e.code)).toEqual(['STORAGE_ERROR'])
    // The end of the task (the clock fakes queueMicrotask too), and no more.
    vi.advanceTimersByTime(0)
    // Killed now, before the retry's timer: a cold start has all four, in order.
    expect(reload(storage)).toEqual([1, 2, 3, 4])
  })

  it('close() keeps it, with no timer left', () => {
    const storage = three()
    const outbox = open({ storage: failingReads(storage, 'mpbus/1') })
    outbox.enqueue('m', 4)
    outbox.enqueue('m', 5)
    outbox.dispose()
    // Only the end-of-task callbacks of the two sends are left, and they do nothing now.
    vi.advanceTimersByTime(0)
    expect(vi.getTimerCount()).toBe(0)
    expect(reload(storage)).toEqual([1, 2, 3, 4, 5])
  })

  it('the retry loads everything once, in order, and leaves one copy in storage', () => {
    const storage = three()
    const outbox = open({ storage: failingReads(storage, 'mpbus/1') })
    outbox.enqueue('m', 4)
    vi.advanceTimersByTime(500)
    expect(outbox.list().map((e) => e.payload)).toEqual([1, 2, 3, 4])
    outbox.enqueue('m', 5)
    outbox.dispose()
    expect(reload(storage)).toEqual([1, 2, 3, 4, 5])
    // Delivered in the next session, nothing comes back at the one after.
    const next = open({ storage })
    for (let e = nextOf(next); e; e = nextOf(next)) next.ack(e.id)
    next.dispose()
    expect(reload(storage)).toEqual([])
  })
})

describe('property: reads that fail, sends, a retry or not, then a close or a kill', () => {
  it('a cold start has every message not acknowledged, once, in the order sent', () => {
    fc.assert(
      fc.property(
        fc.nat(4),
        // Transient: a third failure in a row of the mark's read turns storage off (memory only, reported).
        fc.integer({ min: 1, max: 2 }),
        fc.array(
          fc.oneof(fc.constant('send'), fc.constant('tick'), fc.constant('task'), fc.constant('ack')),
          {
            maxLength: 12,
          },
        ),
        fc.boolean(),
        (stored, failures, steps, close) => {
          vi.useRealTimers()
          useOutboxClock()
          const storage = createMemoryStorage()
          const first = open({ storage })
          for (let i = 0; i < stored; i++) first.enqueue('m', `s${i}`)
          first.dispose()
          const expected = Array.from({ length: stored }, (_, i) => `s${i}`)
          const outbox = open({ storage: failingReads(storage, 'mpbus/seq', failures) })
          let n = 0
          for (const step of steps) {
            if (step === 'send') {
              outbox.enqueue('m', `n${n}`)
              expected.push(`n${n++}`)
            } else if (step === 'tick') vi.advanceTimersByTime(500)
            else if (step === 'task') vi.advanceTimersByTime(0)
            else {
              const e = nextOf(outbox)
              if (e) {
                outbox.ack(e.id)
                expected.splice(expected.indexOf(e.payload as string), 1)
              }
            }
          }
          if (close) outbox.dispose()
          else vi.advanceTimersByTime(0) // killed at the end of the task
          expect(reload(storage)).toEqual(expected)
        },
      ),
    )
  })
})

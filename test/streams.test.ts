// The client's side of resume (src/bus/streams.ts) alone: positions in storage, repeats
// dropped, Resync, and storage that fails or holds garbage.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createStreams } from '../src/bus/streams'
import { MpbusError } from '../src/errors'
import type { Storage } from '../src/platform/types'
import { createQuotaStorage } from './helpers/storage'

const KEY = 'mpbus/streams'
const pushed = (name: string, offset: number, epoch = 'e1') => ({
  Operator: 'Quote',
  Stream: { name, offset, epoch },
})

function open(storage: Storage | undefined) {
  const resyncs: unknown[] = []
  const errors: MpbusError[] = []
  const streams = createStreams(
    storage,
    KEY,
    'Operator',
    'LoginOK',
    1 << 20,
    (r) => resyncs.push(r),
    (e) => errors.push(e),
  )
  // Every life logs in before anything reaches it.
  streams.login()
  /** The frames of one message that reach the handlers. */
  const take = (...frames: any[]) => {
    const handled: any[] = []
    streams.accept(
      frames,
      (f) => handled.push(f),
      () => true,
    )
    return handled
  }
  const accept = (frame: any) => take(frame).length === 1
  return { streams, take, accept, resyncs, errors }
}

describe('stream positions (client)', () => {
  it('sends no field before it has a position, then the positions it stored, across a cold start', () => {
    const storage = createQuotaStorage()
    const first = open(storage)
    expect(first.streams.login()).toBeUndefined()
    expect(first.accept(pushed('user:a', 1))).toBe(true)
    expect(first.accept(pushed('user:a', 2))).toBe(true)
    const second = open(storage)
    expect(second.streams.login()).toEqual({
      Streams: { 'user:a': { offset: 2, epoch: 'e1' } },
      Batch: 1 << 20,
    })
    expect(second.accept(pushed('user:a', 2))).toBe(false)
    expect(second.accept(pushed('user:a', 3))).toBe(true)
  })

  it('starts a stream at the tip the login answer gives, but keeps a position it has', () => {
    const { streams, accept } = open(createQuotaStorage())
    accept(pushed('user:a', 5))
    const answer = {
      Operator: 'LoginOK',
      Streams: { 'user:a': { offset: 1, epoch: 'e1' }, 'room:r': { offset: 9, epoch: 'e1' } },
    }
    expect(accept(answer)).toBe(true)
    expect(streams.login()!.Streams).toEqual({
      'user:a': { offset: 5, epoch: 'e1' },
      'room:r': { offset: 9, epoch: 'e1' },
    })
    // The same field on a frame that is not the login answer moves nothing.
    accept({ Operator: 'Other', Streams: { 'room:s': { offset: 3, epoch: 'e1' } } })
    expect(Object.keys(streams.login()!.Streams)).toEqual(['user:a', 'room:r'])
  })

  it('Resync moves the position (even backwards, to a new epoch), emits resync, and reaches no handler', () => {
    const { accept, resyncs } = open(createQuotaStorage())
    accept(pushed('user:a', 40))
    const resync = { Operator: 'Resync', Stream: { name: 'user:a', offset: 0, epoch: 'e2' } }
    expect(accept(resync)).toBe(false)
    expect(resyncs).toEqual([{ stream: 'user:a', offset: 0, epoch: 'e2' }])
    expect(accept(pushed('user:a', 1, 'e2'))).toBe(true)
  })

  it('storage that fails a write: reported, the frame still delivered, repeats still dropped in this life', () => {
    const storage = createQuotaStorage()
    let fail = true
    storage.set = (key, value) => {
      if (fail) {
        fail = false
        throw new MpbusError('STORAGE_FULL', 'quota')
      }
      storage.map.set(key, value)
    }
    const { accept, errors } = open(storage)
    expect(accept(pushed('user:a', 1))).toBe(true)
    expect(errors.map((e) => e.code)).toEqual(['STORAGE_FULL'])
    expect(accept(pushed('user:a', 1))).toBe(false)
    expect(accept(pushed('user:a', 2))).toBe(true)
    expect(JSON.parse(storage.map.get(KEY)!)).toEqual({ 'user:a': { offset: 2, epoch: 'e1' } })
  })

  it('garbage in storage: CORRUPT_RECORD, and a fresh start', () => {
    const storage = createQuotaStorage()
    storage.map.set(KEY, '{not json')
    const { streams, accept, errors } = open(storage)
    expect(errors.map((e) => e.code)).toEqual(['CORRUPT_RECORD'])
    expect(streams.login()).toBeUndefined()
    expect(accept(pushed('user:a', 1))).toBe(true)
  })

  it('frames without a well-formed position pass untouched, without storage', () => {
    const { accept } = open(undefined)
    expect(accept({ Operator: 'Quote', Stream: 'not a position' })).toBe(true)
    expect(accept({ Operator: 'Quote' })).toBe(true)
    expect(accept(pushed('user:a', 1))).toBe(true)
    expect(accept(pushed('user:a', 1))).toBe(false)
  })

  it('a login sends what storage holds now: the lower offset within an epoch, the stored one across epochs', () => {
    const storage = createQuotaStorage()
    const a = open(storage)
    const b = open(storage) // created before anything was stored
    a.accept(pushed('user:a', 10))
    a.accept(pushed('room:r', 4))
    // b knows nothing yet: it sends a's positions, and adopts them (a repeat of them is dropped).
    expect(b.streams.login()!.Streams).toEqual({
      'user:a': { offset: 10, epoch: 'e1' },
      'room:r': { offset: 4, epoch: 'e1' },
    })
    expect(b.accept(pushed('user:a', 10))).toBe(false)
    expect(b.accept(pushed('user:a', 11))).toBe(true)
    expect(b.accept(pushed('user:a', 12))).toBe(true)
    // Stored 12 by b; a is at 10 in memory: a sends 10 (repeats, never a miss), still drops what it saw.
    expect(a.streams.login()!.Streams['user:a']).toEqual({ offset: 10, epoch: 'e1' })
    expect(a.accept(pushed('user:a', 9))).toBe(false)
    // Another epoch in storage (another tab resynced): sent and adopted; offsets of two epochs never compare.
    b.accept({ Operator: 'Resync', Stream: { name: 'room:r', offset: 2, epoch: 'e2' } })
    expect(a.streams.login()!.Streams['room:r']).toEqual({ offset: 2, epoch: 'e2' })
    expect(a.accept(pushed('room:r', 3, 'e2'))).toBe(true)
  })

  it('stores the positions of a message once, before any of its handlers runs', () => {
    const storage = createQuotaStorage()
    let writes = 0
    const set = storage.set
    storage.set = (key, value) => {
      writes++
      set(key, value)
    }
    const { streams, errors } = open(storage)
    const stored: unknown[] = []
    const frames = [{ Operator: 'LoginOK', Streams: { 'room:r': { offset: 7, epoch: 'e1' } } }].concat(
      Array.from({ length: 100 }, (_, i) => pushed('user:a', i + 1)) as any[],
    )
    streams.accept(
      frames,
      (f: any) => stored.push([f.Stream && f.Stream.offset, storage.map.get(KEY)]),
      () => true,
    )
    expect(writes).toBe(1)
    expect(stored).toHaveLength(101)
    const last = JSON.stringify({
      'room:r': { offset: 7, epoch: 'e1' },
      'user:a': { offset: 100, epoch: 'e1' },
    })
    expect(stored.every((s: any) => s[1] === last)).toBe(true)
    // A message of repeats only writes nothing.
    streams.accept(
      [pushed('user:a', 50), pushed('user:a', 100)],
      () => {},
      () => true,
    )
    expect(writes).toBe(1)
    expect(errors).toEqual([])
  })

  it('property: batches, repeats, kills between messages and crashes within one: each offset at most once, rising; none missed but by a crash', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            back: fc.integer({ min: 0, max: 10 }),
            size: fc.integer({ min: 1, max: 12 }),
            end: fc.constantFrom('none', 'kill', 'crash'),
            at: fc.nat(),
          }),
          { maxLength: 40 },
        ),
        (messages) => {
          const storage = createQuotaStorage()
          let life = open(storage)
          const seen: number[] = []
          const lost: number[] = []
          let tip = 0
          for (const m of messages) {
            // The server replays from at or before what the client stored: repeats, never gaps.
            const stored = JSON.parse(storage.map.get(KEY) || '{}')['user:a']
            const from = Math.max(1, (stored ? stored.offset : 0) + 1 - m.back)
            const frames = Array.from({ length: m.size + (tip - from + 1) }, (_, i) =>
              pushed('user:a', from + i),
            )
            tip = from + frames.length - 1
            const crashAt = m.end === 'crash' ? m.at % frames.length : -1
            let handled = 0
            life.streams.accept(
              frames,
              (f: any) => {
                // A crash in the foreground: the process dies while this message's handlers run.
                if (crashAt >= 0 && handled >= crashAt) lost.push(f.Stream.offset)
                else seen.push(f.Stream.offset)
                handled++
              },
              () => true,
            )
            if (m.end !== 'none') life = open(storage)
          }
          const all = seen.concat(lost).sort((x, y) => x - y)
          expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1))
          expect(seen).toEqual([...seen].sort((x, y) => x - y))
        },
      ),
    )
  })

  it('a handler that closes the bus mid-message: the frames after it go back to unseen, and the next life gets them', () => {
    const storage = createQuotaStorage()
    const { streams } = open(storage)
    let live = true
    const seen: number[] = []
    const frames = Array.from({ length: 10 }, (_, i) => pushed('user:a', i + 1))
    streams.accept(
      frames,
      (f: any) => {
        seen.push(f.Stream.offset)
        if (f.Stream.offset === 5) live = false // bus.close() in a handler
      },
      () => live,
    )
    expect(seen).toEqual([1, 2, 3, 4, 5])
    // Stored as of the last frame handled: the next login asks for 6 on.
    expect(JSON.parse(storage.map.get(KEY)!)).toEqual({ 'user:a': { offset: 5, epoch: 'e1' } })
    expect(open(storage).streams.login()).toEqual({
      Streams: { 'user:a': { offset: 5, epoch: 'e1' } },
      Batch: 1 << 20,
    })
  })

  it('property: whatever repeats a server sends, handlers see each offset once, rising, even across cold starts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constant('kill' as const)), { maxLength: 80 }),
        (events) => {
          const storage = createQuotaStorage()
          let life = open(storage)
          const seen: number[] = []
          let tip = 0
          for (const e of events) {
            if (e === 'kill') {
              life = open(storage)
              continue
            }
            // The server replays from some point at or before what it sent last: repeats, never gaps.
            const from = Math.max(1, tip - e + 1)
            tip = Math.max(tip, from)
            for (let offset = from; offset <= tip + 1; offset++)
              if (life.accept(pushed('user:a', offset))) seen.push(offset)
            tip++
          }
          expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1))
        },
      ),
    )
  })
})

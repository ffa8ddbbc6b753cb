// The client's side of resume (src/bus/streams.ts) alone: positions in storage, repeats
// dropped, Resync, and storage that fails or holds garbage.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createStreams } from '../src/bus/streams'
import { MpbusError } from '../src/errors'
import type { Storage } from '../src/platform/types'

function memoryStorage(): Storage & { data: Map<string, string> } {
  const data = new Map<string, string>()
  return {
    data,
    get: (key) => data.get(key),
    set: (key, value) => void data.set(key, value),
    del: (key) => void data.delete(key),
    keys: () => Array.from(data.keys()),
  }
}

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
  /** The frames of one message that reach the handlers. */
  const take = (...frames: any[]) => {
    const handled: any[] = []
    streams.accept(frames, (f) => handled.push(f))
    return handled
  }
  const accept = (frame: any) => take(frame).length === 1
  return { streams, take, accept, resyncs, errors }
}

describe('stream positions (client)', () => {
  it('sends no field before it has a position, then the positions it stored, across a cold start', () => {
    const storage = memoryStorage()
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
    const { streams, accept } = open(memoryStorage())
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
    const { accept, resyncs } = open(memoryStorage())
    accept(pushed('user:a', 40))
    const resync = { Operator: 'Resync', Stream: { name: 'user:a', offset: 0, epoch: 'e2' } }
    expect(accept(resync)).toBe(false)
    expect(resyncs).toEqual([{ stream: 'user:a', offset: 0, epoch: 'e2' }])
    expect(accept(pushed('user:a', 1, 'e2'))).toBe(true)
  })

  it('storage that fails a write: reported, the frame still delivered, repeats still dropped in this life', () => {
    const storage = memoryStorage()
    let fail = true
    storage.set = (key, value) => {
      if (fail) {
        fail = false
        throw new MpbusError('STORAGE_FULL', 'quota')
      }
      storage.data.set(key, value)
    }
    const { accept, errors } = open(storage)
    expect(accept(pushed('user:a', 1))).toBe(true)
    expect(errors.map((e) => e.code)).toEqual(['STORAGE_FULL'])
    expect(accept(pushed('user:a', 1))).toBe(false)
    expect(accept(pushed('user:a', 2))).toBe(true)
    expect(JSON.parse(storage.data.get(KEY)!)).toEqual({ 'user:a': { offset: 2, epoch: 'e1' } })
  })

  it('garbage in storage: CORRUPT_RECORD, and a fresh start', () => {
    const storage = memoryStorage()
    storage.data.set(KEY, '{not json')
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

  it('property: whatever repeats a server sends, handlers see each offset once, rising, even across cold starts', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.integer({ min: 1, max: 30 }), fc.constant('kill' as const)), { maxLength: 80 }),
        (events) => {
          const storage = memoryStorage()
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

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
    (r) => resyncs.push(r),
    (e) => errors.push(e),
  )
  return { streams, resyncs, errors }
}

describe('stream positions (client)', () => {
  it('sends no field before it has a position, then the positions it stored, across a cold start', () => {
    const storage = createQuotaStorage()
    const first = open(storage)
    expect(first.streams.login()).toBeUndefined()
    expect(first.streams.accept('Quote', pushed('user:a', 1), false)).toBe(true)
    expect(first.streams.accept('Quote', pushed('user:a', 2), false)).toBe(true)
    const second = open(storage)
    expect(second.streams.login()).toEqual({ Streams: { 'user:a': { offset: 2, epoch: 'e1' } } })
    expect(second.streams.accept('Quote', pushed('user:a', 2), false)).toBe(false)
    expect(second.streams.accept('Quote', pushed('user:a', 3), false)).toBe(true)
  })

  it('starts a stream at the tip the login answer gives, but keeps a position it has', () => {
    const { streams } = open(createQuotaStorage())
    streams.accept('Quote', pushed('user:a', 5), false)
    const answer = {
      Operator: 'LoginOK',
      Streams: { 'user:a': { offset: 1, epoch: 'e1' }, 'room:r': { offset: 9, epoch: 'e1' } },
    }
    expect(streams.accept('LoginOK', answer, true)).toBe(true)
    expect(streams.login()).toEqual({
      Streams: { 'user:a': { offset: 5, epoch: 'e1' }, 'room:r': { offset: 9, epoch: 'e1' } },
    })
    // The same field on a frame that is not the login answer moves nothing.
    streams.accept('Other', { Operator: 'Other', Streams: { 'room:s': { offset: 3, epoch: 'e1' } } }, false)
    expect(Object.keys(streams.login()!.Streams)).toEqual(['user:a', 'room:r'])
  })

  it('Resync moves the position (even backwards, to a new epoch), emits resync, and reaches no handler', () => {
    const { streams, resyncs } = open(createQuotaStorage())
    streams.accept('Quote', pushed('user:a', 40), false)
    const resync = { Operator: 'Resync', Stream: { name: 'user:a', offset: 0, epoch: 'e2' } }
    expect(streams.accept('Resync', resync, false)).toBe(false)
    expect(resyncs).toEqual([{ stream: 'user:a', offset: 0, epoch: 'e2' }])
    expect(streams.accept('Quote', pushed('user:a', 1, 'e2'), false)).toBe(true)
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
    const { streams, errors } = open(storage)
    expect(streams.accept('Quote', pushed('user:a', 1), false)).toBe(true)
    expect(errors.map((e) => e.code)).toEqual(['STORAGE_FULL'])
    expect(streams.accept('Quote', pushed('user:a', 1), false)).toBe(false)
    expect(streams.accept('Quote', pushed('user:a', 2), false)).toBe(true)
    expect(JSON.parse(storage.map.get(KEY)!)).toEqual({ 'user:a': { offset: 2, epoch: 'e1' } })
  })

  it('garbage in storage: CORRUPT_RECORD, and a fresh start', () => {
    const storage = createQuotaStorage()
    storage.map.set(KEY, '{not json')
    const { streams, errors } = open(storage)
    expect(errors.map((e) => e.code)).toEqual(['CORRUPT_RECORD'])
    expect(streams.login()).toBeUndefined()
    expect(streams.accept('Quote', pushed('user:a', 1), false)).toBe(true)
  })

  it('frames without a well-formed position pass untouched, without storage', () => {
    const { streams } = open(undefined)
    expect(streams.accept('Quote', { Operator: 'Quote', Stream: 'not a position' }, false)).toBe(true)
    expect(streams.accept('Quote', { Operator: 'Quote' }, false)).toBe(true)
    expect(streams.accept('Quote', pushed('user:a', 1), false)).toBe(true)
    expect(streams.accept('Quote', pushed('user:a', 1), false)).toBe(false)
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
              if (life.streams.accept('Quote', pushed('user:a', offset), false)) seen.push(offset)
            tip++
          }
          expect(seen).toEqual(Array.from({ length: seen.length }, (_, i) => i + 1))
        },
      ),
    )
  })
})

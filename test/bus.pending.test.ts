// The work a bus's user waits on (src/bus/pending.ts): sends, requests and `once` waiters, each
// settled exactly once, and none left hanging by close().
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createPending } from '../src/bus/pending'
import { MpbusError } from '../src/errors'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Where a promise stands, without waiting for it. */
function track<T>(promise: Promise<T>) {
  const state: { value?: T; error?: MpbusError; settled: boolean } = { settled: false }
  promise.then(
    (value) => Object.assign(state, { value, settled: true }),
    (error) => Object.assign(state, { error, settled: true }),
  )
  return state
}

describe('pending', () => {
  it('a send resolves when delivered and rejects when failed; other ids are ignored', async () => {
    const pending = createPending()
    const a = track(pending.send('a'))
    const b = track(pending.send('b'))
    pending.delivered('x')
    pending.delivered('a')
    pending.failed('b', new MpbusError('DROPPED', 'overflow'))
    await Promise.resolve()
    expect(a).toEqual({ settled: true, value: undefined })
    expect(b.error!.code).toBe('DROPPED')
  })

  it('a reply carrying the id answers that request; one without an id only a request that was sent', async () => {
    const pending = createPending()
    const expire = vi.fn()
    const first = track(pending.request('1', 'Pong', 1000, expire))
    const second = track(pending.request('2', 'Pong', 1000, expire))
    pending.answer('Pong', { n: 0 }, undefined)
    await Promise.resolve()
    expect(first.settled || second.settled).toBe(false)
    pending.answer('Other', { n: 1 }, '2')
    pending.answer('Pong', { n: 2 }, '2')
    pending.sent('1')
    pending.answer('Pong', { n: 3 }, undefined)
    await Promise.resolve()
    expect(second.value).toEqual({ n: 2 })
    expect(first.value).toEqual({ n: 3 })
    // Answered: their timers are gone.
    vi.advanceTimersByTime(5000)
    expect(expire).not.toHaveBeenCalled()
  })

  it('a request with no reply in time runs expire (the outbox drops it) and rejects TIMEOUT', async () => {
    const pending = createPending()
    const expire = vi.fn()
    const request = track(pending.request('1', 'Pong', 1000, expire))
    vi.advanceTimersByTime(999)
    expect(expire).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    await Promise.resolve()
    expect(expire).toHaveBeenCalledTimes(1)
    expect(request.error!.code).toBe('TIMEOUT')
    // A late reply settles nothing twice.
    pending.answer('Pong', {}, '1')
  })

  it('a request whose message failed rejects now, not at its timeout', async () => {
    const pending = createPending()
    const expire = vi.fn()
    const request = track(pending.request('1', 'Pong', 1000, expire))
    pending.failed('1', new MpbusError('EXPIRED', 'expired'))
    await Promise.resolve()
    expect(request.error!.code).toBe('EXPIRED')
    vi.advanceTimersByTime(1000)
    expect(expire).not.toHaveBeenCalled()
  })

  it('once resolves with the next frame and unsubscribes', async () => {
    const pending = createPending()
    let deliver: ((frame: any) => void) | undefined
    const off = vi.fn()
    const next = track(
      pending.once((fn) => {
        deliver = fn
        return off
      }),
    )
    deliver!({ a: 1 })
    await Promise.resolve()
    expect(next.value).toEqual({ a: 1 })
    expect(off).toHaveBeenCalledTimes(1)
  })

  it('close rejects everything waiting with CLOSED, and everything asked for after it at once', async () => {
    const pending = createPending()
    const off = vi.fn()
    const waiting = [
      track(pending.send('a')),
      track(pending.request('b', 'R', 1000, () => {})),
      track(pending.once(() => off)),
    ]
    pending.close()
    const later = [
      track(pending.send('c')),
      track(pending.request('d', 'R', 1000, () => {})),
      track(pending.once(() => off)),
    ]
    await Promise.resolve()
    await Promise.resolve()
    expect([...waiting, ...later].map((p) => p.error && p.error.code)).toEqual(Array(6).fill('CLOSED'))
    expect(off).toHaveBeenCalledTimes(1)
    expect(vi.getTimerCount()).toBe(0)
  })
})

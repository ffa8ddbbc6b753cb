// The session of one link (src/bus/session.ts): login first, then `ready` on `ready.ok` (or at
// once without `ready`); one timer bounds all of it; nothing of an ended link acts later.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createFraming } from '../src/bus/framing'
import { type BusOptions, resolveOptions } from '../src/bus/options'
import { createSession } from '../src/bus/session'
import { createFakeLink } from './helpers/fake-link'
import { createScriptPlatform } from './helpers/script-platform'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function setup(options: Partial<BusOptions> = {}, fields?: () => object | undefined) {
  const resolved = resolveOptions({ url: 'ws://x', platform: createScriptPlatform().platform, ...options })
  const onReady = vi.fn()
  const session = createSession(
    resolved,
    createFraming(resolved, () => {}),
    onReady,
    fields || (() => undefined),
  )
  return { session, onReady }
}

const codes = (errors: { code: string }[]) => errors.map((e) => e.code)

describe('session', () => {
  it('without ready: sends the login frame (with the extra fields) and is ready at once', () => {
    const { session, onReady } = setup({ login: () => ({ op: 'Login', payload: { token: 't' } }) }, () => ({
      since: 3,
    }))
    const link = createFakeLink()
    session.start(link)
    expect(link.sent).toEqual(['{"Operator":"Login","token":"t","since":3}'])
    expect(session.phase).toBe('ready')
    expect(onReady).toHaveBeenCalledTimes(1)
    vi.advanceTimersByTime(60_000)
    expect(link.dropped).toEqual([])
  })

  it('with ready: authenticating until ready.ok; one of ready.fail halts the link UNAUTHORIZED', () => {
    const { session, onReady } = setup({ ready: { ok: 'LoginOK', fail: ['LoginFail'] } })
    const first = createFakeLink()
    session.start(first)
    session.frame('Other', {})
    expect(session.phase).toBe('authenticating')
    session.frame('LoginOK', {})
    expect(session.phase).toBe('ready')
    expect(onReady).toHaveBeenCalledTimes(1)
    const second = createFakeLink()
    session.start(second)
    session.frame('LoginFail', {})
    expect(codes(second.halted)).toEqual(['UNAUTHORIZED'])
    expect(onReady).toHaveBeenCalledTimes(1)
  })

  it('a login that never settles, or no ready.ok, drops the link TIMEOUT after ready.timeout', () => {
    const { session } = setup({ login: () => new Promise(() => {}), ready: { ok: 'OK', timeout: 5000 } })
    const link = createFakeLink()
    session.start(link)
    vi.advanceTimersByTime(4999)
    expect(link.dropped).toEqual([])
    vi.advanceTimersByTime(1)
    expect(codes(link.dropped)).toEqual(['TIMEOUT'])
  })

  it('a login that throws or rejects drops the link LOGIN_ERROR', async () => {
    for (const login of [
      () => {
        throw new Error('no code')
      },
      () => Promise.reject(new Error('no code')),
    ]) {
      const { session } = setup({ login })
      const link = createFakeLink()
      session.start(link)
      await Promise.resolve()
      expect(codes(link.dropped)).toEqual(['LOGIN_ERROR'])
    }
  })

  it('a login resolving after its link ended sends nothing, on that link or the next', async () => {
    let answer: (frame: { op: string }) => void = () => {}
    const { session, onReady } = setup({ login: () => new Promise((resolve) => (answer = resolve)) })
    const old = createFakeLink()
    session.start(old)
    const late = answer
    session.end()
    expect(vi.getTimerCount()).toBe(0)
    const next = createFakeLink()
    session.start(next)
    late({ op: 'Login' })
    await Promise.resolve()
    expect(old.sent).toEqual([])
    expect(next.sent).toEqual([])
    expect(onReady).not.toHaveBeenCalled()
    // The timer of the ended link is gone: the new link's own bounds it.
    expect(vi.getTimerCount()).toBe(1)
  })

  it('the server ending the session halts the link SESSION_ENDED, whatever the phase', () => {
    const { session } = setup({ ready: { ok: 'OK' } })
    const link = createFakeLink()
    session.start(link)
    session.frame('SessionEnd', { reason: 'elsewhere' })
    expect(codes(link.halted)).toEqual(['SESSION_ENDED'])
    expect(link.halted[0]!.message).toBe('elsewhere')
    expect(vi.getTimerCount()).toBe(0)
  })
})

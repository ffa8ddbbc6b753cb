import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../src/errors'
import { miniProgramPlatform } from '../src/platform/mini-program'
import type { TransportEvents } from '../src/transport'
import { createTransport, type TransportInput } from './helpers/resolved'
import { createScriptPlatform, type ScriptPlatformOptions } from './helpers/script-platform'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

type Logged = { [K in keyof TransportEvents]: [K, TransportEvents[K]] }[keyof TransportEvents]

function setup(options: Partial<TransportInput> = {}, platformOptions: ScriptPlatformOptions = {}) {
  const sp = createScriptPlatform(platformOptions)
  const t = createTransport({ platform: sp.platform, url: 'ws://test', random: () => 0.5, ...options })
  const log: Logged[] = []
  for (const type of ['state', 'open', 'close', 'error', 'message', 'reconnecting'] as const) {
    t.on(type, (event: any) => log.push([type, event] as Logged))
  }
  const of = <K extends keyof TransportEvents>(type: K) =>
    log.filter((e) => e[0] === type).map((e) => e[1]) as TransportEvents[K][]
  /** The handle of the newest link that opened. */
  const link = () => of('open').at(-1)!
  return { t, sp, log, of, link }
}

/** Starts and opens the first socket. */
function opened(options: Partial<TransportInput> = {}, platformOptions: ScriptPlatformOptions = {}) {
  const s = setup(options, platformOptions)
  s.t.start()
  s.sp.last!.open()
  return s
}

describe('transport: connecting', () => {
  it('start() connects once, open moves to open and emits open', () => {
    const { t, sp, of } = setup()
    expect(t.state).toBe('idle')
    expect(sp.sockets).toHaveLength(0) // nothing happens before start()
    t.start()
    t.start()
    expect(t.state).toBe('connecting')
    expect(sp.sockets.map((s) => s.url)).toEqual(['ws://test'])
    sp.last!.open()
    expect(t.state).toBe('open')
    expect(of('open')).toHaveLength(1)
    expect(of('state')).toEqual([
      { from: 'idle', to: 'connecting' },
      { from: 'connecting', to: 'open' },
    ])
  })

  it('calls the URL provider for every connect', () => {
    let n = 0
    const { t, sp } = opened({ url: () => `ws://test/?t=${++n}` })
    sp.last!.close(1006)
    sp.last!.close(1006)
    vi.runOnlyPendingTimers()
    t.reconnect()
    expect(sp.sockets.map((s) => s.url)).toEqual([
      'ws://test/?t=1',
      'ws://test/?t=2',
      'ws://test/?t=3',
      'ws://test/?t=4',
    ])
  })

  it('a throwing URL provider is URL_ERROR and a failed attempt; it is asked again after the backoff', () => {
    let fail = true
    const { t, sp, of } = setup({
      url: () => {
        if (fail) throw new Error('no token')
        return 'ws://fresh'
      },
    })
    t.start()
    expect(sp.sockets).toHaveLength(0)
    expect(of('error').map((e) => [e.code, e.message])).toEqual([['URL_ERROR', 'no token']])
    expect(t.state).toBe('backoff')
    expect(of('reconnecting')).toEqual([{ attempt: 1, delay: 250 }])
    fail = false
    vi.advanceTimersByTime(250)
    expect(sp.sockets.map((s) => s.url)).toEqual(['ws://fresh'])
    expect(t.state).toBe('connecting')
  })

  it('a platform that throws in connect() is SOCKET_ERROR and a failed attempt', () => {
    const { t, sp, of } = setup()
    sp.refuseNext(new Error('exceed max concurrent count'))
    t.start()
    expect(of('error')[0]!.code).toBe('SOCKET_ERROR')
    expect(of('error')[0]!.message).toBe('exceed max concurrent count')
    expect(t.state).toBe('backoff')
    vi.advanceTimersByTime(250)
    expect(sp.sockets).toHaveLength(1)
  })

  it('a connect refused through `fail` inside connectSocket, with no task, is one failed attempt', () => {
    // The wx adapter reports the `fail` and then throws for the missing task.
    const api = { connectSocket: (o: any) => o.fail({ errMsg: 'connectSocket:fail url not in domain list' }) }
    const { t, of } = setup({ platform: miniProgramPlatform(api) })
    t.start()
    expect(of('error').map((e) => e.message)).toEqual(['connectSocket:fail url not in domain list'])
    expect(of('reconnecting')).toEqual([{ attempt: 1, delay: 250 }])
    expect(t.state).toBe('backoff')
    expect(vi.getTimerCount()).toBe(1)
  })

  it('abandons a socket that does not open within connectTimeout, without waiting for its close', () => {
    const { t, sp, of } = setup({ connectTimeout: 3000 })
    t.start()
    vi.advanceTimersByTime(2999)
    expect(t.state).toBe('connecting')
    vi.advanceTimersByTime(1)
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    expect(of('error').map((e) => e.code)).toEqual(['CONNECT_TIMEOUT'])
    expect(of('close')).toEqual([]) // it never opened
    expect(t.state).toBe('backoff')
    vi.advanceTimersByTime(250)
    expect(sp.sockets).toHaveLength(2)
    expect(sp.alive()).toEqual([sp.sockets[1]])
  })

  it('the default connect timeout is 10 s', () => {
    const { t } = setup()
    t.start()
    vi.advanceTimersByTime(9999)
    expect(t.state).toBe('connecting')
    vi.advanceTimersByTime(1)
    expect(t.state).toBe('backoff')
  })
})

describe('transport: backoff', () => {
  it('grows by factor from minDelay, capped at maxDelay, with full jitter (random() * bound)', () => {
    const { t, sp, of } = setup({ random: () => 0.999, connectTimeout: 1 })
    t.start()
    const bounds = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]
    for (const bound of bounds) {
      vi.advanceTimersByTime(1) // connect timeout
      const delay = of('reconnecting').at(-1)!.delay
      expect(delay).toBeCloseTo(0.999 * bound)
      const count = sp.sockets.length
      vi.advanceTimersByTime(delay - 1)
      expect(sp.sockets).toHaveLength(count) // not a millisecond early
      vi.advanceTimersByTime(1)
      expect(sp.sockets).toHaveLength(count + 1)
    }
    expect(of('reconnecting').map((r) => r.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7, 8])
    expect(t.state).toBe('connecting')
  })

  it('honours minDelay, maxDelay and factor, and draws a fresh random value per attempt', () => {
    const draws = [0, 0.25, 0.5, 0.75, 1]
    const { t, of } = setup({
      random: () => draws.shift()!,
      connectTimeout: 1,
      reconnect: { minDelay: 100, maxDelay: 1000, factor: 3 },
    })
    t.start()
    for (let i = 0; i < 5; i++) {
      vi.runOnlyPendingTimers() // the connect timeout
      vi.runOnlyPendingTimers() // the backoff delay
    }
    // bounds 100, 300, 900, 1000 (cap), 1000
    expect(of('reconnecting').map((r) => r.delay)).toEqual([0, 75, 450, 750, 1000])
  })

  it('with Math.random, every delay lies in [0, bound)', () => {
    const { t, of } = setup({ random: undefined, connectTimeout: 1 })
    t.start()
    for (let i = 0; i < 12; i++) {
      vi.runOnlyPendingTimers()
      vi.runOnlyPendingTimers()
    }
    expect(of('reconnecting')).toHaveLength(12)
    of('reconnecting').forEach(({ attempt, delay }) => {
      const bound = Math.min(30000, 500 * 2 ** (attempt - 1))
      expect(delay).toBeGreaterThanOrEqual(0)
      expect(delay).toBeLessThan(bound)
    })
  })

  it('reconnects at once after a link that had opened drops, then backs off', () => {
    const { t, sp, of } = opened()
    sp.last!.close(1006, 'gone')
    expect(of('close')).toEqual([{ code: 1006, reason: 'gone' }])
    expect(sp.sockets).toHaveLength(2) // immediate: no timer in between
    expect(t.state).toBe('connecting')
    expect(of('reconnecting')).toEqual([{ attempt: 1, delay: 0 }])
    sp.last!.error()
    expect(of('reconnecting')[1]).toEqual({ attempt: 2, delay: 500 }) // 0.5 * 1000
    expect(t.state).toBe('backoff')
  })

  it('an accept-then-drop server cannot cause a tight loop: the count resets only after stableAfter', () => {
    const { t, sp, of } = opened({ random: () => 1 })
    for (let i = 0; i < 6; i++) {
      vi.advanceTimersByTime(100)
      sp.last!.close(1000) // the server drops every link after 100 ms
      vi.advanceTimersByTime(of('reconnecting').at(-1)!.delay)
      sp.last!.open()
    }
    expect(of('reconnecting').map((r) => r.delay)).toEqual([0, 1000, 2000, 4000, 8000, 16000])
    // a link that stays up for stableAfter (5 s) earns a fresh start: immediate again
    vi.advanceTimersByTime(5000)
    sp.last!.close(1000)
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 1, delay: 0 })
    expect(t.state).toBe('connecting')
  })

  it('a link up for just under stableAfter does not reset the count', () => {
    const { sp, of } = opened({ random: () => 1 })
    sp.last!.close(1000)
    sp.last!.open()
    vi.advanceTimersByTime(4999)
    sp.last!.close(1000)
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 2, delay: 1000 })
  })

  it('maxAttempts failed attempts in a row lead to failed; reconnect() starts over', () => {
    const { t, sp, of } = setup({ connectTimeout: 1, reconnect: { maxAttempts: 2 } })
    t.start()
    vi.advanceTimersByTime(1) // first connect fails
    vi.advanceTimersByTime(250 + 1) // attempt 1 fails
    vi.advanceTimersByTime(500 + 1) // attempt 2 fails
    expect(t.state).toBe('failed')
    expect(sp.sockets).toHaveLength(3)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    expect(sp.sockets).toHaveLength(3)
    t.reconnect()
    expect(t.state).toBe('connecting')
    expect(sp.sockets).toHaveLength(4)
    vi.advanceTimersByTime(1)
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 1, delay: 250 }) // the count was reset
  })

  it('maxAttempts 0 never reconnects', () => {
    const { t, sp } = opened({ reconnect: { maxAttempts: 0 } })
    sp.last!.close(1006)
    expect(t.state).toBe('failed')
    expect(sp.sockets).toHaveLength(1)
  })
})

describe('transport: heartbeat', () => {
  const hb = { interval: 1000, timeout: 500 }

  it('pings exactly interval after the last inbound frame, only while open', () => {
    const { t, sp } = setup({ heartbeat: hb })
    t.start()
    vi.advanceTimersByTime(5000)
    expect(sp.last!.sent).toEqual([]) // no ping while connecting
    sp.last!.open()
    vi.advanceTimersByTime(600)
    sp.last!.message('x')
    vi.advanceTimersByTime(999)
    expect(sp.last!.sent).toEqual([])
    vi.advanceTimersByTime(1)
    expect(sp.last!.sent).toEqual(['{"Operator":"Heart"}'])
    expect(t.state).toBe('open')
  })

  it('inbound frames arm no timer: the one timer, when it fires, waits out the rest of the interval', () => {
    const { sp } = opened({ heartbeat: hb })
    const set = vi.spyOn(globalThis, 'setTimeout')
    const clear = vi.spyOn(globalThis, 'clearTimeout')
    for (let i = 0; i < 100; i++) {
      vi.advanceTimersByTime(5)
      sp.last!.message('x')
    }
    expect(set).not.toHaveBeenCalled()
    expect(clear).not.toHaveBeenCalled()
    vi.advanceTimersByTime(500) // the open's timer: the last frame came 500 ms ago
    expect(set).toHaveBeenCalledTimes(1)
    expect(sp.last!.sent).toEqual([])
    vi.advanceTimersByTime(499)
    expect(sp.last!.sent).toEqual([])
    vi.advanceTimersByTime(1) // exactly interval after the last frame
    expect(sp.last!.sent).toEqual(['{"Operator":"Heart"}'])
    set.mockRestore()
    clear.mockRestore()
  })

  it('a frozen link is abandoned at interval + timeout and the next socket opens at once', () => {
    const { t, sp, of } = opened({ heartbeat: hb })
    const first = sp.last!
    vi.advanceTimersByTime(1499)
    expect(first.closedByUs).toBe(false)
    vi.advanceTimersByTime(1)
    expect(first.closedByUs).toBe(true)
    expect(first.ended).toBe(false) // we did not wait for a close event
    expect(sp.sockets).toHaveLength(2)
    expect(sp.alive()).toEqual([sp.sockets[1]])
    expect(t.state).toBe('connecting')
    expect(of('error').map((e) => e.code)).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(of('close')).toEqual([{ code: 4000, reason: 'heartbeat timeout' }])
  })

  it("a deadline that fires late (a hidden tab's throttled timers) pings once more before calling the link dead", () => {
    // Chrome throttles a hidden tab's timers (https://developer.chrome.com/blog/timer-throttling-in-chrome-88):
    // a deadline can run long after it was due, with the answer still queued behind it.
    const { t, sp, of } = opened({ heartbeat: hb })
    vi.advanceTimersByTime(1000)
    expect(sp.last!.sent).toEqual(['{"Operator":"Heart"}'])
    vi.setSystemTime(Date.now() + 60_000) // the page slept; the timer has not run yet
    vi.advanceTimersByTime(500)
    expect(t.state).toBe('open')
    expect(of('error')).toEqual([])
    expect(sp.last!.sent).toEqual(['{"Operator":"Heart"}', '{"Operator":"Heart"}'])
    sp.last!.message('pong')
    vi.advanceTimersByTime(999)
    expect(t.state).toBe('open')
    expect(sp.sockets).toHaveLength(1)
  })

  it('a late deadline probes only once: a second one without any frame ends the link', () => {
    const { sp, of } = opened({ heartbeat: hb })
    vi.advanceTimersByTime(1000)
    vi.setSystemTime(Date.now() + 60_000)
    vi.advanceTimersByTime(500)
    vi.setSystemTime(Date.now() + 60_000)
    vi.advanceTimersByTime(500)
    expect(of('error').map((e) => e.code)).toEqual(['HEARTBEAT_TIMEOUT'])
    expect(sp.sockets[0]!.closedByUs).toBe(true)
  })

  it('any frame after the ping keeps the link', () => {
    const { t, sp } = opened({ heartbeat: hb })
    vi.advanceTimersByTime(1400)
    sp.last!.message('pong')
    vi.advanceTimersByTime(999)
    expect(t.state).toBe('open')
    expect(sp.sockets).toHaveLength(1)
  })

  it('uses the message option, and heartbeat: false arms no timer while open', () => {
    const a = opened({ heartbeat: { ...hb, message: () => 'PING' } })
    vi.advanceTimersByTime(1000)
    expect(a.sp.last!.sent).toEqual(['PING'])
    a.t.close()
    const b = opened({ heartbeat: false })
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(100_000)
    expect(b.sp.last!.sent).toEqual([])
    expect(b.t.state).toBe('open')
  })

  it('the default ping is {"Operator":"Heart"} after 25 s, dead 10 s later', () => {
    const { sp } = opened()
    vi.advanceTimersByTime(25_000)
    expect(sp.sockets[0]!.sent).toEqual(['{"Operator":"Heart"}'])
    vi.advanceTimersByTime(9_999)
    expect(sp.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(sp.sockets).toHaveLength(2)
  })
})

describe('transport: close()', () => {
  for (const phase of ['connecting', 'open', 'backoff'] as const) {
    it(`during ${phase}: nothing reopens and no timer is left`, () => {
      const { t, sp, of } = setup({ connectTimeout: 100 })
      t.start()
      if (phase === 'open') sp.last!.open()
      if (phase === 'backoff') vi.advanceTimersByTime(100)
      expect(t.state).toBe(phase)
      t.close()
      expect(t.state).toBe('closed')
      expect(vi.getTimerCount()).toBe(0)
      expect(sp.alive()).toEqual([])
      expect(sp.watchers()).toBe(0)
      const count = sp.sockets.length
      vi.advanceTimersByTime(120_000)
      sp.network(false)
      sp.network(true)
      sp.app(false)
      sp.app(true)
      t.start()
      t.reconnect()
      for (const link of of('open')) {
        link.drop(new MpbusError('TIMEOUT', 'x'))
        link.halt(new MpbusError('UNAUTHORIZED', 'x'))
        expect(link.send('x')).toBe(false)
      }
      expect(sp.sockets).toHaveLength(count)
      expect(t.state).toBe('closed')
      expect(of('state').at(-1)).toEqual({ from: phase, to: 'closed' })
      if (phase === 'open') expect(of('close')).toEqual([{ code: 4000, reason: 'closed' }])
    })
  }

  it('close() from inside a close listener stops the immediate reconnect', () => {
    const { t, sp } = opened()
    t.on('close', () => t.close())
    sp.last!.close(1006)
    // the reconnect was decided before the listener ran, so one socket was opened; it is closed again
    expect(sp.alive()).toEqual([])
    expect(t.state).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('events from a socket we let go are ignored, even if the adapter leaks them', () => {
    const { t, sp, of } = opened({ connectTimeout: 100 }, { leaky: true })
    const first = sp.last!
    t.reconnect()
    const second = sp.last!
    first.message('late')
    first.close(1006)
    first.error()
    expect(of('message')).toEqual([])
    expect(t.state).toBe('connecting')
    expect(sp.sockets).toHaveLength(2)
    second.open()
    expect(t.state).toBe('open')
  })
})

describe('transport: network', () => {
  it('offline closes the link and makes no attempts; online connects at once', () => {
    const { t, sp, of } = opened()
    sp.network(false)
    expect(t.state).toBe('offline')
    expect(sp.alive()).toEqual([])
    expect(of('close')).toEqual([{ code: 4000, reason: 'offline' }])
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(600_000)
    expect(sp.sockets).toHaveLength(1)
    sp.network(true)
    expect(t.state).toBe('connecting')
    expect(sp.sockets).toHaveLength(2)
  })

  it('offline during backoff cancels the pending attempt', () => {
    const { t, sp } = setup({ connectTimeout: 10 })
    t.start()
    vi.advanceTimersByTime(10)
    expect(t.state).toBe('backoff')
    sp.network(false)
    expect(t.state).toBe('offline')
    expect(vi.getTimerCount()).toBe(0)
  })

  it('start() goes offline when the platform reports offline at first', () => {
    const { t, sp } = setup({}, { online: false })
    t.start()
    expect(t.state).toBe('offline')
    expect(sp.sockets).toHaveLength(0)
    sp.network(true)
    expect(sp.sockets).toHaveLength(1)
  })
})

describe('transport: app hide/show', () => {
  const hb = { interval: 1000, timeout: 500 }

  it('hidden: keeps the socket, stops the heartbeat; a close meanwhile starts nothing; shown: connects at once', () => {
    const { t, sp, of } = opened({ heartbeat: hb })
    sp.app(false)
    expect(t.state).toBe('suspended')
    expect(sp.alive()).toEqual([sp.sockets[0]])
    expect(vi.getTimerCount()).toBe(0) // no ping while hidden
    sp.last!.message('late news') // still delivered, but it does not restart the heartbeat
    expect(of('message')).toEqual(['late news'])
    expect(vi.getTimerCount()).toBe(0)
    sp.last!.close(1000, 'interrupted') // the platform closes it about 5 s later
    expect(of('close')).toEqual([{ code: 1000, reason: 'interrupted' }])
    expect(t.state).toBe('suspended')
    vi.advanceTimersByTime(60_000)
    expect(sp.sockets).toHaveLength(1)
    sp.app(true)
    expect(t.state).toBe('connecting')
    expect(sp.sockets).toHaveLength(2)
  })

  it('shown with a kept socket whose close (held while suspended) comes just after: waits out the resume window', () => {
    const { t, sp } = opened({ heartbeat: hb })
    sp.app(false)
    sp.app(true)
    // WeChat delivers the close of the suspension on the return: connects fail for a moment then.
    sp.last!.close(1000, 'interrupted')
    expect(t.state).toBe('backoff')
    vi.advanceTimersByTime(299)
    expect(sp.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(sp.sockets).toHaveLength(2)
  })

  it('shown with a kept socket that answers: a later close is retried at once again', () => {
    const { t, sp } = opened({ heartbeat: hb })
    sp.app(false)
    sp.app(true)
    sp.last!.message('{"Operator":"HeartOK"}')
    sp.last!.close(1006)
    expect(t.state).toBe('connecting')
    expect(sp.sockets).toHaveLength(2)
  })

  it('shown while the socket still seems open: pings at once and abandons it if nothing answers', () => {
    const { t, sp } = opened({ heartbeat: hb })
    sp.app(false)
    sp.app(true)
    expect(t.state).toBe('open')
    expect(sp.last!.sent).toEqual(['{"Operator":"Heart"}'])
    vi.advanceTimersByTime(500)
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    expect(sp.sockets).toHaveLength(2)
  })

  it('shown: a connect that fails while the app is still resuming is retried after 300 ms', () => {
    const { sp, of } = opened()
    sp.app(false)
    sp.last!.close(1000)
    sp.refuseNext()
    sp.app(true)
    expect(of('error').at(-1)!.message).toContain('runningState=suspend')
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 1, delay: 300 })
    vi.advanceTimersByTime(299)
    expect(sp.sockets).toHaveLength(1)
    vi.advanceTimersByTime(1)
    expect(sp.sockets).toHaveLength(2)
    sp.last!.error()
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 2, delay: 500 }) // then normal backoff
  })

  it('hidden while connecting or in backoff: the attempt is let go, nothing is pending', () => {
    const { t, sp } = setup({ connectTimeout: 10 })
    t.start()
    sp.app(false)
    expect(t.state).toBe('suspended')
    expect(sp.alive()).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
    sp.app(true)
    vi.advanceTimersByTime(10)
    expect(t.state).toBe('backoff')
    sp.app(false)
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(60_000)
    expect(sp.sockets).toHaveLength(2)
  })

  it('offline and hidden together: connects only when both have cleared', () => {
    const { t, sp } = opened()
    sp.app(false)
    sp.network(false)
    expect(t.state).toBe('offline')
    sp.app(true)
    expect(t.state).toBe('offline')
    sp.app(false)
    sp.network(true)
    expect(t.state).toBe('suspended')
    expect(sp.sockets).toHaveLength(1)
    sp.app(true)
    expect(sp.sockets).toHaveLength(2)
  })
})

describe('transport: close policy', () => {
  it('a close code in stopCodes (default 4001) ends the transport in failed', () => {
    const { t, sp, of } = opened()
    sp.last!.close(4001, 'logged out elsewhere')
    expect(t.state).toBe('failed')
    expect(of('close')).toEqual([{ code: 4001, reason: 'logged out elsewhere' }])
    expect(sp.sockets).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('stopCodes and shouldReconnect can be set', () => {
    const a = opened({ stopCodes: [4100] })
    a.sp.last!.close(4001)
    expect(a.t.state).toBe('connecting')
    a.sp.last!.open()
    a.sp.last!.close(4100)
    expect(a.t.state).toBe('failed')

    const seen: number[] = []
    const b = opened({
      shouldReconnect: (close) => {
        seen.push(close.code)
        return close.code !== 1000
      },
    })
    b.sp.last!.close(4001)
    expect(b.t.state).toBe('connecting')
    b.sp.last!.open()
    b.sp.last!.close(1000)
    expect(b.t.state).toBe('failed')
    expect(seen).toEqual([4001, 1000])
  })

  it('options given as undefined keep their defaults', () => {
    const { t, sp } = opened({
      stopCodes: undefined,
      connectTimeout: undefined,
      reconnect: { minDelay: undefined },
    })
    sp.last!.close(4001)
    expect(t.state).toBe('failed')
  })
})

describe("transport: a link's drop(), halt(), send(); reconnect()", () => {
  it('drop() abandons the link, reports the error and backs off; it never counts the link as stable', () => {
    const { t, sp, of, link } = opened({ random: () => 1 })
    vi.advanceTimersByTime(10_000) // long enough to be stable, but the login timed out
    const error = new MpbusError('TIMEOUT', 'no login reply')
    const first = link()
    first.drop(error)
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    expect(of('error')).toEqual([error])
    expect(of('close')).toEqual([{ code: 4000, reason: 'no login reply' }])
    expect(of('reconnecting')).toEqual([{ attempt: 1, delay: 0 }])
    sp.last!.open()
    vi.advanceTimersByTime(10_000)
    link().drop(error)
    expect(of('reconnecting').at(-1)).toEqual({ attempt: 2, delay: 1000 })
    expect(t.state).toBe('backoff')
    link().drop(error) // that link has ended: nothing to drop
    first.drop(error)
    expect(of('reconnecting')).toHaveLength(2)
  })

  it('halt() goes to failed and stays there; reconnect() leaves it', () => {
    const { t, sp, of, link } = opened()
    const refused = new MpbusError('UNAUTHORIZED', 'bad token')
    link().halt(refused)
    expect(t.state).toBe('failed')
    expect(t.failure).toBe(refused)
    expect(of('error').map((e) => e.code)).toEqual(['UNAUTHORIZED'])
    expect(sp.alive()).toEqual([])
    vi.advanceTimersByTime(600_000)
    sp.network(false)
    sp.network(true)
    expect(sp.sockets).toHaveLength(1)
    t.reconnect()
    expect(t.state).toBe('connecting')
    expect(t.failure).toBeUndefined()
    expect(sp.sockets).toHaveLength(2)
  })

  it('reconnect() replaces an open link at once and resets the attempts', () => {
    const { t, sp, of } = opened()
    t.reconnect()
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    expect(of('close')).toEqual([{ code: 4000, reason: 'reconnect' }])
    expect(sp.alive()).toEqual([sp.sockets[1]])
    expect(vi.getTimerCount()).toBe(1) // only the connect timeout
  })

  it('send() sends only while its link is current and open; otherwise false, and done is not called', () => {
    const { t, sp, link } = opened()
    const results: unknown[] = []
    const first = link()
    expect(first.send('b', (e) => results.push(e))).toBe(true)
    expect(sp.last!.sent).toEqual(['b'])
    expect(results).toEqual([undefined])
    sp.app(false) // hidden: the socket is kept but takes nothing
    expect(first.current).toBe(true)
    expect(first.send('c', (e) => results.push(e))).toBe(false)
    sp.app(true)
    sp.last!.close(1006)
    expect(first.current).toBe(false)
    vi.advanceTimersByTime(300) // a close just after the show waits out the resume window
    expect(sp.sockets).toHaveLength(2)
    sp.last!.open()
    expect(first.send('d', (e) => results.push(e))).toBe(false) // an old link never reaches the new socket
    expect(sp.last!.sent).toEqual([])
    expect(results).toEqual([undefined])
    t.close()
  })
})

describe('transport: a platform that reports synchronously inside connect()', () => {
  it('delivers open after connect() returns, so an open listener can send on the new socket', () => {
    // A user's own Platform (an in-memory one for tests, say) may call open() before returning.
    const sent: unknown[] = []
    const platform = {
      name: 'sync',
      connect(_url: string, listeners: { open(): void }) {
        listeners.open()
        return {
          send(data: unknown, done?: () => void) {
            sent.push(data)
            if (done) done()
          },
          close() {},
        }
      },
    }
    const t = createTransport({ platform: platform as any, url: 'ws://sync', heartbeat: false })
    const results: boolean[] = []
    t.on('open', (link) => results.push(link.send('hello')))
    t.start()
    expect(t.state).toBe('open')
    expect(results).toEqual([true])
    expect(sent).toEqual(['hello'])
    t.close()
  })
})

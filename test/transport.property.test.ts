// The transport's state machine under random interleavings of platform events (on the current
// socket and on stale ones), timer firings, network and app events, and user calls, some of them
// made from inside event listeners. After every step:
// - at most one socket is live (neither closed by us nor ended by the platform);
// - the state and what is pending agree: open has its opened socket; connecting has one socket
//   and one timer (its timeout); backoff has no socket and one timer; idle, offline, failed and
//   closed have neither socket nor timer; suspended has no timer (and at most its old socket);
// - after close(): no new socket, no timer, state closed, whatever happens next.
import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../src/errors'
import type { Link, Transport } from '../src/transport'
import { createTransport } from './helpers/resolved'
import { createScriptPlatform, type ScriptPlatform } from './helpers/script-platform'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

type UserCall = 'start' | 'send' | 'reconnect' | 'drop' | 'halt' | 'close'
type Step =
  | { kind: 'socket'; which: 'current' | number; event: 'open' | 'message' | 'close' | 'error'; code: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'pending' }
  | { kind: 'network'; online: boolean }
  | { kind: 'app'; visible: boolean }
  | { kind: 'refuse' }
  | { kind: 'user'; call: UserCall }

const userCall = fc.constantFrom<UserCall>('start', 'send', 'reconnect', 'drop', 'halt', 'close')

const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('socket' as const),
      which: fc.oneof(fc.constant('current' as const), fc.nat(20)),
      event: fc.constantFrom('open' as const, 'message' as const, 'close' as const, 'error' as const),
      code: fc.constantFrom(1000, 1006, 4001),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.constantFrom(0, 1, 99, 100, 150, 250, 300, 499, 500, 1000, 5000, 40_000),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'pending' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('network' as const), online: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('app' as const), visible: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'refuse' as const }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('user' as const), call: userCall }) },
)

const config = fc.record({
  heartbeat: fc.oneof(
    fc.constant(false as const),
    fc.record({ interval: fc.constantFrom(100, 1000), timeout: fc.constantFrom(50, 500) }),
  ),
  maxAttempts: fc.constantFrom(0, 1, 3, Infinity),
  leaky: fc.boolean(),
  flakyUrl: fc.boolean(),
  /** A user call made from inside a listener of this event (once per event). */
  reentry: fc.option(
    fc.record({
      on: fc.constantFrom(
        'state' as const,
        'close' as const,
        'open' as const,
        'error' as const,
        'reconnecting' as const,
      ),
      call: userCall,
    }),
  ),
})

/** The newest link the transport handed out: calls on it after it ended must do nothing. */
let link: Link | undefined

function call(t: Transport, name: UserCall): void {
  if (name === 'send') link?.send('frame')
  else if (name === 'drop') link?.drop(new MpbusError('TIMEOUT', 'login timed out'))
  else if (name === 'halt') link?.halt(new MpbusError('UNAUTHORIZED', 'no'))
  else t[name]()
}

function check(t: Transport, sp: ScriptPlatform, closedAt: number | undefined): void {
  const alive = sp.alive()
  const timers = vi.getTimerCount()
  expect(alive.length).toBeLessThanOrEqual(1)
  switch (t.state) {
    case 'open':
      expect(alive).toHaveLength(1)
      expect(alive[0]!.opened).toBe(true)
      expect(timers).toBeLessThanOrEqual(1) // the heartbeat's
      break
    case 'connecting':
      expect(alive).toHaveLength(1)
      expect(alive[0]!.opened).toBe(false)
      expect(timers).toBe(1) // the connect timeout
      break
    case 'backoff':
      expect(alive).toHaveLength(0)
      expect(timers).toBe(1) // the delay
      break
    case 'suspended':
      expect(timers).toBe(0)
      if (alive[0]) expect(alive[0].opened).toBe(true)
      break
    default: // idle, offline, failed, closed
      expect(alive).toHaveLength(0)
      expect(timers).toBe(0)
  }
  if (closedAt !== undefined) {
    expect(t.state).toBe('closed')
    expect(sp.sockets).toHaveLength(closedAt)
    expect(sp.watchers()).toBe(0)
  }
}

describe('transport: state machine properties', () => {
  it('one live socket, state and pending work agree, nothing after close()', () => {
    fc.assert(
      fc.property(config, fc.array(step, { minLength: 10, maxLength: 100, size: 'max' }), (cfg, steps) => {
        vi.clearAllTimers()
        const sp = createScriptPlatform({ leaky: cfg.leaky })
        let urls = 0
        const t = createTransport({
          platform: sp.platform,
          url: () => {
            if (cfg.flakyUrl && ++urls % 3 === 0) throw new Error('no token')
            return 'ws://x'
          },
          heartbeat: cfg.heartbeat,
          connectTimeout: 100,
          reconnect: { minDelay: 100, maxDelay: 1000, maxAttempts: cfg.maxAttempts, stableAfter: 300 },
        })
        let closedAt: number | undefined
        link = undefined
        t.on('open', (opened) => {
          link = opened
        })
        t.on('state', ({ to }) => {
          if (to === 'closed') closedAt = sp.sockets.length
        })
        // A runaway loop (an event that triggers itself for ever) fails the run instead of hanging it.
        let events = 0
        t.on('*', () => {
          if (++events > 20_000) throw new Error('runaway event loop')
        })
        if (cfg.reentry) {
          const { on, call: name } = cfg.reentry
          t.on(on, () => call(t, name))
        }
        t.start()
        check(t, sp, closedAt)
        for (const s of steps) {
          if (s.kind === 'socket') {
            const socket =
              s.which === 'current' ? sp.last : sp.sockets[s.which % Math.max(1, sp.sockets.length)]
            if (socket) {
              if (s.event === 'close') socket.close(s.code)
              else if (s.event === 'message') socket.message('{}')
              else socket[s.event]()
            }
          } else if (s.kind === 'advance') vi.advanceTimersByTime(s.ms)
          else if (s.kind === 'pending') vi.runOnlyPendingTimers()
          else if (s.kind === 'network') sp.network(s.online)
          else if (s.kind === 'app') sp.app(s.visible)
          else if (s.kind === 'refuse') sp.refuseNext()
          else call(t, s.call)
          check(t, sp, closedAt)
        }
        t.close()
        check(t, sp, closedAt)
        vi.advanceTimersByTime(100_000)
        check(t, sp, closedAt)
      }),
      // FC_RUNS=10000 for a longer search.
      { numRuns: Number(process.env.FC_RUNS) || 400 },
    )
  }, 600_000)
})

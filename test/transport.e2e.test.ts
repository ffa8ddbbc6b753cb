// The transport on real sockets: the wx runtime (real `ws` sockets), the mini program adapter,
// the test server, and the fault proxy between them breaking the link the ways phones do.
// Real timers with small intervals: these are bytes on the wire.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { miniProgramPlatform } from '../src/platform'
import type { Platform } from '../src/platform/types'
import {
  createFaultProxy,
  createTestServer,
  createWxRuntime,
  type FaultProxy,
  type TestServer,
} from '../src/testing'
import type { Link, Transport, TransportEvents } from '../src/transport'
import { createTransport, type TransportInput } from './helpers/resolved'
import { skip, until, useSteppedClock } from './helpers/time'

const disposers: Array<() => unknown> = []
afterEach(async () => {
  while (disposers.length) await disposers.pop()!()
  vi.useRealTimers()
})

const HB = { interval: 200, timeout: 200 }
const PING = '{"Operator":"Heart"}'

async function setup(
  options: Partial<TransportInput> = {},
  runtime: Parameters<typeof createWxRuntime>[0] = {},
) {
  // Real sockets on a clock that follows real time; a test can skip() it ahead to see that a wrong
  // rule would have acted (the exact timings are checked on the fake clock in transport.test.ts).
  useSteppedClock()
  const log: Array<{ type: keyof TransportEvents | 'sent'; event: any; at: number }> = []
  const server: TestServer = await createTestServer()
  disposers.push(() => server.close())
  const proxy: FaultProxy = await createFaultProxy({ port: server.port })
  disposers.push(() => proxy.close())
  const wx = createWxRuntime(runtime)
  disposers.push(() => wx.control.kill())
  const base = miniProgramPlatform(wx)
  let connects = 0
  const platform: Platform = {
    ...base,
    connect(url, listeners) {
      connects++
      const socket = base.connect(url, listeners)
      return {
        send(data, done) {
          log.push({ type: 'sent', event: data, at: Date.now() })
          socket.send(data, done)
        },
        close: (code, reason) => socket.close(code, reason),
      }
    },
  }
  const t: Transport = createTransport({
    platform,
    url: proxy.url(),
    heartbeat: HB,
    connectTimeout: 1000,
    reconnect: { minDelay: 20, maxDelay: 100 },
    ...options,
  })
  disposers.push(() => t.close())
  for (const type of ['state', 'open', 'close', 'error', 'message', 'reconnecting'] as const) {
    t.on(type, (event: any) => log.push({ type, event, at: Date.now() }))
  }
  const count = (type: keyof TransportEvents | 'sent') => log.filter((e) => e.type === type).length
  /** The states entered from log entry `from` on. */
  const statesFrom = (from: number) =>
    log.slice(from).flatMap((e) => (e.type === 'state' ? [e.event.to as string] : []))
  t.start()
  await until(() => t.state === 'open', 'first open')
  return { server, proxy, wx, t, log, count, statesFrom, connects: () => connects }
}

describe('transport end to end (wx runtime, fault proxy, test server)', () => {
  it('a frozen link is detected and replaced within interval + timeout', async () => {
    const { proxy, wx, t, log, count } = await setup()
    // Answer every ping for a while: the link is healthy. Three answered pings span more than
    // interval + timeout, so a heartbeat that ignored the answers would have dropped it by now.
    const answers = () => log.filter((e) => e.type === 'message' && String(e.event).includes('HeartOK'))
    await until(() => answers().length >= 3, 'three answered pings')
    expect(count('open')).toBe(1)
    expect(count('close')).toBe(0)
    expect(answers().length).toBeGreaterThan(0)

    const frozenAt = log.length
    proxy.freeze()
    proxy.pass() // new connections pass again; the frozen one stays frozen (a dead NAT mapping)
    await until(() => count('open') === 2, 'second open')
    const dead = log.find((e) => e.type === 'close')!
    expect(dead.event).toEqual({ code: 4000, reason: 'heartbeat timeout' })
    // Given up on the first unanswered ping, so within interval + timeout (transport.test.ts checks
    // the exact times on the fake clock). A second ping only when the deadline itself ran a whole
    // timeout late, as a loaded machine can make it: the rule for throttled timers.
    const pings = log.slice(frozenAt, log.indexOf(dead)).filter((e) => e.type === 'sent')
    expect(pings.map((e) => e.event)).toEqual(pings.length === 2 ? [PING, PING] : [PING])
    if (pings.length === 2) expect(pings[1]!.at - pings[0]!.at).toBeGreaterThanOrEqual(2 * HB.timeout)
    // the first frame on the new socket (the answer to a ping) arrives soon after
    const opened = log.filter((e) => e.type === 'open').at(-1)!
    await until(() => log.some((e) => e.type === 'message' && e.at >= opened.at), 'a frame on the new socket')
    expect(wx.control.liveSockets()).toBe(1)
    expect(t.state).toBe('open')
  })

  it('a reset link is replaced at once', async () => {
    const { proxy, t, log, count, statesFrom } = await setup()
    const resetAt = log.length
    proxy.reset()
    await until(() => count('open') === 2, 'reopen')
    // At once: straight back to connecting, no backoff between.
    expect(statesFrom(resetAt)).toEqual(['connecting', 'open'])
    expect(log.find((e) => e.type === 'reconnecting')!.event).toEqual({ attempt: 1, delay: 0 })
    expect(t.state).toBe('open')
  })

  it('refused connects during an outage back off, then recover', async () => {
    const { proxy, wx, t, log, count } = await setup()
    proxy.refuse()
    await until(() => count('reconnecting') >= 4, 'several attempts')
    expect(count('open')).toBe(1)
    const attempts = log.filter((e) => e.type === 'reconnecting').map((e) => e.event.attempt)
    expect(attempts.slice(0, 4)).toEqual([1, 2, 3, 4])
    proxy.pass()
    await until(() => t.state === 'open', 'recovery', 3000)
    expect(count('open')).toBe(2)
    expect(wx.control.liveSockets()).toBe(1)
  })

  it('survives a server restart', async () => {
    const { server, t, count, log } = await setup()
    await server.stop()
    await until(() => count('reconnecting') >= 2, 'attempts while the server is down')
    await server.start()
    await until(() => t.state === 'open' && count('open') === 2, 'reopen after restart', 3000)
    const link = log.filter((e) => e.type === 'open').at(-1)!.event as Link
    expect(link.send('{"Operator":"Hello"}')).toBe(true)
    await server.waitFor((r) => r.frame?.Operator === 'Hello')
    expect(server.clients()).toBe(1)
  })

  it('network off: offline with no attempts; network on: connects at once', async () => {
    const { wx, t, connects, log, statesFrom } = await setup()
    wx.control.offline()
    await until(() => t.state === 'offline', 'offline')
    const before = connects()
    await skip(10_000) // many backoff periods (10-100 ms): none may be spent on an attempt
    expect(connects()).toBe(before)
    expect(t.state).toBe('offline')
    const onAt = log.length
    wx.control.online()
    await until(() => t.state === 'open', 'online again')
    // At once: straight to connecting, no backoff between.
    expect(statesFrom(onAt)).toEqual(['connecting', 'open'])
    expect(wx.control.liveSockets()).toBe(1)
  })

  it('app hidden: no heartbeat, the platform closes the socket, nothing reconnects; shown: reconnects', async () => {
    // Events delivered while hidden (the kind model): the 'onShow' default is in quirks.e2e.test.ts.
    const { server, wx, t, connects, log, count } = await setup(
      {},
      { suspendDelay: 150, suspend: 'whileHidden' },
    )
    wx.control.hide()
    await until(() => t.state === 'suspended', 'suspended')
    const pings = server.received.length
    await until(() => log.some((e) => e.type === 'close'), 'the platform closing the socket')
    expect(log.find((e) => e.type === 'close')!.event.code).toBe(1000)
    const before = connects()
    const sent = count('sent')
    await skip(10_000) // many heartbeat intervals and backoff periods
    expect(connects()).toBe(before)
    expect(count('sent')).toBe(sent) // no ping while hidden
    expect(server.received.length).toBe(pings)
    expect(t.state).toBe('suspended')
    wx.control.show()
    await until(() => t.state === 'open', 'open after show')
    expect(wx.control.liveSockets()).toBe(1)
  })

  it('app shown before the platform closed the socket: a ping checks it and it is kept', async () => {
    const { server, wx, t, connects, log } = await setup(
      { heartbeat: { interval: 5000, timeout: 300 } },
      { suspendDelay: 5000 },
    )
    wx.control.hide()
    await until(() => t.state === 'suspended', 'suspended')
    const shownAt = log.length
    wx.control.show()
    await until(() => t.state === 'open', 'open after show')
    await server.waitFor((r) => r.frame?.Operator === 'Heart', 1000) // the probe
    const answered = () =>
      log.slice(shownAt).some((e) => e.type === 'message' && String(e.event).includes('HeartOK'))
    await until(answered, 'the answer to the probe')
    await skip(300) // past the probe's timeout: the HeartOK kept it
    expect(t.state).toBe('open')
    expect(connects()).toBe(1)
  })

  it('close() during backoff: nothing reopens', async () => {
    const { proxy, server, wx, t, connects } = await setup({
      reconnect: { minDelay: 300, maxDelay: 300 },
      random: () => 1,
    })
    proxy.refuse()
    await until(() => t.state === 'backoff', 'backoff')
    const before = connects()
    t.close()
    proxy.pass()
    await skip(10_000) // far past the 300 ms backoff
    expect(connects()).toBe(before)
    expect(t.state).toBe('closed')
    expect(wx.control.liveSockets()).toBe(0)
    expect(server.clients()).toBe(0)
  })

  it('a server close with a stop code ends the transport', async () => {
    const { server, t, connects, log } = await setup()
    server.closeAll(4001, 'logged out elsewhere')
    await until(() => t.state === 'failed', 'failed')
    expect(log.find((e) => e.type === 'close')!.event).toEqual({ code: 4001, reason: 'logged out elsewhere' })
    await skip(10_000) // far past any backoff
    expect(connects()).toBe(1)
    expect(server.clients()).toBe(0)
    t.reconnect()
    await until(() => t.state === 'open', 'reconnect() after failed')
  })
})

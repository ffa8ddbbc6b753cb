// The transport on real sockets: the wx runtime (real `ws` sockets), the mini program adapter,
// the test server, and the fault proxy between them breaking the link the ways phones do.
// Real timers with small intervals: these are bytes on the wire.
import { afterEach, describe, expect, it } from 'vitest'
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
import { sleep, until } from './helpers/e2e'
import { createTransport, type TransportInput } from './helpers/resolved'

const disposers: Array<() => unknown> = []
afterEach(async () => {
  while (disposers.length) await disposers.pop()!()
})

const HB = { interval: 200, timeout: 200 }

async function setup(
  options: Partial<TransportInput> = {},
  runtime: Parameters<typeof createWxRuntime>[0] = {},
) {
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
      return base.connect(url, listeners)
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
  const log: Array<{ type: keyof TransportEvents; event: any; at: number }> = []
  for (const type of ['state', 'open', 'close', 'error', 'message', 'reconnecting'] as const) {
    t.on(type, (event: any) => log.push({ type, event, at: Date.now() }))
  }
  const count = (type: keyof TransportEvents) => log.filter((e) => e.type === type).length
  t.start()
  await until(() => t.state === 'open', 'first open')
  return { server, proxy, wx, t, log, count, connects: () => connects }
}

describe('transport end to end (wx runtime, fault proxy, test server)', () => {
  it('a frozen link is detected and replaced within interval + timeout', async () => {
    const { proxy, wx, t, log, count } = await setup()
    // Answer every ping for a while: the link is healthy.
    await sleep(500)
    expect(count('open')).toBe(1)
    expect(log.some((e) => e.type === 'message' && String(e.event).includes('HeartOK'))).toBe(true)

    const frozenAt = Date.now()
    proxy.freeze()
    proxy.pass() // new connections pass again; the frozen one stays frozen (a dead NAT mapping)
    await until(() => count('open') === 2, 'second open', 3000)
    const dead = log.find((e) => e.type === 'close')!
    expect(dead.event).toEqual({ code: 4000, reason: 'heartbeat timeout' })
    expect(dead.at - frozenAt).toBeLessThanOrEqual(HB.interval + HB.timeout + 100)
    // the first frame on the new socket (the answer to a ping) arrives soon after
    const opened = log.filter((e) => e.type === 'open').at(-1)!
    await until(() => log.some((e) => e.type === 'message' && e.at >= opened.at), 'a frame on the new socket')
    expect(wx.control.liveSockets()).toBe(1)
    expect(t.state).toBe('open')
  })

  it('a reset link is replaced at once', async () => {
    const { proxy, t, log, count } = await setup()
    const resetAt = Date.now()
    proxy.reset()
    await until(() => count('open') === 2, 'reopen')
    expect(log.filter((e) => e.type === 'open').at(-1)!.at - resetAt).toBeLessThan(300)
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
    const { wx, t, connects } = await setup()
    wx.control.offline()
    await until(() => t.state === 'offline', 'offline')
    const before = connects()
    await sleep(400)
    expect(connects()).toBe(before)
    const onAt = Date.now()
    wx.control.online()
    await until(() => t.state === 'open', 'online again')
    expect(Date.now() - onAt).toBeLessThan(300)
    expect(wx.control.liveSockets()).toBe(1)
  })

  it('app hidden: no heartbeat, the platform closes the socket, nothing reconnects; shown: reconnects', async () => {
    // Events delivered while hidden (the kind model): the 'onShow' default is in quirks.e2e.test.ts.
    const { server, wx, t, connects, log } = await setup({}, { suspendDelay: 150, suspend: 'whileHidden' })
    wx.control.hide()
    await until(() => t.state === 'suspended', 'suspended')
    const pings = server.received.length
    await until(() => log.some((e) => e.type === 'close'), 'the platform closing the socket')
    expect(log.find((e) => e.type === 'close')!.event.code).toBe(1000)
    const before = connects()
    await sleep(500) // longer than interval + timeout
    expect(connects()).toBe(before)
    expect(server.received.length).toBe(pings) // no ping while hidden
    expect(t.state).toBe('suspended')
    wx.control.show()
    await until(() => t.state === 'open', 'open after show')
    expect(wx.control.liveSockets()).toBe(1)
  })

  it('app shown before the platform closed the socket: a ping checks it and it is kept', async () => {
    const { server, wx, t, connects } = await setup(
      { heartbeat: { interval: 5000, timeout: 300 } },
      { suspendDelay: 5000 },
    )
    wx.control.hide()
    await until(() => t.state === 'suspended', 'suspended')
    wx.control.show()
    await until(() => t.state === 'open', 'open after show')
    await server.waitFor((r) => r.frame?.Operator === 'Heart', 1000) // the probe
    await sleep(400) // past the probe's timeout: the HeartOK kept it
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
    await sleep(600)
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
    await sleep(300)
    expect(connects()).toBe(1)
    expect(server.clients()).toBe(0)
    t.reconnect()
    await until(() => t.state === 'open', 'reconnect() after failed')
  })
})

// Shared harness for end-to-end tests: a real ws test server behind a real TCP fault
// proxy, and buses on the wx-compatible runtime. Everything is torn down after each test.
import { afterEach, vi } from 'vitest'
import WebSocket from 'ws'
import { type BusOptions, createBus } from '../../src/index'
import type { ServerOptions } from '../../src/server/index'
import { createFaultProxy, createTestServer, createWxRuntime } from '../../src/testing/index'

type Disposable = () => unknown
const disposers: Disposable[] = []

afterEach(async () => {
  while (disposers.length) await disposers.pop()!()
  vi.useRealTimers() // a test that used the stepped clock (helpers/time.ts)
})

export async function startServer(options?: Parameters<typeof createTestServer>[0]) {
  const server = await createTestServer(options)
  disposers.push(() => server.close())
  const proxy = await createFaultProxy({ port: server.port })
  disposers.push(() => proxy.close())
  return { server, proxy }
}

export function runtime(options?: Parameters<typeof createWxRuntime>[0]) {
  const wx = createWxRuntime(options)
  disposers.push(() => wx.control.kill())
  return wx
}

/** Fast settings so faults are noticed in tens of milliseconds. */
export const fast: Partial<BusOptions> = {
  heartbeat: { interval: 150, timeout: 150 },
  reconnect: { minDelay: 10, maxDelay: 50 },
  connectTimeout: 500,
}

export function bus(options: BusOptions) {
  const b = createBus(options)
  disposers.push(() => b.close())
  return b
}

/** The frames of one operator that the server received, in arrival order. */
export function framesOf(server: { received: Array<{ frame: any }> }, op: string) {
  return server.received.map((r) => r.frame).filter((f) => f && f.Operator === op)
}

/** A raw `ws` client of a server: what it received, parsed, and how it closed; terminated after the test. */
export async function raw(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`)
  const got: any[] = []
  const closed: { code?: number } = {}
  ws.on('message', (data) => got.push(JSON.parse(data.toString())))
  ws.on('close', (code) => {
    closed.code = code
  })
  await new Promise((resolve) => ws.once('open', resolve))
  disposers.push(() => ws.terminate())
  return { ws, got, closed, send: (frame: object) => ws.send(JSON.stringify(frame)) }
}

/** For `mpbus/server`: logs in whoever names an `openId` (that is the user); refuses the rest. */
export const authenticate: ServerOptions['authenticate'] = (login) =>
  typeof login.openId === 'string' ? login.openId : null

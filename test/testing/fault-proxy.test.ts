import net from 'node:net'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createFaultProxy, type FaultProxy } from '../../src/testing/index'
import { rawServer } from '../helpers/servers'
import { until } from '../helpers/time'

let srv: Awaited<ReturnType<typeof rawServer>>
let proxy: FaultProxy
const clients: WebSocket[] = []

beforeEach(async () => {
  srv = await rawServer()
  proxy = await createFaultProxy({ port: srv.port })
})

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate()
  await proxy.close()
  await srv.close()
})

/** A ws client through the proxy, with everything it sees recorded. */
function client() {
  const ws = new WebSocket(proxy.url('/path'))
  clients.push(ws)
  const seen = {
    open: false,
    messages: [] as string[],
    errors: [] as string[],
    close: undefined as number | undefined,
  }
  ws.on('open', () => {
    seen.open = true
  })
  ws.on('message', (d) => seen.messages.push(d.toString()))
  ws.on('error', (e: NodeJS.ErrnoException) => seen.errors.push(e.code ?? e.message))
  ws.on('close', (code) => {
    seen.close = code
  })
  return { ws, seen, opened: () => until(() => seen.open, 'open') }
}

describe('fault proxy', () => {
  it('forwards both ways in pass mode', async () => {
    expect(proxy.url('/x')).toBe(`ws://127.0.0.1:${proxy.port}/x`)
    const c = client()
    await c.opened()
    expect(proxy.connections()).toBe(1)
    c.ws.send('up')
    await until(() => srv.got.length === 1, 'server receives')
    srv.peers[0]!.send('down')
    await until(() => c.seen.messages.length === 1, 'client receives')
    expect(c.seen.messages).toEqual(['down'])
    srv.peers[0]!.close(4000, 'bye')
    await until(() => c.seen.close !== undefined, 'close passes through')
    expect(c.seen.close).toBe(4000)
  })

  it('freeze stops delivery both ways without closing anything; new connects hang', async () => {
    const c = client()
    await c.opened()
    proxy.freeze()
    srv.peers[0]!.send('lost')
    c.ws.send('lost too')
    const late = client()
    await until(() => proxy.connections() === 2, 'the late connect accepted')
    // A frozen link drops what reaches it, so nothing can follow the lost frames on it to show they
    // are gone. A round trip on a fresh connection instead: it starts after they were written, and
    // takes several more trips through the proxy than forwarding them would have.
    proxy.pass()
    const fresh = client()
    await fresh.opened()
    fresh.ws.send('marker up')
    await until(() => srv.got.length > 0, 'the marker reaches the server')
    srv.peers[srv.peers.length - 1]!.send('fresh')
    await until(() => fresh.seen.messages.length === 1, 'fresh receives')
    expect(c.seen.messages).toEqual([])
    expect(srv.got).toEqual([{ data: 'marker up', binary: false }])
    expect(c.seen.close).toBeUndefined()
    expect(srv.closes).toEqual([])
    expect(late.seen.open).toBe(false)
    expect(late.seen.errors).toEqual([])
    expect(proxy.connections()).toBe(3)

    // Afterwards new connections work; the frozen ones stay dead, like a lost NAT mapping.
    srv.peers[0]!.send('still lost')
    srv.peers[srv.peers.length - 1]!.send('marker down') // after it, on the same server
    await until(() => fresh.seen.messages.length === 2, 'the marker reaches the fresh client')
    expect(c.seen.messages).toEqual([])
  })

  it('reset tears live connections down with RST at once', async () => {
    const c = client()
    await c.opened()
    proxy.reset()
    await until(() => c.seen.close !== undefined, 'client notices')
    // "At once" needs no clock: this client has no heartbeat and the server sent no close, so only
    // what the proxy did can end the link. That it is a reset, not a FIN, is the next test.
    expect(c.seen.close).toBe(1006)
    await until(() => srv.closes.length === 1, 'server notices')
    expect(proxy.connections()).toBe(0)
  })

  it('reset sends an RST, not a FIN', async () => {
    const raw = net.connect({ host: '127.0.0.1', port: proxy.port })
    const errors: string[] = []
    raw.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? ''))
    await until(() => proxy.connections() === 1, 'accepted')
    proxy.reset()
    await until(() => raw.destroyed, 'raw socket closed')
    expect(errors).toEqual(['ECONNRESET'])
  })

  it('refuse makes connects fail and resets live ones; pass listens again on the same port', async () => {
    const c = client()
    await c.opened()
    const port = proxy.port
    proxy.refuse()
    await until(() => c.seen.close !== undefined, 'live one reset')
    const refused = client()
    await until(() => refused.seen.close !== undefined, 'connect fails')
    expect(refused.seen.errors).toEqual(['ECONNREFUSED'])

    proxy.pass()
    expect(proxy.port).toBe(port)
    const again = client()
    await again.opened()
    again.ws.send('back')
    await until(() => srv.got.length === 1, 'forwarding again')
  })

  it('passes a server that is down on as a reset', async () => {
    await srv.close()
    const c = client()
    await until(() => c.seen.close !== undefined, 'connect fails')
    expect(c.seen.close).toBe(1006)
    expect(c.seen.open).toBe(false)
  })
})

import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import type { MpbusError } from '../src/errors'
import { webSocketPlatform } from '../src/index'
import { createStorageArea } from '../src/testing/index'
import { bus, fast, framesOf, runtime, startServer } from './helpers/e2e'
import { nextTurn, skip, until, useSteppedClock } from './helpers/time'

const login = () => ({ op: 'userLogin', payload: { userCode: 'code-1' } })
const ready = { ok: 'LoginOK', fail: ['LoginError', 'BanLogin'], timeout: 1000 }

describe('bus end to end (wx runtime, test server, fault proxy)', () => {
  it('cold start with a persisted outbox: login first, nothing before LoginOK, then the outbox in order', async () => {
    const { server, proxy } = await startServer()
    const storage = createStorageArea()
    // First life: offline the whole time, the app queues 20 messages, then is killed.
    const first = runtime({ storage })
    first.control.offline()
    const offlineBus = bus({ url: proxy.url(), platform: first, login, ready, ...fast })
    for (let i = 0; i < 20; i++) offlineBus.send('Chat', { n: i }).catch(() => {})
    await null // the outbox commits at the end of the task, in a microtask
    expect(offlineBus.queued).toBe(20)
    first.control.kill()

    // Second life: a cold start on the same storage, online.
    const wx = runtime({ storage })
    let releaseLogin = () => {}
    const held = new Promise<void>((resolve) => {
      releaseLogin = resolve
    })
    const unhook = server.onFrame((frame: any, reply: (f: object) => void) => {
      if (frame.Operator === 'userLogin') {
        held.then(() => reply({ Operator: 'LoginOK', openId: 'o-1' }))
        return true
      }
    })
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ...fast })
    await until(() => framesOf(server, 'userLogin').length === 1, 'login')
    // The heartbeat's first ping goes after the login on the same socket: anything flushed before
    // LoginOK would have arrived before it.
    await server.waitFor((r) => r.frame?.Operator === 'Heart')
    // Login went first, and nothing was flushed before LoginOK.
    expect(framesOf(server, 'Chat')).toHaveLength(0)
    expect(b.state).toBe('authenticating')
    releaseLogin()
    await until(() => framesOf(server, 'Chat').length === 20, 'flush')
    expect(framesOf(server, 'Chat').map((f) => f.n)).toEqual([...Array(20).keys()])
    expect(server.received[0]!.frame.Operator).toBe('userLogin')
    await until(() => b.queued === 0, 'outbox drained')
    unhook()
  })

  it('re-logs in and replays after a reset in the middle of a flush, losing nothing', async () => {
    const { server, proxy } = await startServer({ ack: { op: 'Ack', idKey: 'MsgId' } })
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ack: true, ...fast })
    await until(() => b.state === 'ready', 'ready')
    const sends = []
    for (let i = 0; i < 300; i++) sends.push(b.send('Chat', { n: i }))
    await until(() => framesOf(server, 'Chat').length > 10, 'some of the flush')
    proxy.reset()
    await Promise.all(sends)
    const ns = framesOf(server, 'Chat').map((f) => f.n)
    const firstArrivals = ns.filter((n, i) => ns.indexOf(n) === i)
    expect(firstArrivals).toEqual([...Array(300).keys()])
    expect(framesOf(server, 'userLogin').length).toBeGreaterThanOrEqual(2)
  })

  it('after the app was hidden long enough to lose its socket, re-logs in on show, then replays', async () => {
    const { server, proxy } = await startServer()
    useSteppedClock()
    const wx = runtime({ suspendDelay: 50 })
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ...fast, heartbeat: false })
    await until(() => b.state === 'ready', 'ready')
    wx.control.hide()
    await until(() => wx.control.liveSockets() === 0, 'suspend closes the socket')
    let attempts = 0
    b.events.on('reconnecting', () => attempts++)
    const sent = b.send('WhileHidden', { n: 1 })
    await skip(10_000) // a reconnect while hidden would have been tried by now
    expect(attempts).toBe(0)
    expect(wx.control.liveSockets()).toBe(0)
    expect(framesOf(server, 'WhileHidden')).toHaveLength(0)
    const logins = framesOf(server, 'userLogin').length
    wx.control.show()
    await sent
    // `sent` settles when the socket accepted the frame; it reaches the server a moment later.
    await until(() => framesOf(server, 'WhileHidden').length === 1, 'replay')
    const ops = server.received.map((r) => r.frame.Operator)
    const relogin = ops.lastIndexOf('userLogin')
    expect(framesOf(server, 'userLogin')).toHaveLength(logins + 1)
    expect(ops.indexOf('WhileHidden')).toBeGreaterThan(relogin)
  })

  it('back from a short hide with the socket intact, returns to ready and sends what was queued meanwhile', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime({ suspendDelay: 10_000 })
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ...fast })
    await until(() => b.state === 'ready', 'ready')
    wx.control.hide()
    await until(() => b.state === 'suspended', 'suspended')
    let readyEvents = 0
    b.events.on('ready', () => readyEvents++)
    const hiddenAt = server.received.length
    const sent = b.send('WhileHidden', { n: 1 })
    expect(framesOf(server, 'WhileHidden')).toHaveLength(0)
    wx.control.show()
    await sent
    // The probe ping on show went first on the kept socket: nothing was sent while hidden.
    await until(() => framesOf(server, 'WhileHidden').length === 1, 'the queued message')
    const after = server.received.slice(hiddenAt).map((r) => r.frame?.Operator)
    expect(after.indexOf('Heart')).toBeGreaterThanOrEqual(0)
    expect(after.indexOf('Heart')).toBeLessThan(after.indexOf('WhileHidden'))
    expect(b.state).toBe('ready')
    expect(readyEvents).toBe(1)
    expect(framesOf(server, 'userLogin')).toHaveLength(1)
  })

  it('on LoginError: no flush, no reconnect loop, state unauthorized; reconnect() tries again', async () => {
    const { server, proxy } = await startServer()
    let answer = 'LoginError'
    server.onFrame((frame: any, reply: (f: object) => void) => {
      if (frame.Operator === 'userLogin') {
        reply({ Operator: answer })
        return true
      }
    })
    useSteppedClock()
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ...fast })
    const errors: MpbusError[] = []
    b.events.on('error', (e) => errors.push(e))
    let attempts = 0
    b.events.on('reconnecting', () => attempts++)
    b.send('Secret', { n: 1 }).catch(() => {})
    await until(() => b.state === 'unauthorized', 'unauthorized')
    const before = attempts // a connect that timed out on a loaded machine counts too
    await skip(10_000) // a reconnect loop (backoff 10-50 ms) would have tried many times
    expect(attempts).toBe(before)
    expect(framesOf(server, 'userLogin')).toHaveLength(1)
    expect(framesOf(server, 'Secret')).toHaveLength(0)
    expect(errors.map((e) => e.code)).toContain('UNAUTHORIZED')
    answer = 'LoginOK'
    b.reconnect()
    await until(() => framesOf(server, 'Secret').length === 1, 'flush after a good login')
  })

  it('a login that throws, or a LoginOK that never comes, counts as a failed connect and is retried', async () => {
    const { server, proxy } = await startServer()
    let silent = 1
    server.onFrame((frame: any) => frame.Operator === 'userLogin' && silent-- > 0) // swallow the first login
    const wx = runtime()
    let throws = 1
    const b = bus({
      url: proxy.url(),
      platform: wx,
      login: () => {
        if (throws-- > 0) throw new Error('wx.login failed')
        return login()
      },
      ready: { ok: 'LoginOK', timeout: 100 },
      ...fast,
    })
    const codes: string[] = []
    b.events.on('error', (e) => codes.push(e.code))
    await b.send('AfterAll', {})
    expect(codes.slice(0, 2)).toEqual(['LOGIN_ERROR', 'TIMEOUT'])
    expect(framesOf(server, 'userLogin')).toHaveLength(2)
  })

  it('replays a long outbox on a platform whose send reports success synchronously (browser, Node)', async () => {
    // Each synchronous send result frees the window again; answering it with a nested flush
    // per message once overflowed the stack after ~1,500 messages and stalled the replay.
    const { server, proxy } = await startServer()
    proxy.refuse()
    const b = bus({
      url: proxy.url(),
      platform: webSocketPlatform(WebSocket),
      ...fast,
      heartbeat: false,
      outbox: { maxMessages: 5000, maxBytes: 4 << 20 },
    })
    const sends = []
    let refused = 0
    b.events.on('reconnecting', () => refused++)
    for (let i = 0; i < 5000; i++) sends.push(b.send('Bulk', { n: i }))
    await until(() => refused > 0, 'a refused connect')
    proxy.pass()
    await Promise.all(sends)
    await until(() => framesOf(server, 'Bulk').length === 5000, 'all 5,000 at the server')
    expect(framesOf(server, 'Bulk').map((f) => f.n)).toEqual([...Array(5000).keys()])
  })

  it('a server that closes politely under load (sends failing synchronously once CLOSING) gets every message first in order', async () => {
    // Node's ws, like a browser's WebSocket, refuses sends synchronously once the server's close
    // frame has arrived. A flush that went on after such a failure once sent 11..19 on the next
    // link while 10 waited for the link after that.
    const { server, proxy } = await startServer()
    const b = bus({
      url: proxy.url(),
      platform: webSocketPlatform(WebSocket),
      ...fast,
      heartbeat: false,
      outbox: { maxMessages: 3000, maxBytes: 4 << 20 },
    })
    let closes = 0
    const closer = setInterval(() => {
      if (server.clients() === 0) return
      server.closeAll(1000)
      closes++
    }, 37)
    const sends = []
    for (let i = 0; i < 3000; i++) {
      sends.push(b.send('Bulk', { n: i }))
      if (i % 20 === 19) await nextTurn() // the flush and the closes interleave with the sends
    }
    await until(() => closes >= 8, 'eight polite closes under load')
    clearInterval(closer)
    await Promise.all(sends)
    // A send settles when the socket took the bytes; they reach the server a moment later.
    const firsts = () => [...new Set(framesOf(server, 'Bulk').map((f) => f.n))]
    await until(() => firsts().length === 3000, 'all 3,000 at the server')
    // Repeats (resent after a close lost their acks) are fine; a first arrival out of order is not.
    expect(firsts()).toEqual([...Array(3000).keys()])
    expect(server.clients()).toBeLessThanOrEqual(1)
  }, 20_000)

  it('a page handler stops receiving when its unsubscribe ran', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, ...fast })
    await until(() => b.state === 'ready', 'ready')
    const got: number[] = []
    const off = b.on('News', (f: any) => got.push(f.n))
    server.broadcast({ Operator: 'News', n: 1 })
    await until(() => got.length === 1, 'first news')
    off()
    server.broadcast({ Operator: 'News', n: 2 })
    await b.once('News')
    expect(got).toEqual([1])
  })

  it('reports every bad frame with a code and carries on', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, ...fast, maxInboundBytes: 1000 })
    await until(() => b.state === 'ready', 'ready')
    const errors: MpbusError[] = []
    b.events.on('error', (e) => errors.push(e))
    const unhandled: unknown[] = []
    b.events.on('unhandled', (f) => unhandled.push(f))
    const proto: unknown[] = []
    b.on('__proto__', (f) => proto.push(f))
    server.broadcast('not json')
    server.broadcast('[1,2]')
    server.broadcast('{"NoOperator":1}')
    server.broadcast(JSON.stringify({ Operator: 'Big', pad: 'x'.repeat(2000) }))
    server.broadcast(new Uint8Array([1, 2, 3]).buffer as any)
    server.broadcast({ Operator: 'Unknown' })
    server.broadcast('{"Operator":"__proto__","x":1}')
    server.broadcast({ Operator: 'Last' })
    await b.once('Last')
    expect(errors.map((e) => e.code)).toEqual([
      'BAD_FRAME',
      'BAD_FRAME',
      'BAD_FRAME',
      'FRAME_TOO_LARGE',
      'BAD_FRAME',
    ])
    expect(unhandled).toEqual([{ Operator: 'Unknown' }])
    expect(proto).toEqual([{ Operator: '__proto__', x: 1 }])
    expect(({} as any).x).toBeUndefined()
    expect(b.state).toBe('ready')
  })

  it('with ack on, a frozen link in the middle of a burst loses nothing: first arrivals in order, repeats keep their id', async () => {
    const { server, proxy } = await startServer({ ack: { op: 'Ack', idKey: 'MsgId' } })
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, login, ready, ack: true, ...fast })
    await until(() => b.state === 'ready', 'ready')
    const sends = []
    for (let i = 0; i < 200; i++) sends.push(b.send('Burst', { n: i }))
    await until(() => framesOf(server, 'Burst').length > 5, 'part of the burst')
    proxy.freeze() // the live link stays frozen after pass(); the heartbeat must notice it
    proxy.pass()
    await Promise.all(sends)
    const frames = framesOf(server, 'Burst')
    const firstById = new Map<string, number>()
    for (const f of frames) {
      if (firstById.has(f.MsgId)) expect(firstById.get(f.MsgId)).toBe(f.n)
      else firstById.set(f.MsgId, f.n)
    }
    expect([...firstById.values()]).toEqual([...Array(200).keys()])
    expect(b.queued).toBe(0)
  })

  it('request resolves with the reply that echoes its id, or the first reply when no id comes back', async () => {
    const { server, proxy } = await startServer()
    server.onFrame((frame: any, reply: (f: object) => void) => {
      if (frame.Operator === 'GetUser') {
        reply({ Operator: 'User', MsgId: 'someone-else', name: 'wrong' })
        reply({ Operator: 'User', MsgId: frame.MsgId, name: 'right' })
        return true
      }
      if (frame.Operator === 'GetTime') {
        reply({ Operator: 'Time', t: 42 })
        return true
      }
    })
    const wx = runtime()
    const b = bus({ url: proxy.url(), platform: wx, ...fast })
    const user = await b.request('GetUser', { id: 1 }, { reply: 'User', timeout: 2000 })
    expect(user.name).toBe('right')
    const time = await b.request('GetTime', undefined, { reply: 'Time', timeout: 2000 })
    expect(time.t).toBe(42)
  })

  it('a request made offline leaves the outbox unsent when it times out; close rejects with CLOSED', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime()
    wx.control.offline()
    const b = bus({ url: proxy.url(), platform: wx, ...fast })
    const late = b.request('GetTime', undefined, { reply: 'Time', timeout: 100 })
    await expect(late).rejects.toMatchObject({ code: 'TIMEOUT' })
    expect(b.queued).toBe(0)
    const pending = b.request('GetTime', undefined, { reply: 'Time', timeout: 5000 })
    const queued = b.send('Queued', {})
    b.close()
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(queued).rejects.toMatchObject({ code: 'CLOSED' })
    wx.control.online()
    await wx.control.flush() // the online event has been delivered
    expect(wx.control.liveSockets()).toBe(0) // a closed bus does not connect
    expect(framesOf(server, 'GetTime')).toHaveLength(0)
  })

  it('refuses a payload JSON cannot carry and queues nothing; drops a volatile send while offline', async () => {
    const { proxy } = await startServer()
    const wx = runtime()
    wx.control.offline()
    const b = bus({ url: proxy.url(), platform: wx, ...fast })
    const circular: any = { a: 1 }
    circular.self = circular
    await expect(b.send('Bad', circular)).rejects.toMatchObject({ code: 'BAD_PAYLOAD' })
    await expect(b.send('Typing', {}, { durable: false })).rejects.toMatchObject({ code: 'DROPPED' })
    expect(b.queued).toBe(0)
  })
})

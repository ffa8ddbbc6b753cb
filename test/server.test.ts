// mpbus/server on real sockets: the protocol's rules seen from a raw `ws` client, then buses on
// the wx runtime behind the real fault proxy, pushed to while offline, hidden, or killed.
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createServer,
  type Engine,
  type MpbusServer,
  memoryEngine,
  type ServerOptions,
} from '../src/server/index'
import { createFaultProxy } from '../src/testing/fault-proxy'
import { createStorageArea } from '../src/testing/index'
import { authenticate, bus, fast, raw, runtime } from './helpers/e2e'
import { countWrites } from './helpers/servers'
import { nextTurn, skip, until, useSteppedClock } from './helpers/time'

const servers: MpbusServer[] = []
afterEach(async () => {
  while (servers.length) await servers.pop()!.close()
})

async function start(options: Partial<ServerOptions> = {}) {
  const server = await createServer({ authenticate, ...options })
  servers.push(server)
  const proxy = await createFaultProxy({ port: server.port })
  servers.push({ close: () => proxy.close() } as MpbusServer)
  return { server, proxy }
}

const login = (openId: string) => () => ({ op: 'userLogin', payload: { openId } })

/**
 * Pushes alice a last frame (and, with `room`, publishes one there) and waits for them: a repeat or
 * a stray on those streams would have arrived before it.
 */
async function drained(server: MpbusServer, b: ReturnType<typeof bus>, room?: string) {
  const marks = [b.once('Mark')]
  if (room) marks.push(b.once('RoomMark'))
  server.push('alice', 'Mark', {})
  if (room) server.publish(room, 'RoomMark', {})
  await Promise.all(marks)
}
const ready = { ok: 'LoginOK', fail: ['LoginError'], timeout: 1000 }

describe('mpbus/server: the protocol', () => {
  it('refuses every frame before the login, and answers nothing but the login', async () => {
    const seen: any[] = []
    const { server } = await start({ handlers: { Chat: (f) => void seen.push(f) } })
    const c = await raw(server.port)
    c.send({ Operator: 'Heart' })
    c.send({ Operator: 'Chat', MsgId: 'm1' })
    await until(() => c.closed.code, 'close')
    expect(c.closed.code).toBe(1008)
    expect(c.got).toEqual([])
    expect(seen).toEqual([])
  })

  it('refuses a login authenticate refuses, with its operator, and the bus stops as unauthorized', async () => {
    const { server, proxy } = await start({
      authenticate: (f) => (f.openId === 'banned' ? { refuse: 'LoginError', reason: 'banned' } : f.openId),
    })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'banned' })
    await until(() => c.closed.code, 'close')
    expect(c.got).toEqual([{ Operator: 'LoginError', reason: 'banned' }])
    const b = bus({ url: proxy.url(), platform: runtime(), login: login('banned'), ready, ...fast })
    await until(() => b.state === 'unauthorized', 'unauthorized')
  })

  it('answers the heartbeat, acks each message, and runs a duplicate id once but acks it again', async () => {
    const seen: any[] = []
    const { server } = await start({ handlers: { Chat: (f, ctx) => void seen.push([ctx.user, f.n]) } })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    c.send({ Operator: 'Heart' })
    c.send({ Operator: 'Chat', n: 1, MsgId: 'a' })
    c.send({ Operator: 'Chat', n: 1, MsgId: 'a' })
    c.send({ Operator: 'Chat', n: 2, MsgId: 'b' })
    // Acks of one macrotask may come as one batched frame (MsgIds): the ids, in order, are what count.
    const acked = () =>
      c.got.slice(2).flatMap((f) => (f.Operator === 'Ack' ? f.MsgIds || [f.MsgId] : [f.Operator]))
    await until(() => acked().length === 3, 'answers')
    expect(c.got.slice(0, 2).map((f) => f.Operator)).toEqual(['LoginOK', 'HeartOK'])
    expect(acked()).toEqual(['a', 'a', 'b'])
    expect(seen).toEqual([
      ['alice', 1],
      ['alice', 2],
    ])
    // The window is the user's, not the connection's: a resend on a new connection is still a repeat.
    const again = await raw(server.port)
    again.send({ Operator: 'userLogin', openId: 'alice' })
    again.send({ Operator: 'Chat', n: 2, MsgId: 'b' })
    await until(() => again.got.length === 2, 'ack on the new connection')
    expect(seen).toHaveLength(2)
  })

  it('withholds the ack when a handler throws, and runs the resend', async () => {
    let fail = true
    const runs: number[] = []
    const { server } = await start({
      handlers: {
        Chat: (f) => {
          runs.push(f.n)
          if (fail) throw new Error('database down')
        },
      },
    })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    c.send({ Operator: 'Chat', n: 1, MsgId: 'a' })
    await until(() => runs.length === 1, 'first run')
    // Frames are handled in order: an ack for the failed run would come before the HeartOK.
    c.send({ Operator: 'Heart' })
    await until(() => c.got.length === 2, 'HeartOK')
    expect(c.got.map((f) => f.Operator)).toEqual(['LoginOK', 'HeartOK'])
    fail = false
    c.send({ Operator: 'Chat', n: 1, MsgId: 'a' })
    await until(() => c.got.length === 3, 'ack of the resend')
    expect(runs).toEqual([1, 1])
  })

  it('refuses bad options with BAD_OPTION', async () => {
    await expect(createServer({} as ServerOptions)).rejects.toMatchObject({ code: 'BAD_OPTION' })
    await expect(createServer({ authenticate, rate: { frames: 0, interval: 1000 } })).rejects.toMatchObject({
      code: 'BAD_OPTION',
    })
    await expect(createServer({ authenticate, maxFrameBytes: 0 })).rejects.toMatchObject({
      code: 'BAD_OPTION',
    })
  })

  it('closes a connection that sends a frame over maxFrameBytes (1009)', async () => {
    const { server } = await start({ maxFrameBytes: 1000 })
    const big = await raw(server.port)
    big.send({ Operator: 'userLogin', openId: 'alice', pad: 'x'.repeat(2000) })
    await until(() => big.closed.code, 'close')
    expect(big.closed.code).toBe(1009)
  })

  it('holds back a connection past its rate (reads paused until the interval ends): nothing refused, all acked in order', async () => {
    // The server's clock stands still unless moved: the first interval lasts as long as the test says.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    const { server } = await start({ rate: { frames: 20, interval: 400 } })
    const chatty = await raw(server.port)
    chatty.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => chatty.got.length >= 1, 'login answer')
    const started = Date.now()
    for (let i = 0; i < 50; i++) chatty.send({ Operator: 'Chat', MsgId: `m${i}` })
    const acked = () => chatty.got.flatMap((f) => (f.Operator !== 'Ack' ? [] : f.MsgIds || [f.MsgId]))
    await until(() => acked().length >= 19, 'the first interval’s acks')
    // A Heart after the 50 Chats: while reads are paused it is not answered, and the acks do not grow.
    chatty.send({ Operator: 'Heart' })
    const first = acked().length
    await vi.advanceTimersByTimeAsync(399)
    // Within the first interval, about `frames` (plus what one read already held), not all 50.
    expect(acked().length).toBeLessThan(50)
    expect(acked().length).toBe(first)
    await until(async () => {
      await vi.advanceTimersByTimeAsync(50)
      return acked().length === 50
    }, 'every ack')
    expect(Date.now() - started).toBeGreaterThanOrEqual(350)
    vi.useRealTimers()
    expect(acked()).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`))
    expect(chatty.closed.code).toBeUndefined()
  })

  it('acknowledges the messages of one macrotask in one batched frame (a lone one as MsgId)', async () => {
    const { server } = await start({ handlers: { Chat: () => {} } })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => c.got.length >= 1, 'login answer')
    c.send({ Operator: 'Chat', MsgId: 'solo' })
    await until(() => c.got.length >= 2, 'the lone ack')
    expect(c.got[1]).toEqual({ Operator: 'Ack', MsgId: 'solo' })
    c.ws.send(JSON.stringify({ Operator: 'Chat', MsgId: 'a' }))
    c.ws.send(JSON.stringify({ Operator: 'Chat', MsgId: 'b' }))
    c.ws.send(JSON.stringify({ Operator: 'Chat', MsgId: 'c' }))
    const ids = () => c.got.slice(2).flatMap((f) => f.MsgIds || [f.MsgId])
    await until(() => ids().length === 3, 'three acks')
    expect(ids()).toEqual(['a', 'b', 'c'])
    expect(c.got.length - 2).toBeLessThan(3)
  })

  it('a bus replaying 3,000 queued messages with ack on: every one handled once, in order, no connection refused', async () => {
    const seen: number[] = []
    const errors: Error[] = []
    const { server, proxy } = await start({
      handlers: { Chat: (f) => void seen.push(f.n as number) },
      onError: (e) => errors.push(e),
    })
    const wx = runtime()
    const b = bus({
      url: proxy.url(),
      platform: wx,
      login: login('alice'),
      ready,
      ack: true,
      ...fast,
      // Reads are paused up to a rate interval (1 s) while the replay is held back: a heartbeat deadline
      // shorter than that would call the link dead. Real ones are 25 s + 10 s.
      heartbeat: { interval: 1000, timeout: 2000 },
      outbox: { maxMessages: 5000, maxBytes: 1 << 22 },
    })
    await until(() => b.state === 'ready', 'ready')
    proxy.refuse()
    wx.control.offline()
    const sends = Array.from({ length: 3000 }, (_, n) => b.send('Chat', { n }))
    wx.control.online()
    proxy.pass()
    await Promise.all(sends)
    expect(seen).toEqual(Array.from({ length: 3000 }, (_, n) => n))
    expect(errors).toEqual([])
    expect(server.connections('alice')).toBe(1)
  })

  it('ends a session: the bus fails with SESSION_ENDED and does not come back', async () => {
    const { server, proxy } = await start()
    useSteppedClock()
    const b = bus({ url: proxy.url(), platform: runtime(), login: login('alice'), ready, ack: true, ...fast })
    let attempts = 0
    b.events.on('reconnecting', () => attempts++)
    await until(() => b.state === 'ready', 'ready')
    server.end('alice', 'logged in elsewhere')
    await until(() => b.state === 'failed', 'failed')
    const before = attempts // a connect that timed out on a loaded machine counts too
    await skip(10_000) // far past any backoff (10-50 ms)
    expect(attempts).toBe(before)
    expect(b.state).toBe('failed')
    await until(() => server.connections('alice') === 0, 'the server saw the close') // real time
    expect(server.connections('alice')).toBe(0)
  })

  it('a user cannot read another user\u2019s stream, even naming it in the login', async () => {
    const { server } = await start()
    server.push('bob', 'Secret', { n: 1 })
    const tip = await server.push('bob', 'Secret', { n: 2 })
    const alice = await raw(server.port)
    alice.send({
      Operator: 'userLogin',
      openId: 'alice',
      Streams: { 'user:bob': { offset: 0, epoch: tip.epoch } },
    })
    await until(() => alice.got.length >= 1, 'login answer')
    server.push('bob', 'Secret', { n: 3 })
    server.push('alice', 'Mine', { n: 1 })
    await until(() => alice.got.length === 2, 'alice’s push')
    expect(alice.got.map((f) => f.Operator)).toEqual(['LoginOK', 'Mine'])
    expect(Object.keys(alice.got[0].Streams)).toEqual(['user:alice'])
  })
})

describe('mpbus/server: pushes reach the handlers once, in order, whatever happened to the app', () => {
  /** A bus for `user` that records what its handlers and its `resync` listeners saw. */
  function client(url: string, platform: ReturnType<typeof runtime>, user = 'alice') {
    const b = bus({ url, platform, login: login(user), ready, ack: true, ...fast })
    const seen: number[] = []
    const resyncs: any[] = []
    b.on('Quote', (f: any) => void seen.push(f.n))
    b.events.on('resync', (r) => void resyncs.push(r))
    return { b, seen, resyncs }
  }
  const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

  it('offline: what was pushed meanwhile arrives after the reconnect, before live frames', async () => {
    const { server, proxy } = await start()
    const wx = runtime()
    const { b, seen } = client(proxy.url(), wx)
    await until(() => b.state === 'ready', 'ready')
    for (let n = 1; n <= 5; n++) server.push('alice', 'Quote', { n })
    await until(() => seen.length === 5, 'live pushes')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'server saw the drop')
    for (let n = 6; n <= 15; n++) server.push('alice', 'Quote', { n })
    wx.control.online()
    await until(() => b.state === 'ready', 'ready again')
    server.push('alice', 'Quote', { n: 16 })
    await until(() => seen.length === 16, 'recovered')
    await drained(server, b)
    expect(seen).toEqual(range(1, 16))
  })

  it('a reset in the middle of a burst: nothing lost, nothing twice', async () => {
    const { server, proxy } = await start()
    const { b, seen } = client(proxy.url(), runtime())
    await until(() => b.state === 'ready', 'ready')
    for (let n = 1; n <= 200; n++) {
      server.push('alice', 'Quote', { n })
      if (n === 80) proxy.reset()
      if (n % 20 === 0) await nextTurn()
    }
    await until(() => seen.length >= 200, 'all 200')
    await drained(server, b)
    expect(seen).toEqual(range(1, 200))
  })

  it('backgrounded: sockets suspended while hidden; pushes and room publications recovered on show', async () => {
    const { server, proxy } = await start()
    const wx = runtime({ suspendDelay: 20 })
    server.join('alice', 'auction-7')
    const { b, seen } = client(proxy.url(), wx)
    const bids: number[] = []
    b.on('Bid', (f: any) => void bids.push(f.n))
    await until(() => b.state === 'ready', 'ready')
    server.publish('auction-7', 'Bid', { n: 1 })
    await until(() => bids.length === 1, 'live bid')
    wx.control.hide()
    await until(() => server.connections('alice') === 0, 'suspended')
    for (let n = 1; n <= 5; n++) server.push('alice', 'Quote', { n })
    for (let n = 2; n <= 4; n++) server.publish('auction-7', 'Bid', { n })
    wx.control.show()
    await until(() => seen.length === 5 && bids.length === 4, 'recovered')
    await drained(server, b, 'auction-7')
    expect(seen).toEqual(range(1, 5))
    expect(bids).toEqual([1, 2, 3, 4])
  })

  it('killed and cold-started: the stored positions resume from storage, with no repeats', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const first = runtime({ storage })
    const one = client(proxy.url(), first)
    await until(() => one.b.state === 'ready', 'ready')
    for (let n = 1; n <= 10; n++) server.push('alice', 'Quote', { n })
    await until(() => one.seen.length === 10, 'first life')
    first.control.kill()
    await until(() => server.connections('alice') === 0, 'server saw the kill')
    for (let n = 11; n <= 20; n++) server.push('alice', 'Quote', { n })
    const two = client(proxy.url(), runtime({ storage }))
    await until(() => two.seen.length === 10, 'second life')
    await drained(server, two.b)
    expect(two.seen).toEqual(range(11, 20))
    expect(two.resyncs).toEqual([])
  })

  it('a first login starts at the tip: what was pushed before is not replayed, what comes after a drop is', async () => {
    const { server, proxy } = await start()
    server.push('alice', 'Quote', { n: 0 })
    const wx = runtime()
    const { b, seen } = client(proxy.url(), wx)
    await until(() => b.state === 'ready', 'ready')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'dropped')
    server.push('alice', 'Quote', { n: 1 })
    wx.control.online()
    await until(() => seen.length === 1, 'the push made while offline')
    expect(seen).toEqual([1])
  })

  it('trimmed history: the bus says resync instead of replaying a gap, and goes on from the tip', async () => {
    const { server, proxy } = await start({ engine: memoryEngine({ history: 5 }) })
    const wx = runtime()
    const { b, seen, resyncs } = client(proxy.url(), wx)
    await until(() => b.state === 'ready', 'ready')
    server.push('alice', 'Quote', { n: 1 })
    await until(() => seen.length === 1, 'live')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'dropped')
    for (let n = 2; n <= 20; n++) server.push('alice', 'Quote', { n })
    wx.control.online()
    await until(() => resyncs.length === 1, 'resync')
    expect(resyncs[0]).toMatchObject({ stream: 'user:alice', offset: 20 })
    server.push('alice', 'Quote', { n: 21 })
    await until(() => seen.length === 2, 'live after the resync')
    expect(seen).toEqual([1, 21])
  })

  it('a server restarted on a new engine (new epoch): resync, then the new stream', async () => {
    const first = await createServer({ authenticate })
    const proxy = await createFaultProxy({ port: first.port })
    servers.push({ close: () => proxy.close() } as MpbusServer)
    const storage = createStorageArea()
    const { b, seen, resyncs } = client(proxy.url(), runtime({ storage }))
    await until(() => b.state === 'ready', 'ready')
    first.push('alice', 'Quote', { n: 1 })
    await until(() => seen.length === 1, 'live')
    await first.close()
    const second = await createServer({ authenticate, port: first.port })
    servers.push(second)
    await until(() => resyncs.length === 1, 'resync', 8000)
    expect(resyncs[0]).toMatchObject({ stream: 'user:alice', offset: 0 })
    second.push('alice', 'Quote', { n: 1 })
    await until(() => seen.length === 2, 'the new epoch’s first push')
    expect(seen).toEqual([1, 1])
  })
})

describe('mpbus/server: an engine that answers later (Redis)', () => {
  /** The memory engine with its reads held until `release()`: a resume in flight. */
  function held() {
    const memory = memoryEngine()
    let release!: () => void
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    /** Reads of a resume begun: the login's streams are registered by then. */
    const reads = { count: 0 }
    const engine: Engine = {
      ...memory,
      rooms: async (user) => memory.rooms(user),
      tip: async (stream) => {
        reads.count++
        return gate.then(() => memory.tip(stream))
      },
      since: async (stream, from) => {
        reads.count++
        return gate.then(() => memory.since(stream, from))
      },
    }
    return { engine, memory, release, reads }
  }

  it('live frames pushed while a resume is read wait behind it, and what the replay sent is not sent again', async () => {
    const { engine, release, reads } = held()
    const { server } = await start({ engine })
    await server.push('alice', 'Quote', { n: 1 })
    const { epoch } = await server.push('alice', 'Quote', { n: 2 })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice', Streams: { 'user:alice': { offset: 1, epoch } } })
    c.send({ Operator: 'Heart' })
    await until(() => reads.count > 0, 'the resume read begun')
    // Not logged in until its resume is out: connections() does not count it yet.
    expect(server.connections('alice')).toBe(0)
    await server.push('alice', 'Quote', { n: 3 })
    await server.push('alice', 'Quote', { n: 4 })
    // Nothing while the resume is read; had 3 and 4 gone out now, they would come before LoginOK below.
    expect(c.got).toEqual([])
    release()
    await server.push('alice', 'Quote', { n: 5 })
    await until(() => c.got.length === 6, 'answer, replay, live')
    expect(server.connections('alice')).toBe(1)
    // A second Heart: anything sent twice would come before its answer.
    c.send({ Operator: 'Heart' })
    await until(() => c.got.length === 7, 'the second HeartOK')
    expect(c.got.map((f) => f.Operator)).toEqual([
      'LoginOK',
      'Quote',
      'Quote',
      'Quote',
      'Quote',
      'HeartOK',
      'HeartOK',
    ])
    expect(c.got.filter((f) => f.Operator === 'Quote').map((f) => f.Stream.offset)).toEqual([2, 3, 4, 5])
  })

  it('a push nobody awaits, on an engine that fails, is reported to onError and does not end the process', async () => {
    const errors: Error[] = []
    const engine: Engine = { ...memoryEngine(), append: () => Promise.reject(new Error('engine down')) }
    const { server } = await start({ engine, onError: (e) => void errors.push(e) })
    server.push('alice', 'Quote', { n: 1 }) // fire and forget: no unhandled rejection (vitest fails the run on one)
    await expect(server.push('alice', 'Quote', { n: 2 })).rejects.toThrow('engine down')
    await until(() => errors.length === 2, 'both reported')
  })

  it("a resend while the first copy's handler still runs is refused (1013), then acked once that handler is done: handled once", async () => {
    let finish!: () => void
    const seen: string[] = []
    const { server } = await start({
      handlers: {
        Slow: (f) => {
          seen.push(f.MsgId as string)
          return new Promise<void>((resolve) => {
            finish = resolve
          })
        },
      },
    })
    const first = await raw(server.port)
    first.send({ Operator: 'userLogin', openId: 'alice' })
    first.send({ Operator: 'Slow', MsgId: 'm1' })
    await until(() => seen.length === 1, 'the handler running')
    const again = await raw(server.port)
    again.send({ Operator: 'userLogin', openId: 'alice' })
    again.send({ Operator: 'Slow', MsgId: 'm1' })
    await until(() => again.closed.code, 'refused')
    expect(again.closed.code).toBe(1013)
    finish()
    await until(() => first.got.some((f) => f.Operator === 'Ack'), 'the first ack')
    const third = await raw(server.port)
    third.send({ Operator: 'userLogin', openId: 'alice' })
    third.send({ Operator: 'Slow', MsgId: 'm1' })
    await until(() => third.got.some((f) => f.Operator === 'Ack'), 'the resend acked')
    expect(seen).toEqual(['m1'])
  })

  it('batchAcks: false acknowledges each message with its own MsgId frame', async () => {
    const { server } = await start({ batchAcks: false, handlers: { Chat: () => {} } })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    for (const id of ['a', 'b', 'c']) c.send({ Operator: 'Chat', MsgId: id })
    await until(() => c.got.length === 4, 'three acks')
    expect(c.got.slice(1)).toEqual(['a', 'b', 'c'].map((id) => ({ Operator: 'Ack', MsgId: id })))
  })

  it('a login the engine cannot serve is closed with 1013 (the client backs off and retries) and reported', async () => {
    const errors: Error[] = []
    const memory = memoryEngine()
    const engine: Engine = {
      ...memory,
      // The membership read of a login: its rooms with their join positions.
      joined: () => Promise.reject(new Error('engine down')),
    }
    const { server } = await start({ engine, onError: (e) => void errors.push(e) })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => c.closed.code, 'close')
    expect(c.closed.code).toBe(1013)
    expect(c.got).toEqual([])
    expect(errors.map((e) => e.message)).toContain('engine down')
    expect(server.connections('alice')).toBe(0)
  })
})

describe('mpbus/server: attached, login fields, requests, rooms', () => {
  it('attaches to an HTTP server, merges authenticate’s fields into LoginOK, and answers a request', async () => {
    const http = createHttpServer()
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    servers.push({ close: () => new Promise<void>((resolve) => http.close(() => resolve())) } as MpbusServer)
    const server = await createServer({
      server: http,
      authenticate: (f) => ({ user: f.openId, fields: { openId: f.openId, nick: 'Al' } }),
      handlers: { Ask: (f, ctx) => ctx.reply('Answer', { MsgId: f.MsgId, q: f.q, user: ctx.user }) },
    })
    servers.push(server)
    expect(server.port).toBe((http.address() as AddressInfo).port)
    const b = bus({
      url: `ws://127.0.0.1:${server.port}`,
      platform: runtime(),
      login: login('alice'),
      ready,
      ack: true,
      ...fast,
    })
    const answer = await b.once('LoginOK')
    expect(answer).toMatchObject({ openId: 'alice', nick: 'Al' })
    const reply = await b.request('Ask', { q: 7 }, { reply: 'Answer' })
    expect(reply).toMatchObject({ q: 7, user: 'alice' })
  })

  it('the frames it sends in one task reach the kernel in few writes, not one each, in order', async () => {
    const http = createHttpServer()
    // The server's side of the connection.
    let writes = () => 0
    http.on('connection', (tcp) => {
      writes = countWrites(tcp)
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    servers.push({ close: () => new Promise<void>((resolve) => http.close(() => resolve())) } as MpbusServer)
    const server = await createServer({ server: http, authenticate })
    servers.push(server)
    const alice = await raw(server.port)
    alice.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => alice.got.length >= 1, 'login answer')
    const before = writes()
    await Promise.all(Array.from({ length: 40 }, (_, n) => server.push('alice', 'News', { n })))
    await until(() => alice.got.length === 41, 'forty pushes')
    expect(alice.got.slice(1).map((f) => f.n)).toEqual(Array.from({ length: 40 }, (_, n) => n))
    expect(writes() - before).toBeLessThan(10)
  })

  it('a room reaches its members only, and a position naming a room one is not in is ignored', async () => {
    const { server } = await start()
    server.join('alice', 'r1')
    server.publish('r1', 'Bid', { n: 1 })
    const tip = await server.publish('r1', 'Bid', { n: 2 })
    const bob = await raw(server.port)
    bob.send({
      Operator: 'userLogin',
      openId: 'bob',
      Streams: { 'room:r1': { offset: 0, epoch: tip.epoch } },
    })
    const alice = await raw(server.port)
    alice.send({
      Operator: 'userLogin',
      openId: 'alice',
      Streams: { 'room:r1': { offset: 1, epoch: tip.epoch } },
    })
    await until(() => alice.got.length === 2 && bob.got.length === 1, 'answers')
    expect(alice.got[1]).toMatchObject({ Operator: 'Bid', n: 2, Stream: { name: 'room:r1', offset: 2 } })
    server.publish('r1', 'Bid', { n: 3 })
    server.leave('alice', 'r1')
    server.publish('r1', 'Bid', { n: 4 })
    server.push('bob', 'Ping')
    await until(() => bob.got.length === 2, 'bob’s own push')
    // Alice's own last push, after the publication she must not get: that would come before it.
    server.push('alice', 'Ping')
    await until(() => alice.got.some((f) => f.Operator === 'Ping'), 'alice’s own push')
    expect(alice.got.filter((f) => f.Operator !== 'Ping').map((f) => f.n)).toEqual([undefined, 2, 3])
    expect(alice.got.at(-1).Operator).toBe('Ping')
    expect(bob.got.map((f) => f.Operator)).toEqual(['LoginOK', 'Ping'])
  })
})

describe('mpbus/server: pushes under a random mix of faults', () => {
  /** A small deterministic PRNG (mulberry32), so a failing run can be replayed from its seed. */
  function prng(seed: number) {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
  }

  for (const seed of [1, 2, 3]) {
    it(`seed ${seed}: resets, freezes, offline, hide and kill + cold start: every push once, in order`, async () => {
      const random = prng(seed)
      const { server, proxy } = await start()
      const storage = createStorageArea()
      let wx = runtime({ storage, suspendDelay: 20 })
      const seen: number[] = []
      const resyncs: unknown[] = []
      const make = () => {
        const b = bus({ url: proxy.url(), platform: wx, login: login('alice'), ready, ack: true, ...fast })
        b.on('Quote', (f: any) => void seen.push(f.n))
        b.events.on('resync', (r) => void resyncs.push(r))
        return b
      }
      let b = make()
      await until(() => b.state === 'ready', 'ready')
      let n = 0
      for (let step = 0; step < 12; step++) {
        for (let i = 0; i < 10; i++) server.push('alice', 'Quote', { n: ++n })
        const fault = Math.floor(random() * 6)
        if (fault === 0) proxy.reset()
        else if (fault === 1) {
          proxy.freeze() // the live link stays frozen after pass(): the heartbeat must notice
          server.push('alice', 'Quote', { n: ++n })
          proxy.pass()
        } else if (fault === 2) {
          wx.control.offline()
          server.push('alice', 'Quote', { n: ++n })
          await wx.control.flush() // the app has heard it is offline
          wx.control.online()
        } else if (fault === 3) {
          wx.control.hide()
          await until(() => wx.control.liveSockets() === 0, 'suspended') // suspendDelay 20 ms
          server.push('alice', 'Quote', { n: ++n })
          wx.control.show()
        } else if (fault === 4) {
          wx.control.kill()
          server.push('alice', 'Quote', { n: ++n })
          b.close()
          wx = runtime({ storage, suspendDelay: 20 })
          b = make()
        }
        // A random gap, in turns of the event loop, so the next fault finds another phase.
        for (let t = Math.floor(random() * 20); t > 0; t--) await nextTurn()
      }
      await until(() => seen.length >= n, `all ${n} pushes`, 10_000)
      await drained(server, b)
      expect(seen).toEqual(Array.from({ length: n }, (_, i) => i + 1))
      expect(resyncs).toEqual([])
    })
  }
})

// mpbus/server under abuse, on real sockets (and a real redis-server): what one client or one
// handler can make the server hold is bounded by its options, every wait of a connection is
// timed, and nothing a user callback returns ends the process.
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import net from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createServer,
  type Engine,
  type EngineEvent,
  type MpbusServer,
  memoryEngine,
  redisEngine,
  type ServerOptions,
} from '../src/server/index'
import { createFaultProxy } from '../src/testing/fault-proxy'
import { type RedisServer, startRedisServer } from '../src/testing/index'
import { authenticate, bus, fast, raw, runtime } from './helpers/e2e'
import { itWithRedis, redisServer } from './helpers/redis'
import { until } from './helpers/time'

const open: Array<{ close(): unknown }> = []
afterEach(async () => {
  while (open.length) await open.pop()!.close()
})

let redis: RedisServer
beforeAll(async () => {
  if (redisServer) redis = await startRedisServer()
})
afterAll(async () => {
  await redis?.stop()
})

async function start(options: Partial<ServerOptions> = {}) {
  const errors: Error[] = []
  const server = await createServer({ authenticate, onError: (e) => void errors.push(e), ...options })
  open.push(server)
  return { server, errors }
}

const login = (openId: string) => () => ({ op: 'userLogin', payload: { openId } })
const ready = { ok: 'LoginOK', fail: ['LoginError'], timeout: 1000 }
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)
const acked = (got: any[]) => got.flatMap((f) => (f.Operator === 'Ack' ? f.MsgIds || [f.MsgId] : []))
const tick = () => new Promise((resolve) => setImmediate(resolve))

describe('mpbus/server: outbound bounded', () => {
  it('a client that stops reading is closed (4002) past maxBufferedBytes; it resumes and gets every frame once, in order', async () => {
    const { server, errors } = await start({
      engine: memoryEngine({ history: 5000 }),
      maxBufferedBytes: 256 * 1024,
      pingInterval: 0,
    })
    const proxy = await createFaultProxy({ port: server.port })
    open.push(proxy)
    const seen: number[] = []
    const resyncs: unknown[] = []
    // A heartbeat slower than the test: the client does not notice the stall on its own.
    const b = bus({
      url: proxy.url(),
      platform: runtime(),
      login: login('alice'),
      ready,
      ...fast,
      heartbeat: { interval: 60_000, timeout: 60_000 },
    })
    b.on('Quote', (f: any) => void seen.push(f.n))
    b.events.on('resync', (r) => void resyncs.push(r))
    await until(() => b.state === 'ready', 'ready')
    proxy.stall()
    const text = 'x'.repeat(10_000)
    let n = 0
    // Pushed until the server gives up on the connection: TCP's buffers absorb megabytes first.
    while (!errors.some((e: any) => e.code === 'TOO_LARGE') && n < 4000) {
      await server.push('alice', 'Quote', { n: ++n, text })
      if (n % 50 === 0) await tick()
    }
    expect(errors.find((e: any) => e.code === 'TOO_LARGE')).toBeDefined()
    const total = n
    for (let i = 0; i < 10; i++) await server.push('alice', 'Quote', { n: ++n, text })
    proxy.pass()
    await until(() => seen.length >= total + 10, 'every frame after the resume', 20_000)
    await tick()
    expect(seen).toEqual(range(1, total + 10))
    expect(resyncs).toEqual([])
  })

  it('a client that sends but never reads is closed (4002) too: its acks count against maxBufferedBytes', async () => {
    const { server, errors } = await start({
      maxBufferedBytes: 64 * 1024,
      pingInterval: 0,
      rate: { frames: 1e6, interval: 1000 },
      handlers: { Chat: () => {} },
    })
    const proxy = await createFaultProxy({ port: server.port })
    open.push(proxy)
    const c = await raw(proxy.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => server.connections('alice') === 1, 'logged in')
    proxy.stall()
    const id = 'i'.repeat(100)
    let n = 0
    // Sent until the server gives up: TCP's buffers absorb megabytes of acks first.
    while (!errors.some((e: any) => e.code === 'TOO_LARGE') && n < 300_000) {
      c.send({ Operator: 'Chat', MsgId: `${id}-${++n}` })
      if (n % 200 === 0) await tick()
    }
    expect(errors.find((e: any) => e.code === 'TOO_LARGE')).toBeDefined()
    await until(() => server.connections('alice') === 0, 'closed')
  })

  it('a connection whose reading the server paused (backlog) is not dropped by the liveness check', async () => {
    let handled = 0
    const { server, errors } = await start({
      pingInterval: 100,
      backlog: { frames: 2, bytes: 1 << 20 },
      handlers: {
        Slow: async () => {
          await new Promise((resolve) => setTimeout(resolve, 40))
          handled++
        },
      },
    })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => server.connections('alice') === 1, 'logged in')
    // 25 frames of 40 ms behind a backlog of 2: reading stays paused for about a second, ten pings.
    for (let n = 1; n <= 25; n++) c.send({ Operator: 'Slow', MsgId: `m${n}` })
    await until(() => acked(c.got).length === 25, 'every frame handled and acked', 20_000)
    expect(handled).toBe(25)
    expect(c.closed.code).toBeUndefined()
    expect(errors).toEqual([])
  })

  it('drops a half-open peer: a connection that answers no ping is closed by the server', async () => {
    const { server } = await start({ pingInterval: 100 })
    const proxy = await createFaultProxy({ port: server.port })
    open.push(proxy)
    const c = await raw(proxy.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => server.connections('alice') === 1, 'logged in')
    proxy.freeze()
    await until(() => server.connections('alice') === 0, 'dropped')
  })
})

describe('mpbus/server: inbound bounded', () => {
  it('behind a stuck handler, reading stops at the backlog bound; once it moves on, every frame flows, in order', async () => {
    let release = () => {}
    const stuck = new Promise<void>((resolve) => {
      release = resolve
    })
    const handled: number[] = []
    const http = createHttpServer()
    let socket: Socket | undefined
    http.on('upgrade', (_req, s: Socket) => {
      socket = s
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    open.push({ close: () => new Promise((resolve) => http.close(resolve)) })
    await start({
      server: http,
      backlog: { frames: 1000, bytes: 1 << 20 },
      maxFrameBytes: 1 << 20,
      handlers: {
        Chat: async (f) => {
          handled.push(f.n)
          if (f.n === 0) await stuck
        },
      },
    })
    const c = await raw((http.address() as AddressInfo).port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    await until(() => c.got.length === 1, 'login answer')
    const pad = 'x'.repeat(500_000)
    for (let n = 0; n < 60; n++) c.send({ Operator: 'Chat', MsgId: `m${n}`, n, pad })
    await until(() => socket!.isPaused(), 'reading paused', 10_000)
    // About the bound and a read or two of the socket, not the 30 MB sent.
    expect(socket!.bytesRead).toBeLessThan(8 << 20)
    release()
    await until(() => acked(c.got).length === 60, 'every ack', 20_000)
    expect(acked(c.got)).toEqual(range(0, 59).map((n) => `m${n}`))
    expect(handled).toEqual(range(0, 59))
    expect(c.closed.code).toBeUndefined()
  })

  it('an id longer than maxIdLength is refused with 1007 and reported, not handled', async () => {
    const handled: unknown[] = []
    const { server, errors } = await start({
      maxIdLength: 64,
      handlers: { Chat: (f) => void handled.push(f.MsgId) },
    })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice' })
    c.send({ Operator: 'Chat', MsgId: 'x'.repeat(64) })
    c.send({ Operator: 'Chat', MsgId: 'y'.repeat(65) })
    await until(() => c.closed.code, 'close')
    expect(c.closed.code).toBe(1007)
    expect(handled).toEqual(['x'.repeat(64)])
    expect(errors.map((e: any) => e.code)).toContain('BAD_FRAME')
  })
})

describe('mpbus/server: every wait timed', () => {
  it('a connection that sends no login within loginTimeout is closed with 4003', async () => {
    const { server, errors } = await start({ loginTimeout: 200 })
    const c = await raw(server.port)
    await until(() => c.closed.code, 'close')
    expect(c.closed.code).toBe(4003)
    expect(errors.map((e: any) => e.code)).toEqual(['TIMEOUT'])
  })

  it('an HTTP upgrade sent a byte at a time is cut off after upgradeTimeout', async () => {
    const { server } = await start({ upgradeTimeout: 300 })
    const socket = net.connect(server.port, '127.0.0.1')
    open.push({ close: () => socket.destroy() })
    let ended = false
    socket.on('close', () => {
      ended = true
    })
    socket.on('error', () => {})
    socket.resume()
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n')
    await until(() => ended, 'the socket closed by the server', 4000)
  })

  itWithRedis(
    'Redis paused: push rejects with ENGINE_DOWN, connections are told, logins refused with 1013, then it recovers',
    async () => {
      const own = await startRedisServer()
      open.push({ close: () => own.stop() })
      const { server } = await start({ engine: redisEngine({ url: own.url, commandTimeout: 300 }) })
      const c = await raw(server.port)
      c.send({ Operator: 'userLogin', openId: 'alice' })
      await until(() => c.got.length === 1, 'logged in')
      own.pause()
      try {
        await expect(server.push('alice', 'Quote', { n: 1 })).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
        await until(() => c.closed.code, 'told')
        expect(c.closed.code).toBe(1012)
        const again = await raw(server.port)
        again.send({ Operator: 'userLogin', openId: 'alice' })
        await until(() => again.closed.code, 'refused')
        expect(again.closed.code).toBe(1013)
      } finally {
        own.resume()
      }
      const back = bus({
        url: `ws://127.0.0.1:${server.port}`,
        platform: runtime(),
        login: login('alice'),
        ready,
        ...fast,
      })
      await until(() => back.state === 'ready', 'ready again', 8000)
    },
  )
})

describe('mpbus/server: user callbacks', () => {
  for (const [what, decision] of [
    ['42', 42],
    ['a user that is no string', { user: 42 }],
    ['fields that are no object', { user: 'alice', fields: 'x' }],
    ['an empty user', ''],
    ['a refusal that is no string', { refuse: 7 }],
  ] as const)
    it(`authenticate returning ${what} is a refused login, reported`, async () => {
      const { server, errors } = await start({ authenticate: () => decision as any })
      const c = await raw(server.port)
      c.send({ Operator: 'userLogin', openId: 'alice' })
      await until(() => c.closed.code, 'close')
      expect(c.closed.code).toBe(1008)
      expect(c.got).toEqual([{ Operator: 'LoginError' }])
      expect(errors.map((e: any) => e.code)).toEqual(['LOGIN_ERROR'])
    })
})

/**
 * An engine whose `method` waits, for user alice, until released; and that hands the test the
 * server's listener, to hear what the server would send.
 */
function gated(engine: Engine, method: 'joined' | 'since' | 'tip' | 'listen' | 'login') {
  let release = () => {}
  const reached = { yes: false }
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  let listener: ((event: EngineEvent) => void) | undefined
  const wrapped: Engine = Object.create(engine)
  wrapped.subscribe = (l) => {
    listener = l
    return engine.subscribe(l)
  }
  wrapped[method] = (async (first: string, ...rest: any[]) => {
    if (first === 'alice' || first === 'user:alice') {
      reached.yes = true
      await gate
    }
    return (engine[method] as any)(first, ...rest)
  }) as any
  return { engine: wrapped, release, reached, hear: (event: EngineEvent) => listener!(event) }
}

describe('mpbus/server: a login abandoned at any await holds nothing', () => {
  // `joined` is the login's read of the user's rooms and their join positions; on Redis, `listen`
  // is the subscription to the user's stream, and `login` reads the rooms and the stream at once.
  const points = {
    memory: ['authenticate', 'joined', 'since', 'tip'],
    redis: ['authenticate', 'listen', 'login'],
  } as const
  for (const kind of ['memory', 'redis'] as const)
    for (const at of points[kind])
      it.skipIf(kind === 'redis' && !redisServer)(
        `${kind} engine: closed while ${at} runs, the connection never joins the fan-out`,
        async () => {
          const base = kind === 'memory' ? memoryEngine() : redisEngine({ url: redis.url, prefix: `a${at}` })
          const g = gated(base, at === 'authenticate' ? 'joined' : at)
          let authenticated = () => {}
          const authenticating = new Promise<void>((resolve) => {
            authenticated = resolve
          })
          let authReached = false
          const http = createHttpServer()
          let socket: Socket | undefined
          http.on('upgrade', (_req, s: Socket) => {
            socket = s
          })
          await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
          open.push({ close: () => new Promise((resolve) => http.close(resolve)) })
          const { server } = await start({
            server: http,
            engine: g.engine,
            authenticate: async (f) => {
              authReached = true
              if (at === 'authenticate') await authenticating
              return f.openId as string
            },
          })
          const { epoch } = await server.push('alice', 'Quote', { n: 0 })
          const c = await raw((http.address() as AddressInfo).port)
          let gone = false
          socket!.on('close', () => {
            gone = true
          })
          const position = at === 'since' ? { Streams: { 'user:alice': { offset: 1, epoch } } } : {}
          c.send({ Operator: 'userLogin', openId: 'alice', ...position })
          await until(() => (at === 'authenticate' ? authReached : g.reached.yes), `at ${at}`)
          c.ws.terminate()
          await until(() => gone, 'the close seen by the server')
          for (let i = 0; i < 3; i++) await tick()
          authenticated()
          g.release()
          // Whatever the login path still reads after the close, and its answers.
          for (let i = 0; i < 20; i++) await tick()
          if (kind === 'redis') await base.tip('user:alice')
          for (let i = 0; i < 5; i++) await tick()
          // Had it joined the fan-out, the server would serialise this frame for it.
          let serialised = 0
          const probe = {
            toJSON() {
              serialised++
              return 'p'
            },
          }
          g.hear({ type: 'frame', stream: 'user:alice', position: { offset: 2, epoch }, frame: { probe } })
          expect(serialised).toBe(0)
          expect(server.connections('alice')).toBe(0)
        },
      )
})

describe('mpbus/server: what it keeps', () => {
  it('a push JSON cannot encode is refused (BAD_PAYLOAD) and kept nowhere: the user still logs in and resumes', async () => {
    const { server } = await start()
    await server.push('alice', 'Quote', { n: 1 })
    await expect(server.push('alice', 'Quote', { n: 2, big: BigInt(10) } as any)).rejects.toMatchObject({
      code: 'BAD_PAYLOAD',
    })
    await expect(server.publish('r', 'Bid', { big: BigInt(10) } as any)).rejects.toMatchObject({
      code: 'BAD_PAYLOAD',
    })
    const { epoch } = await server.push('alice', 'Quote', { n: 3 })
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'alice', Streams: { 'user:alice': { offset: 0, epoch } } })
    await until(() => c.got.length === 3, 'the answer and the replay')
    expect(c.got.slice(1).map((f) => f.n)).toEqual([1, 3])
    expect(c.closed.code).toBeUndefined()
  })
})

describe('mpbus/server: a room from its join on', () => {
  for (const kind of ['memory', 'redis'] as const)
    it.skipIf(kind === 'redis' && !redisServer)(
      `${kind} engine: a member naming an offset before its join gets nothing from before it`,
      async () => {
        const { server } = await start({
          engine: kind === 'memory' ? memoryEngine() : redisEngine({ url: redis.url, prefix: 'joinfloor' }),
        })
        let epoch = ''
        for (let n = 1; n <= 5; n++) epoch = (await server.publish('r', 'Secret', { n })).epoch
        await server.join('bob', 'r')
        await server.publish('r', 'Secret', { n: 6 })
        const c = await raw(server.port)
        c.send({ Operator: 'userLogin', openId: 'bob', Streams: { 'room:r': { offset: 0, epoch } } })
        await until(() => c.got.length >= 2, 'the answer and what follows the join')
        c.send({ Operator: 'Heart' }) // its answer comes after anything the replay sent
        await until(() => c.got.some((f) => f.Operator === 'HeartOK'), 'the heartbeat answer')
        expect(c.got.filter((f) => f.Operator === 'Secret').map((f) => f.n)).toEqual([6])
      },
    )
})

describe('mpbus/server: closed', () => {
  for (const kind of ['memory', 'redis'] as const)
    it.skipIf(kind === 'redis' && !redisServer)(
      `${kind} engine: push, publish, join, leave and end after close() reject with CLOSED`,
      async () => {
        const server: MpbusServer = await createServer({
          authenticate,
          engine: kind === 'memory' ? memoryEngine() : redisEngine({ url: redis.url, prefix: 'closed' }),
        })
        await server.close()
        for (const call of [
          () => server.push('alice', 'Quote'),
          () => server.publish('r', 'Quote'),
          () => server.join('alice', 'r'),
          () => server.leave('alice', 'r'),
          () => server.end('alice'),
        ])
          await expect(call()).rejects.toMatchObject({ code: 'CLOSED' })
      },
    )
})

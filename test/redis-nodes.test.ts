// Two mpbus/server nodes on one real redis-server, and again on a real Redis Cluster of three
// masters, behave as one server: the duplicate window is shared, a client on node A gets what
// node B pushes, in order; when A dies the bus reconnects to B and recovers what it missed; a
// cold start recovers from storage; an emptied Redis is a new epoch (resync), and while Redis is
// down logins are refused and pushes rejected, not dropped.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import {
  createServer,
  type MpbusServer,
  type RedisEngineOptions,
  redisEngine,
  type ServerOptions,
} from '../src/server/index'
import {
  createStorageArea,
  type RedisCluster,
  type RedisServer,
  startRedisCluster,
  startRedisServer,
} from '../src/testing/index'
import { authenticate, bus, fast, raw, runtime } from './helpers/e2e'
import { describeWithRedis, redisServer } from './helpers/redis'
import { skip, until, useSteppedClock } from './helpers/time'

let redis: RedisServer
let cluster: RedisCluster | undefined
beforeAll(async () => {
  if (!redisServer) return
  redis = await startRedisServer()
})
afterAll(async () => {
  await redis?.stop()
  await cluster?.stop()
})
/** Where `nodes()` puts its engines by default: one Redis, or the cluster. */
let onCluster = false

const open: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  while (open.length) await open.pop()!.close()
})

let prefixes = 0
/** `count` nodes on one Redis and one key prefix; each closes with the test. */
async function nodes(
  count: number,
  options: Partial<ServerOptions> = {},
  url?: string,
  engine: Partial<RedisEngineOptions> = {},
) {
  const prefix = `n${++prefixes}`
  const where = url || !onCluster ? { url: url || redis.url } : { cluster: { rootNodes: cluster!.rootNodes } }
  const errors: Error[] = []
  const out: MpbusServer[] = []
  for (let i = 0; i < count; i++) {
    const server = await createServer({
      authenticate,
      engine: redisEngine({ ...where, prefix, ...engine }),
      onError: (e) => void errors.push(e),
      ...options,
    })
    open.push(server)
    out.push(server)
  }
  /** Another engine on the same store, to read what the nodes wrote. */
  const store = () => {
    const e = redisEngine({ ...where, prefix })
    open.push(e)
    return e
  }
  return { nodes: out, errors, store }
}

const login = (openId: string) => () => ({ op: 'userLogin', payload: { openId } })
const ready = { ok: 'LoginOK', fail: ['LoginError'], timeout: 1000 }
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A bus whose URL alternates between the nodes' ports (a load balancer), recording what its handlers see. */
function client(ports: number[], platform = runtime(), user = 'alice') {
  let next = 0
  const url = () => `ws://127.0.0.1:${ports[next++ % ports.length]}`
  const b = bus({ url, platform, login: login(user), ready, ack: true, ...fast })
  const seen: number[] = []
  const offsets: number[] = []
  const resyncs: any[] = []
  b.on('Quote', (f: any) => {
    seen.push(f.n)
    offsets.push(f.Stream.offset)
  })
  b.events.on('resync', (r) => void resyncs.push(r))
  let attempts = 0
  b.events.on('reconnecting', () => attempts++)
  /** Pushes a last frame to `user` through `node` and waits for it: anything sent twice comes first. */
  const drained = async (node: MpbusServer) => {
    const mark = b.once('Mark')
    node.push(user, 'Mark', {})
    await mark
  }
  return { b, seen, offsets, resyncs, drained, attempts: () => attempts }
}

for (const kind of ['one Redis', 'a Redis Cluster'] as const)
  describeWithRedis(`mpbus/server on ${kind}: nodes that behave as one`, () => {
    beforeAll(async () => {
      onCluster = kind === 'a Redis Cluster'
      if (onCluster && !cluster) cluster = await startRedisCluster({ masters: 3 })
    }, 30_000)
    afterAll(() => {
      onCluster = false
    })

    it('the duplicate window is shared: a resend to node B after node A handled it is acked, not handled again', async () => {
      const handled: string[] = []
      const {
        nodes: [a, b],
      } = await nodes(2, { handlers: { Chat: (f, ctx) => void handled.push(`${ctx.user}:${f.MsgId}`) } })
      const onA = await raw(a!.port)
      onA.send({ Operator: 'userLogin', openId: 'alice' })
      onA.send({ Operator: 'Chat', MsgId: 'm1' })
      await until(() => onA.got.some((f) => f.Operator === 'Ack'), 'ack on A')
      const onB = await raw(b!.port)
      onB.send({ Operator: 'userLogin', openId: 'alice' })
      onB.send({ Operator: 'Chat', MsgId: 'm1' })
      onB.send({ Operator: 'Chat', MsgId: 'm2' })
      await until(() => onB.got.filter((f) => f.Operator === 'Ack').length === 2, 'acks on B')
      expect(onB.got.filter((f) => f.Operator === 'Ack').map((f) => f.MsgId)).toEqual(['m1', 'm2'])
      expect(handled).toEqual(['alice:m1', 'alice:m2'])
    })

    it('a node dying mid-handler loses nothing: the resend to B is refused while the id is claimed, then handled once', async () => {
      const handled: string[] = []
      let calls = 0
      const {
        nodes: [a, b],
      } = await nodes(
        2,
        {
          closeTimeout: 50,
          handlers: {
            Chat: (f, ctx) => {
              // The first run never ends: its node dies under it (close() waits for it 50 ms only).
              if (++calls === 1) return new Promise<void>(() => {})
              handled.push(`${ctx.user}:${f.MsgId}`)
            },
          },
        },
        undefined,
        { claimTtl: 400 },
      )
      // A crash, in effect: close() gives up on the handler that never ends.
      const onA = await raw(a!.port)
      onA.send({ Operator: 'userLogin', openId: 'alice' })
      onA.send({ Operator: 'Chat', MsgId: 'm1' })
      await until(() => calls === 1, 'the handler runs on A')
      await a!.close()
      const early = await raw(b!.port)
      early.send({ Operator: 'userLogin', openId: 'alice' })
      early.send({ Operator: 'Chat', MsgId: 'm1' })
      await until(() => early.closed.code, 'refused')
      expect(early.closed.code).toBe(1013)
      expect(early.got.map((f) => f.Operator)).toEqual(['LoginOK'])
      // A's claim lapses on redis-server's clock: until then B refuses as above (1013); then it acks.
      const attempt = async () => {
        const late = await raw(b!.port)
        late.send({ Operator: 'userLogin', openId: 'alice' })
        late.send({ Operator: 'Chat', MsgId: 'm1' })
        await until(() => late.closed.code || late.got.some((f) => f.Operator === 'Ack'), 'an answer')
        return late.got.some((f) => f.Operator === 'Ack') ? late : undefined
      }
      const late = await until(attempt, 'the claim lapsed')
      expect(late!.got.some((f) => f.Operator === 'Ack')).toBe(true)
      expect(handled).toEqual(['alice:m1'])
    })

    it('a client on A gets what B pushes and publishes, interleaved with A’s own pushes, once and in order', async () => {
      const {
        nodes: [a, b],
      } = await nodes(2)
      const c = client([a!.port])
      const bids: number[] = []
      c.b.on('Bid', (f: any) => void bids.push(f.n))
      await until(() => c.b.state === 'ready', 'ready')
      await b!.join('alice', 'auction')
      const pushes: Promise<unknown>[] = []
      for (let n = 1; n <= 100; n++) {
        pushes.push((n % 2 ? a! : b!).push('alice', 'Quote', { n }))
        if (n % 10 === 0) pushes.push(b!.publish('auction', 'Bid', { n: n / 10 }))
      }
      await Promise.all(pushes)
      await until(() => c.seen.length === 100 && bids.length === 10, 'all pushes', 8000)
      await c.drained(b!)
      // Offsets are the one order of the stream, whichever node appended.
      expect(c.offsets).toEqual(range(1, 100))
      expect([...c.seen].sort((x, y) => x - y)).toEqual(range(1, 100))
      expect(bids).toEqual(range(1, 10))
      expect(c.resyncs).toEqual([])
    })

    it('logins on A while B pushes without pause: each connection gets every offset after its position once, in order', async () => {
      const {
        nodes: [a, b],
      } = await nodes(2)
      const first = await b!.push('alice', 'Quote', { n: 1 })
      let pushing = true
      let pushed = 1
      const pusher = (async () => {
        while (pushing) {
          const batch: Promise<unknown>[] = []
          for (let i = 0; i < 10; i++) batch.push(b!.push('alice', 'Quote', { n: ++pushed }))
          await Promise.all(batch)
        }
      })()
      const clients = []
      for (let k = 0; k < 5; k++) {
        const before = pushed
        await until(() => pushed >= before + 10, 'B pushing on') // each login lands amid pushes
        const from = Math.max(0, pushed - 5 * k)
        const c = await raw(a!.port)
        c.send({
          Operator: 'userLogin',
          openId: 'alice',
          Streams: { 'user:alice': { offset: from, epoch: first.epoch } },
        })
        clients.push({ c, from })
      }
      const last = pushed
      await until(() => pushed >= last + 20, 'pushes after the last login')
      pushing = false
      await pusher
      for (const { c, from } of clients) {
        await until(() => c.got.length && c.got[c.got.length - 1].Stream?.offset === pushed, 'the last push')
        expect(c.got[0].Operator).toBe('LoginOK')
        expect(c.got.slice(1).map((f) => f.Stream.offset)).toEqual(range(from + 1, pushed))
      }
    })

    it('a room joined while connected, amid publications from the other node: every frame from the join on, once, in order', async () => {
      const {
        nodes: [a, b],
        store,
      } = await nodes(2)
      const c = await raw(a!.port)
      c.send({ Operator: 'userLogin', openId: 'alice' })
      await until(() => c.got.length === 1, 'logged in')
      let publishing = true
      let published = 0
      const publisher = (async () => {
        while (publishing) {
          const batch: Promise<unknown>[] = []
          for (let i = 0; i < 5; i++) batch.push(b!.publish('live', 'Bid', { n: ++published }))
          await Promise.all(batch)
        }
      })()
      await until(() => published >= 20, 'publishing')
      // A joins on B: node A learns of it on alice's channel and only then subscribes to the room.
      await b!.join('alice', 'live')
      const from = (await store().joined('alice')).live!
      await until(() => published >= from.offset + 30, 'publications after the join')
      publishing = false
      await publisher
      const bids = () => c.got.filter((f) => f.Operator === 'Bid').map((f) => f.Stream.offset as number)
      await until(() => bids()[bids().length - 1] === published, 'the last publication')
      // From the join's position on: none missed, none twice, in order, and no reconnect.
      expect(bids()).toEqual(range(from.offset + 1, published))
      expect(c.closed.code).toBeUndefined()
    })

    it('end(user) on B ends the session on A: the bus fails with SESSION_ENDED and stays down', async () => {
      const {
        nodes: [a, b],
      } = await nodes(2)
      useSteppedClock()
      const c = client([a!.port])
      await until(() => c.b.state === 'ready', 'ready')
      expect(b!.connections('alice')).toBe(0)
      await b!.end('alice', 'logged in elsewhere')
      await until(() => c.b.state === 'failed', 'failed')
      const before = c.attempts() // a connect that timed out on a loaded machine counts too
      await skip(10_000) // far past any backoff (10-50 ms)
      expect(c.attempts()).toBe(before)
      expect(c.b.state).toBe('failed')
      await until(() => a!.connections('alice') === 0, 'A saw the close') // real bytes, real time
      expect(a!.connections('alice')).toBe(0)
    })

    it('node A dies: the bus reconnects to B and recovers what it missed; every push and message handled once', async () => {
      const handled: number[] = []
      const {
        nodes: [a, b],
      } = await nodes(2, { handlers: { Chat: (f) => void handled.push(f.n) } })
      const c = client([a!.port, b!.port])
      await until(() => c.b.state === 'ready' && a!.connections('alice') === 1, 'ready on A')
      const sends: Promise<void>[] = []
      for (let n = 1; n <= 20; n++) {
        await b!.push('alice', 'Quote', { n })
        sends.push(c.b.send('Chat', { n }))
      }
      await a!.close()
      for (let n = 21; n <= 40; n++) {
        await b!.push('alice', 'Quote', { n })
        sends.push(c.b.send('Chat', { n }))
      }
      await until(() => b!.connections('alice') === 1, 'on B', 8000)
      for (let n = 41; n <= 50; n++) await b!.push('alice', 'Quote', { n })
      await Promise.all(sends)
      await until(() => c.seen.length >= 50, 'all 50', 8000)
      await c.drained(b!)
      expect(c.seen).toEqual(range(1, 50))
      expect(c.resyncs).toEqual([])
      expect(handled).toEqual(range(1, 40))
    })

    it('a room joined on B while the app was offline: the frames published since the join are replayed by either node', async () => {
      const {
        nodes: [a, b],
      } = await nodes(2)
      const wx = runtime()
      const c = client([a!.port, b!.port], wx)
      const bids: number[] = []
      c.b.on('Bid', (f: any) => void bids.push(f.n))
      await until(() => c.b.state === 'ready', 'ready')
      await b!.publish('r', 'Bid', { n: 0 }) // before the join: not this member's
      wx.control.offline()
      await until(() => a!.connections('alice') + b!.connections('alice') === 0, 'dropped')
      await b!.join('alice', 'r')
      for (let n = 1; n <= 10; n++) await (n % 2 ? a : b)!.publish('r', 'Bid', { n })
      wx.control.online()
      await until(() => bids.length === 10, 'the 10 published while offline')
      await a!.publish('r', 'Bid', { n: 11 }) // a marker: a repeat would arrive before it
      await until(() => bids.length >= 11, 'the marker')
      expect(bids).toEqual(range(1, 11))
      expect(c.resyncs).toEqual([])
    })

    it('killed and cold-started: pushes made by the other node while the app was dead are recovered from storage', async () => {
      const {
        nodes: [a, b],
      } = await nodes(2)
      const storage = createStorageArea()
      const first = runtime({ storage })
      const one = client([a!.port, b!.port], first)
      await until(() => one.b.state === 'ready', 'ready')
      for (let n = 1; n <= 10; n++) await a!.push('alice', 'Quote', { n })
      await until(() => one.seen.length === 10, 'first life')
      first.control.kill()
      await until(() => a!.connections('alice') + b!.connections('alice') === 0, 'the kill seen')
      for (let n = 11; n <= 20; n++) await b!.push('alice', 'Quote', { n })
      const two = client([b!.port, a!.port], runtime({ storage }))
      await until(() => two.seen.length === 10, 'second life')
      await two.drained(b!)
      expect(two.seen).toEqual(range(11, 20))
      expect(two.resyncs).toEqual([])
    })
  })

describeWithRedis('mpbus/server on Redis: outages', () => {
  it('appendfsync always: an app killed while Redis restarts gets, at its cold start, every push made meanwhile, no resync', async () => {
    const own = await startRedisServer({ appendonly: 'always' })
    open.push({ close: () => own.stop() })
    const {
      nodes: [a, b],
    } = await nodes(2, {}, own.url)
    const storage = createStorageArea()
    const first = runtime({ storage })
    const one = client([a!.port, b!.port], first)
    await until(() => one.b.state === 'ready', 'ready')
    for (let n = 1; n <= 5; n++) await a!.push('alice', 'Quote', { n })
    await until(() => one.seen.length === 5, 'first life')
    await own.kill()
    first.control.kill()
    await own.restart()
    // Pushed once the nodes have Redis again, while the app is dead: each push is retried until
    // the node's engine is back (it rejects with ENGINE_DOWN until then).
    for (let n = 6; n <= 10; n++)
      await until(
        () =>
          b!.push('alice', 'Quote', { n }).then(
            () => true,
            () => false,
          ),
        `push ${n}`,
      )
    const two = client([b!.port, a!.port], runtime({ storage }))
    await until(() => two.seen.length === 5, 'second life', 10_000)
    // A marker pushed after the five: a frame seen twice would arrive before it.
    await b!.push('alice', 'Quote', { n: 11 })
    await until(() => two.seen.length >= 6, 'the marker')
    expect(two.seen).toEqual(range(6, 11))
    expect(two.resyncs).toEqual([])
  })

  it('Redis killed: logins refused and pushes rejected (reported); restarted empty: a new epoch, and the bus resyncs', async () => {
    const own = await startRedisServer()
    open.push({ close: () => own.stop() })
    const {
      nodes: [a],
      errors,
    } = await nodes(1, {}, own.url)
    const c = client([a!.port])
    await until(() => c.b.state === 'ready', 'ready')
    for (let n = 1; n <= 3; n++) await a!.push('alice', 'Quote', { n })
    await until(() => c.seen.length === 3, 'live')
    await own.kill()
    // The node may have missed live frames: it closes its connections, and refuses logins it cannot serve.
    await until(() => a!.connections('alice') === 0, 'connections closed')
    await expect(a!.push('alice', 'Quote', { n: 4 })).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
    // The bus keeps trying; two more attempts, each refused while Redis is down.
    const tried = c.attempts()
    await until(() => c.attempts() >= tried + 2, 'two attempts while Redis is down')
    expect(c.b.state).not.toBe('ready')
    expect(a!.connections('alice')).toBe(0)
    expect(errors.some((e: any) => e.code === 'ENGINE_DOWN')).toBe(true)
    await own.restart()
    await until(() => c.resyncs.length === 1, 'resync', 10_000)
    expect(c.resyncs[0]).toMatchObject({ stream: 'user:alice', offset: 0 })
    await until(() => c.b.state === 'ready', 'ready again')
    await a!.push('alice', 'Quote', { n: 1 })
    await until(() => c.seen.length === 4, 'the new epoch’s first push')
    expect(c.seen).toEqual([1, 2, 3, 1])
  })
})

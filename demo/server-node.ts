/**
 * One server node of the demo, run as its own process (bundled and `fork`ed by demo/cluster.ts), so
 * that a restart and a SIGKILL are what they are in production: the process and everything in its
 * memory go. It is `mpbus/server` as an app would write it, plus what the demo needs to see:
 *
 * - every `Demo` message is reported to the demo (its "database") before the handler returns, so
 *   its ack leaves only once the demo has the record;
 * - repeats the duplicate window drops are counted (a wrapper around the engine's `remember`);
 * - `push` requests from the demo become `server.push(user, 'Tick', {k})` and
 *   `server.publish('demo', 'RoomTick', {k})`, answered with the stream positions they got;
 * - "acks lost": for the users the demo names, the handler records the message and then holds
 *   its return until the demo releases it. The ack cannot leave before the handler returns
 *   (docs/protocol.md), so this is the honest way to take a message and not acknowledge it.
 *
 * The node's config is JSON in the environment variable MPBUS_DEMO_NODE: `{ port, engine: 'memory' |
 * 'redis' | 'redis-cluster', redisUrl?, rootNodes?, prefix? }`.
 */

import { createServer, type Engine, type MpbusServer, memoryEngine, redisEngine } from '../src/server/index'

export interface NodeConfig {
  port: number
  engine: 'memory' | 'redis' | 'redis-cluster'
  /** The one redis-server (`redis`). */
  redisUrl?: string
  /** Masters of the Redis Cluster (`redis-cluster`): node-redis finds the rest of the cluster from them. */
  rootNodes?: Array<{ url: string }>
  prefix?: string
  /** The Redis engine's claim on a message id while its handler runs (see cluster.ts). */
  claimTtl?: number
}

/** The room every client joins at login. */
export const ROOM = 'demo'

/** Parent → node. */
export type ToNode =
  | { t: 'listen' }
  | { t: 'push'; id: number; users: Array<{ user: string; k: number }>; room: number }
  | { t: 'withhold'; users: string[] }
  | { t: 'release' }

export interface Pos {
  offset: number
  epoch: string
}

/** Node → parent. */
export type FromNode =
  | { t: 'loaded' }
  | { t: 'ready' }
  | { t: 'got'; user: string; client: number; n: number }
  | { t: 'repeat'; user: string }
  /** A position for each push asked, null where that push failed (its stream's Redis shard was down). */
  | { t: 'pushed'; id: number; users: Array<Pos | null>; room: Pos | null }
  | { t: 'failed'; id: number; error: string }

/** Sends to the parent; resolves once the message is handed to the OS (a SIGKILL after it cannot take it back). */
function tell(message: FromNode): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve()
    process.send(message, undefined, {}, () => resolve())
  })
}

/** The engine, with every repeat its window drops told to the demo. Works for a sync or an async `remember`. */
function counting(engine: Engine): Engine {
  const remember = (user: string, id: string) => {
    const fresh: any = engine.remember(user, id)
    const note = (yes: unknown) => {
      if (yes === false) void tell({ t: 'repeat', user })
      return yes
    }
    return fresh && typeof fresh.then === 'function' ? fresh.then(note) : note(fresh)
  }
  return new Proxy(engine, {
    get(target, key) {
      if (key === 'remember') return remember
      const value = Reflect.get(target, key)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
}

function engineFor(config: NodeConfig): Engine {
  if (config.engine === 'memory') return memoryEngine()
  const { prefix, claimTtl } = config
  if (config.engine === 'redis-cluster')
    return redisEngine({ cluster: { rootNodes: config.rootNodes ?? [] }, prefix, claimTtl })
  return redisEngine({ url: config.redisUrl, prefix, claimTtl })
}

/** The position a push got, or null when it failed: on a Redis Cluster, one shard down fails only the pushes to its streams. */
const settled = (push: Promise<Pos>): Promise<Pos | null> => push.catch(() => null)

export async function startNode(config: NodeConfig): Promise<MpbusServer> {
  let withheld = new Set<string>()
  let release = () => {}
  let gate = Promise.resolve()
  let server: MpbusServer | undefined
  server = await createServer({
    port: config.port,
    host: '127.0.0.1',
    engine: counting(engineFor(config)),
    // MPBUS_DEMO_DEBUG=1 prints what the server refused and why (a handler that threw, a busy id).
    onError: process.env.MPBUS_DEMO_DEBUG
      ? (e, user) => console.error(`node ${config.port}: ${user}: ${e.message}`)
      : undefined,
    // The demo's code2session: `client-07.3` (a fresh wx.login code) is user `o-client-07`. It
    // believes a `userOpenId` the client sends, as a demo may; a real server must not.
    async authenticate(login) {
      const user = login.userOpenId || `o-${String(login.userCode).split('.')[0]}`
      await server!.join(user, ROOM)
      return { user, fields: { openId: user } }
    },
    handlers: {
      async Demo(frame, ctx) {
        await tell({ t: 'got', user: ctx.user, client: frame.client, n: frame.n })
        if (withheld.has(ctx.user)) await gate
      },
    },
  })
  process.on('message', async (message: ToNode) => {
    if (message.t === 'withhold') {
      withheld = new Set(message.users)
      gate = new Promise((resolve) => {
        release = resolve
      })
    } else if (message.t === 'release') {
      withheld = new Set()
      release()
    } else if (message.t === 'push') {
      try {
        const s = server!
        const users = await Promise.all(message.users.map((p) => settled(s.push(p.user, 'Tick', { k: p.k }))))
        const room = await settled(s.publish(ROOM, 'RoomTick', { k: message.room }))
        await tell({ t: 'pushed', id: message.id, users, room })
      } catch (e) {
        await tell({ t: 'failed', id: message.id, error: String(e) })
      }
    }
  })
  return server
}

// Run as a process (cluster.ts sets the variable). It loads first and says so, then waits to be
// told to listen: cluster.ts keeps such a warm spare for each node (a new process, with nothing
// of the old one's memory), so that a restart takes as long as the fault says, not as long as
// loading TypeScript and node-redis on a busy machine.
// On SIGTERM (a deploy) it closes its sockets and exits.
if (process.env.MPBUS_DEMO_NODE) {
  const config = JSON.parse(process.env.MPBUS_DEMO_NODE) as NodeConfig
  // The Redis engine loads node-redis on first use: here, before the node is needed.
  const warm = config.engine !== 'memory' ? import('redis').catch(() => {}) : Promise.resolve()
  void warm.then(() => tell({ t: 'loaded' }))
  const listen = (message: ToNode) => {
    if (message.t !== 'listen') return
    process.off('message', listen)
    startNode(config).then(
      (server) => {
        process.on('SIGTERM', () => {
          void server.close().then(() => process.exit(0))
        })
        void tell({ t: 'ready' })
      },
      (error) => {
        console.error(error)
        process.exit(1)
      },
    )
  }
  process.on('message', listen)
}

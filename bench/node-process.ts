/**
 * One server node of bench/nodes.ts, run as its own process (bundled and `fork`ed by it): the
 * CPU a node spends is then its own process's, read with `process.cpuUsage()`. It is
 * `mpbus/server` on the Redis engine as an app would run it (or on the memory engine: a node that
 * shares nothing, the floor a node on Redis is set against), and does what the bench asks over
 * IPC: push frames to random users or publish to a room at a rate, join users to a room, count
 * its connections of some users, report its CPU time.
 *
 * Its config is JSON in the environment variable MPBUS_BENCH_NODE (`NodeConfig`).
 */
import { createServer, type MpbusServer, memoryEngine, redisEngine } from '../src/server/index'

/** Where a node's engine keeps its streams: one redis-server or a Redis Cluster. */
export interface RedisTarget {
  /** One redis-server. */
  url?: string
  /** A Redis Cluster, in node-redis `createCluster`'s shape: passed to the engine as `cluster`. */
  cluster?: { rootNodes: Array<{ url: string }> }
}

export type NodeConfig =
  | ({ engine: 'redis'; prefix: string } & RedisTarget)
  /** `memoryEngine()`: the node reaches its own connections only. */
  | { engine: 'memory' }

/** Bench → node: a request, answered with its id. */
export type Request =
  /** `count` × `server.push(<one of users at random>, 'Tick', {k})`, `perSecond` of them a second; answers the number that failed. */
  | { id: number; t: 'push'; count: number; perSecond: number; users: string[] }
  /** `count` × `server.publish(room, 'Quote', {k})`, `perSecond` a second; answers the number that failed. */
  | { id: number; t: 'publish'; room: string; count: number; perSecond: number }
  | { id: number; t: 'join'; room: string; users: string[] }
  /** Answers how many connections of these users this node serves. */
  | { id: number; t: 'connections'; users: string[] }
  /** Answers `process.cpuUsage()`: µs of CPU since the process started. */
  | { id: number; t: 'cpu' }

/** Node → bench. */
export type Answer =
  | { t: 'ready'; port: number }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'refused'; id: number; error: string }

const tell = (answer: Answer) => process.send?.(answer)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Runs `one(k)` for k below `count`, `perSecond` a second, without waiting for each: the ones due
 * go in a burst every 10 ms or more (a timer per frame would cost more than the frame). Resolves
 * with the number that failed once all settled.
 */
async function paced(count: number, perSecond: number, one: (k: number) => Promise<unknown>) {
  const start = performance.now()
  const all: Array<Promise<unknown>> = []
  let failed = 0
  for (let k = 0; k < count; k++) {
    const wait = start + (k * 1000) / perSecond - performance.now()
    if (wait > 0) await sleep(Math.max(wait, 10))
    all.push(
      one(k).catch(() => {
        failed++
      }),
    )
  }
  await Promise.all(all)
  return failed
}

async function serve(server: MpbusServer, request: Request): Promise<unknown> {
  switch (request.t) {
    case 'push':
      return paced(request.count, request.perSecond, (k) =>
        server.push(request.users[Math.floor(Math.random() * request.users.length)]!, 'Tick', { k }),
      )
    case 'publish':
      return paced(request.count, request.perSecond, (k) => server.publish(request.room, 'Quote', { k }))
    case 'join':
      await Promise.all(request.users.map((user) => server.join(user, request.room)))
      return request.users.length
    case 'connections':
      return request.users.reduce((sum, user) => sum + server.connections(user), 0)
    case 'cpu':
      return process.cpuUsage()
  }
}

async function main(config: NodeConfig) {
  const engine =
    config.engine === 'memory'
      ? memoryEngine()
      : config.cluster
        ? redisEngine({ cluster: config.cluster, prefix: config.prefix })
        : redisEngine({ url: config.url, prefix: config.prefix })
  const server = await createServer({
    host: '127.0.0.1',
    engine,
    authenticate: (login) => String(login.user),
    // No pings: a ping round to every connection inside a measured window would be noise.
    pingInterval: 0,
    onError: process.env.MPBUS_BENCH_DEBUG
      ? (e, user) => console.error(`node: ${user}: ${e.message}`)
      : undefined,
  })
  process.on('message', (request: Request) => {
    serve(server, request).then(
      (value) => tell({ t: 'answer', id: request.id, value }),
      (error) => tell({ t: 'refused', id: request.id, error: String(error) }),
    )
  })
  // The bench ends a node with SIGTERM: its sockets close, its engine lets Redis go.
  process.on('SIGTERM', () => {
    void server.close().then(() => process.exit(0))
  })
  tell({ t: 'ready', port: server.port })
}

if (process.env.MPBUS_BENCH_NODE)
  main(JSON.parse(process.env.MPBUS_BENCH_NODE) as NodeConfig).catch((error) => {
    console.error(`bench node could not start: ${error && error.message ? error.message : error}`)
    process.exit(1)
  })

/**
 * The demo's server side: `servers` processes of demo/server-node.ts (mpbus/server), on the
 * memory engine (one node), or on one `redis-server` or a Redis Cluster the demo starts
 * (demo/redis.ts), behind the fault proxy.
 * The proxy opens each upstream connection to the next node that is up, in turn (a load
 * balancer with a health check: a node the demo killed gets no connections until it is back).
 *
 * It is also the demo's view of the servers: what they received (`onGot`), the repeats their
 * duplicate window dropped (`onRepeat`), and the pushes they made, with their positions.
 */
import { type ChildProcess, fork } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { createFaultProxy, type FaultProxy, freePort } from '../src/testing/index'
import { type SharedRedis, startSharedRedis } from './redis'
import type { FromNode, NodeConfig, Pos, ToNode } from './server-node'

export type EngineKind = NodeConfig['engine']

export interface ClusterOptions {
  servers: number
  engine: EngineKind
  /** A `Demo` message a node handled (before its ack left). */
  onGot(user: string, client: number, n: number): void
  /** A repeat a node's duplicate window dropped (and acked again). */
  onRepeat(user: string): void
  /**
   * ms the Redis engine keeps a message id claimed while its handler runs. A node killed
   * mid-handler leaves its claim behind: the resend is refused (and the client's later messages
   * wait behind it, in order) until the claim expires, then handled once. The engine's 30 s
   * default would outlast the demo's drain; it must still outlast the slowest handler, the ones
   * held by "acks lost". @default 30000
   */
  claimTtl?: number
}

/** What a push batch got: the position of each user's push, in the order asked, and the room's; null where one failed. */
export interface Pushed {
  users: Array<Pos | null>
  room: Pos | null
}

interface Node {
  port: number
  child?: ChildProcess
  /** Takes pushes and connections: started, and not being stopped. */
  up: boolean
  /** Push batches waiting for an answer, by id. */
  pending: Map<number, (result: Pushed | undefined) => void>
  /** Next processes, loaded (or loading) and waiting to listen: one is forked as soon as a process listens. */
  spares: Array<Promise<ChildProcess>>
}

const here = path.dirname(fileURLToPath(import.meta.url))

/**
 * demo/server-node.ts bundled into one JavaScript file (its packages, `ws` and `redis`, left to
 * node_modules): a node then starts in what a Node process costs, not in a TypeScript transform
 * of every file it imports, which on a busy machine is the difference between 1 s and 5.
 */
async function bundleNode(): Promise<string> {
  const outfile = path.join(here, '..', '.tmp', 'demo', `server-node-${process.pid}.mjs`)
  await build({
    entryPoints: [path.join(here, 'server-node.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  })
  return outfile
}

export async function createCluster(options: ClusterOptions) {
  if (options.servers > 1 && options.engine === 'memory')
    throw new Error(
      'several servers need a shared engine: use --engine redis or redis-cluster with --servers > 1',
    )
  const redis = options.engine === 'memory' ? undefined : await startSharedRedis(options.engine)
  try {
    return await startNodes(options, redis)
  } catch (e) {
    await redis?.stop()
    throw e
  }
}

async function startNodes(options: ClusterOptions, redis: SharedRedis | undefined) {
  const script = await bundleNode()
  const nodes: Node[] = []
  for (let i = 0; i < options.servers; i++)
    nodes.push({ port: await freePort(), up: false, pending: new Map(), spares: [] })
  let nextId = 0
  let turn = 0
  let closing = false
  /** Every process forked and not yet exited, spares included. */
  const children = new Set<ChildProcess>()
  /** Connections the proxy opened to each node. */
  const routed = nodes.map(() => 0)

  /** The next node that is up, in turn; when none is, the next one anyway (its connect fails). */
  function pick(): number {
    for (let tries = 0; tries < nodes.length; tries++) {
      const i = turn++ % nodes.length
      if (nodes[i]!.up) return i
    }
    return turn++ % nodes.length
  }

  function onMessage(node: Node, message: FromNode): void {
    if (message.t === 'got') options.onGot(message.user, message.client, message.n)
    else if (message.t === 'repeat') options.onRepeat(message.user)
    else if (message.t === 'pushed' || message.t === 'failed') {
      const done = node.pending.get(message.id)
      node.pending.delete(message.id)
      done?.(message.t === 'pushed' ? { users: message.users, room: message.room } : undefined)
    }
  }

  /** Forks node `i`'s next process; resolves once it has loaded, waiting to be told to listen. */
  function prepare(i: number): Promise<ChildProcess> {
    const node = nodes[i]!
    const config: NodeConfig = {
      port: node.port,
      engine: options.engine,
      ...redis?.config,
      prefix: 'mpbus-demo',
      claimTtl: options.claimTtl,
    }
    const child = fork(script, [], {
      cwd: path.join(here, '..'),
      execArgv: [],
      env: { ...process.env, MPBUS_DEMO_NODE: JSON.stringify(config) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.add(child)
    child.on('exit', () => children.delete(child))
    const loaded = new Promise<ChildProcess>((resolve, reject) => {
      child.on('message', (message: FromNode) => {
        if (message.t === 'loaded') resolve(child)
        else if (message.t === 'ready') node.up = true
        else onMessage(node, message)
      })
      child.on('exit', (code, signal) => {
        reject(new Error(`server node ${i} exited (${signal ?? code})`))
        if (node.child !== child) return
        node.up = false
        node.child = undefined
        for (const done of node.pending.values()) done(undefined)
        node.pending.clear()
      })
    })
    loaded.catch(() => {}) // a spare killed at close is nobody's error
    return loaded
  }

  /** Starts node `i` on its port: its warm spare, or a new process. Resolves once it listens. */
  async function start(i: number): Promise<void> {
    const node = nodes[i]!
    const child = await (node.spares.shift() ?? prepare(i))
    node.child = child
    await new Promise<void>((resolve, reject) => {
      child.on('message', (message: FromNode) => {
        if (message.t === 'ready') resolve()
      })
      child.once('exit', (code, signal) => reject(new Error(`server node ${i} exited (${signal ?? code})`)))
      child.send({ t: 'listen' } satisfies ToNode)
    })
    // The next process loads now, while this one serves.
    if (!closing && !node.spares.length) node.spares.push(prepare(i))
  }

  /**
   * Stops node `i`: first it takes no more pushes and its pushes in flight are answered (the app
   * server stops routing to a node before it goes: a push cut in half by the kill would be the
   * app's to retry, not the bus's), then `signal`: SIGTERM closes its sockets and exits (a
   * deploy), SIGKILL just ends it (a crash: its clients see their links die).
   */
  async function stop(i: number, signal: 'SIGTERM' | 'SIGKILL'): Promise<void> {
    const node = nodes[i]!
    node.up = false
    const child = node.child
    if (!child) return
    while (node.pending.size) await new Promise((resolve) => setTimeout(resolve, 5))
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill(signal)
    await exited
  }

  const all = (fn: (i: number) => Promise<void>) => Promise.all(nodes.map((_, i) => fn(i))).then(() => {})

  /** Ends every process forked, spares included, and the bundle. */
  async function end(): Promise<void> {
    closing = true
    await all((i) => stop(i, 'SIGKILL'))
    await Promise.all(
      Array.from(children, (child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGKILL')
        return exited
      }),
    )
    fs.rmSync(script, { force: true })
  }

  let proxy: FaultProxy
  try {
    // Each node's first process and its spare load side by side, before the run starts.
    nodes.forEach((node, i) => {
      node.spares.push(prepare(i), prepare(i))
    })
    await all(start)
    await Promise.all(nodes.map((node) => Promise.all(node.spares)))
    // The proxy reads `port` for each connection it opens upstream.
    proxy = await createFaultProxy({
      get port() {
        const i = pick()
        routed[i]!++
        return nodes[i]!.port
      },
    })
  } catch (e) {
    await end()
    throw e
  }

  return {
    proxy,
    size: nodes.length,
    routed,
    url: () => proxy.url(),
    isUp: (i: number) => nodes[i]!.up,
    /** Pushes `Tick {k}` to each user and publishes `RoomTick {k: room}`, through the next node up; undefined when none took it. */
    push(users: Array<{ user: string; k: number }>, room: number): Promise<Pushed | undefined> {
      const i = pick()
      const node = nodes[i]!
      if (!node.up || !node.child) return Promise.resolve(undefined)
      const id = nextId++
      return new Promise((resolve) => {
        node.pending.set(id, resolve)
        node.child!.send({ t: 'push', id, users, room } satisfies ToNode)
      })
    },
    /** Every node holds the acks of these users' messages until `release()`. */
    withhold(users: string[]): void {
      for (const node of nodes) if (node.up) node.child?.send({ t: 'withhold', users } satisfies ToNode)
    },
    release(): void {
      for (const node of nodes) if (node.up) node.child?.send({ t: 'release' } satisfies ToNode)
    },
    stopAll: () => all((i) => stop(i, 'SIGTERM')),
    startAll: () => all(start),
    kill: (i: number) => stop(i, 'SIGKILL'),
    start,
    engine: options.engine,
    /** The Redis the nodes share; undefined on the memory engine. */
    redis,
    async close(): Promise<void> {
      await proxy.close()
      await end()
      await redis?.stop()
    },
  }
}

export type Cluster = Awaited<ReturnType<typeof createCluster>>

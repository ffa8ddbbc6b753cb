/**
 * How `mpbus/server` scales over several nodes on Redis. Each node is its own process
 * (bench/node-process.ts, bundled and forked), so its CPU time is its own (`process.cpuUsage()`);
 * Redis's is `INFO cpu` (used_cpu_sys + used_cpu_user) of each redis-server. The clients are raw
 * `ws` sockets in this process, spread round-robin over the nodes, each logged in as its own user
 * the way an mpbus client does (`{"Operator":"userLogin", …, "Batch": 1048576}`, with its stream
 * positions when it resumes). Nodes run without pings. Every figure is a ratio within one run;
 * each run starts its own nodes on its own key prefix, and the spread is min–max over the runs.
 *
 * 1. scaling: 1,000 clients; ~1,000 `server.push(user, 'Tick', {k})` a second for ~5 s, each to
 *    ONE random user, issued by every node in turn (1,000/N a second each, so a node mostly
 *    pushes to users of other nodes). With 1, 2 and 4 nodes on one redis-server: each node's CPU
 *    per frame its own clients got, all nodes' CPU per delivered frame, Redis's CPU per frame,
 *    and all nodes' CPU at N over all nodes' CPU at 1 (target: 4 nodes ≤ 1.2×).
 * 2. room: 2 nodes; a room of 100 members all connected to node 0, and 100 other users on node 1;
 *    node 0 publishes 1,000 frames to the room. CPU per publication of node 1 (no member) over
 *    node 0's (target ≤ 5%).
 * 3. cluster (only with `--engine redis-cluster`): the load of 1 at 2 nodes on one redis-server
 *    and on a Redis Cluster of 3 masters, one after the other in the same run; the busiest
 *    master's CPU per push over the one redis-server's (target ≤ 0.5×).
 * 4. reconnect: 2 nodes, 1,000 clients of one room (joined before their first login); all dropped at
 *    once, 20 publications meanwhile, all log in again with their positions. Every client must
 *    get all 20, none twice. Redis commands per recovered frame (target ≤ 0.1), counted two ways:
 *    (a) top-level: the commands the nodes sent (an EVAL counts one). Redis 7 counts the commands
 *        a script calls under their own names in `INFO commandstats`, and in
 *        `total_commands_processed` too (checked on redis-server 7.0: an EVAL calling 3 commands
 *        adds 4), so neither separates them. MONITOR does: it shows a command a script calls as
 *        `[0 lua] "HGET" …` and a client's as `[0 127.0.0.1:port] "eval" …`. The bench holds a
 *        MONITOR connection to each redis-server and counts the lines between two ECHO markers it
 *        sends (before the logins, after the last frame arrived), lua ones apart. MONITOR leaves
 *        out administrative commands (CONFIG, …), which nodes send only when they connect.
 *    (b) all: the `INFO commandstats` calls added up over the same window (the bench's own INFO
 *        and ECHO left out), which includes what scripts call; MONITOR's total is printed beside
 *        it as a check.
 *
 * `npx tsx bench/nodes.ts [--engine redis|redis-cluster] [--runs 3] [--only scaling|room|cluster|reconnect]`
 * (or `npm run bench -- nodes`); the default takes about a minute and a half on 2 cores.
 * `--engine redis-cluster` runs the nodes on `startRedisCluster({ masters: 3 })` through the
 * engine's `cluster` option, `redisEngine({ cluster: { rootNodes }, prefix })`.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import WebSocket from 'ws'
import type { Answer, NodeConfig, Request } from './node-process'
import {
  checkTargetUsed,
  commandCalls,
  infoClients,
  monitor,
  redisCpu,
  startTarget,
  type Target,
} from './redis-meter'

const CLIENTS = 1000
const PUSHES = 5000
const PUSH_RATE = 1000
const ROOM_MEMBERS = 100
const PUBLICATIONS = 1000
const MISSED = 20

const here = path.dirname(fileURLToPath(import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`)
    await sleep(5)
  }
}

// ---------------------------------------------------------------------------------------------
// Nodes: forked processes answering requests.

/** A request before the id it is sent with (Omit on each member of the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never

interface Node {
  port: number
  child: ChildProcess
  ask(request: Unnumbered<Request>): Promise<any>
}

/** bench/node-process.ts in one file (packages left to node_modules): a node starts in what a Node process costs. */
async function bundleNode(): Promise<string> {
  const outfile = path.join(here, '..', '.tmp', 'bench', `node-process-${process.pid}.mjs`)
  await build({
    entryPoints: [path.join(here, 'node-process.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  })
  return outfile
}

let nextRequest = 0

function startNode(script: string, config: NodeConfig, label: string): Promise<Node> {
  const child = fork(script, [], {
    cwd: path.join(here, '..'),
    execArgv: [],
    env: { ...process.env, MPBUS_BENCH_NODE: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let exited: Error | undefined
  return new Promise((resolve, reject) => {
    child.on('message', (answer: Answer) => {
      if (answer.t === 'ready') {
        resolve({
          port: answer.port,
          child,
          ask(request) {
            if (exited) return Promise.reject(exited)
            const id = nextRequest++
            return new Promise((resolve, reject) => {
              pending.set(id, { resolve, reject })
              child.send({ ...request, id })
            })
          },
        })
        return
      }
      const waiting = pending.get(answer.id)
      pending.delete(answer.id)
      if (answer.t === 'answer') waiting?.resolve(answer.value)
      else waiting?.reject(new Error(`${label}: ${answer.error}`))
    })
    child.once('exit', (code, signal) => {
      exited = new Error(`${label} exited (${signal ?? code})`)
      reject(exited)
      for (const waiting of pending.values()) waiting.reject(exited)
      pending.clear()
    })
  })
}

async function startNodes(script: string, count: number, target: Target, prefix: string): Promise<Node[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startNode(script, { ...target.engine, prefix }, `node ${i}`)),
  )
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await stopNodes(nodes)
    const hint =
      target.kind === 'redis-cluster'
        ? ` (--engine redis-cluster passes redisEngine({ cluster: { rootNodes }, prefix }): this engine may not take \`cluster\` yet)`
        : ''
    throw new Error(`${failed.reason.message}${hint}`)
  }
  return nodes
}

async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(
    nodes.map((node) => {
      if (node.child.exitCode !== null || node.child.signalCode !== null) return undefined
      const exited = new Promise((resolve) => node.child.once('exit', resolve))
      node.child.kill('SIGTERM')
      return exited
    }),
  )
}

/** µs of CPU (user + system) each node has used so far. */
async function nodesCpu(nodes: Node[]): Promise<number[]> {
  const usage: Array<{ user: number; system: number }> = await Promise.all(
    nodes.map((node) => node.ask({ t: 'cpu' })),
  )
  return usage.map((u) => u.user + u.system)
}

// ---------------------------------------------------------------------------------------------
// Clients: raw `ws` sockets logged in as mpbus clients.

interface Pos {
  offset: number
  epoch: string
}

interface Client {
  user: string
  node: number
  ws?: WebSocket
  /** Frames with a stream position received, each counted once. */
  frames: number
  /** Frames whose position this client had already. */
  repeats: number
  resyncs: number
  seen: Set<string>
  /** The last position per stream: the login's `Streams` when it comes back. */
  at: Record<string, Pos>
}

const clientsFor = (count: number, nodes: number, first = 0): Client[] =>
  Array.from({ length: count }, (_, i) => ({
    user: `u${first + i}`,
    node: i % nodes,
    frames: 0,
    repeats: 0,
    resyncs: 0,
    seen: new Set(),
    at: {},
  }))

function login(client: Client, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    client.ws = ws
    ws.on('message', (data) => {
      const parsed = JSON.parse(String(data))
      for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
        if (frame.Operator === 'LoginOK') {
          Object.assign(client.at, frame.Streams)
          resolve()
          continue
        }
        const s = frame.Stream
        if (!s) continue
        client.at[s.name] = { offset: s.offset, epoch: s.epoch }
        if (frame.Operator === 'Resync') {
          client.resyncs++
          continue
        }
        const key = `${s.name} ${s.offset} ${s.epoch}`
        if (client.seen.has(key)) client.repeats++
        else {
          client.seen.add(key)
          client.frames++
        }
      }
    })
    ws.once('open', () => {
      const positions = Object.keys(client.at).length ? { Streams: client.at } : {}
      ws.send(JSON.stringify({ Operator: 'userLogin', user: client.user, ...positions, Batch: 1048576 }))
    })
    ws.once('error', reject)
    ws.once('close', (code) => reject(new Error(`${client.user}: closed with ${code} before LoginOK`)))
  })
}

const loginAll = (clients: Client[], nodes: Node[]) =>
  Promise.all(clients.map((c) => login(c, nodes[c.node]!.port)))

function dropAll(clients: Client[]): void {
  for (const c of clients) c.ws?.terminate()
}

const delivered = (clients: Client[]) => clients.reduce((sum, c) => sum + c.frames, 0)

// ---------------------------------------------------------------------------------------------
// The measures.

interface PushLoad {
  nodes: number
  /** Pushes that succeeded, all delivered. */
  frames: number
  /** µs of each node's CPU per frame its own clients got. */
  perNode: number[]
  /** µs of all nodes' CPU per delivered frame. */
  allNodes: number
  /** µs of each redis-server's CPU per frame (a cluster: each master). */
  redis: number[]
}

/** PUSHES pushes at PUSH_RATE, each to one random user of CLIENTS, from every node in turn. */
async function pushLoad(script: string, target: Target, count: number, prefix: string): Promise<PushLoad> {
  const info = await infoClients(target)
  const clients = clientsFor(CLIENTS, count)
  let nodes: Node[] = []
  try {
    nodes = await startNodes(script, count, target, prefix)
    await loginAll(clients, nodes)
    const cpu0 = await nodesCpu(nodes)
    const redis0 = await redisCpu(info)
    const failures: number[] = await Promise.all(
      nodes.map((node) =>
        node.ask({ t: 'push', count: PUSHES / count, perSecond: PUSH_RATE / count, users: CLIENTS }),
      ),
    )
    const frames = PUSHES - failures.reduce((a, b) => a + b, 0)
    await until(
      () => delivered(clients) >= frames,
      30_000,
      () => `${delivered(clients)} of ${frames} pushes delivered`,
    )
    const cpu1 = await nodesCpu(nodes)
    const redis1 = await redisCpu(info)
    if (target.kind === 'redis-cluster') await checkTargetUsed(target, info, prefix)
    const own = nodes.map((_, i) => delivered(clients.filter((c) => c.node === i)))
    const spent = cpu1.map((t, i) => t - cpu0[i]!)
    return {
      nodes: count,
      frames,
      perNode: spent.map((t, i) => t / own[i]!),
      allNodes: spent.reduce((a, b) => a + b, 0) / frames,
      redis: redis1.map((t, i) => (t - redis0[i]!) / frames),
    }
  } finally {
    dropAll(clients)
    await stopNodes(nodes)
    await Promise.all(info.map((c) => c.close()))
  }
}

interface RoomLoad {
  /** µs of node 0's CPU (the members' node) per publication. */
  member: number
  /** µs of node 1's CPU (none of the room's members) per publication. */
  other: number
}

async function roomLoad(script: string, target: Target, prefix: string): Promise<RoomLoad> {
  const nodes = await startNodes(script, 2, target, prefix)
  const members = clientsFor(ROOM_MEMBERS, 1)
  const others = clientsFor(ROOM_MEMBERS, 1, ROOM_MEMBERS).map((c) => ({ ...c, node: 1 }))
  try {
    await nodes[0]!.ask({ t: 'join', room: 'quotes', users: members.map((c) => c.user) })
    await loginAll(members.concat(others), nodes)
    const cpu0 = await nodesCpu(nodes)
    const failed: number = await nodes[0]!.ask({
      t: 'publish',
      room: 'quotes',
      count: PUBLICATIONS,
      perSecond: PUBLICATIONS,
    })
    if (failed) throw new Error(`${failed} of ${PUBLICATIONS} publications failed`)
    await until(
      () => delivered(members) >= ROOM_MEMBERS * PUBLICATIONS,
      30_000,
      () => `${delivered(members)} of ${ROOM_MEMBERS * PUBLICATIONS} room frames delivered`,
    )
    const cpu1 = await nodesCpu(nodes)
    return {
      member: (cpu1[0]! - cpu0[0]!) / PUBLICATIONS,
      other: (cpu1[1]! - cpu0[1]!) / PUBLICATIONS,
    }
  } finally {
    dropAll(members.concat(others))
    await stopNodes(nodes)
  }
}

interface Reconnect {
  recovered: number
  missing: number
  twice: number
  resyncs: number
  topLevel: number
  scriptCalls: number
  commandstats: number
  byName: Map<string, number>
  ms: number
}

async function massReconnect(script: string, target: Target, prefix: string): Promise<Reconnect> {
  const info = await infoClients(target)
  const clients = clientsFor(CLIENTS, 2)
  const monitors = target.urls.map(monitor)
  let nodes: Node[] = []
  try {
    nodes = await startNodes(script, 2, target, prefix)
    await Promise.all(monitors.map((m) => m.ready))
    await nodes[0]!.ask({ t: 'join', room: 'all', users: clients.map((c) => c.user) })
    await loginAll(clients, nodes)
    dropAll(clients)
    const users = clients.map((c) => c.user)
    // Every node must have seen its connections close before the publications they are to miss.
    const deadline = Date.now() + 30_000
    for (;;) {
      const left: number[] = await Promise.all(nodes.map((node) => node.ask({ t: 'connections', users })))
      if (left.every((n) => n === 0)) break
      if (Date.now() > deadline) throw new Error(`nodes still serve ${left.join(' + ')} dropped connections`)
      await sleep(20)
    }
    const failed: number = await nodes[0]!.ask({ t: 'publish', room: 'all', count: MISSED, perSecond: 1000 })
    if (failed) throw new Error(`${failed} of ${MISSED} publications failed`)
    for (const c of clients) {
      c.frames = 0
      c.repeats = 0
      c.resyncs = 0
      c.seen.clear()
    }
    const calls0 = await commandCalls(info)
    await Promise.all(info.map((c) => c.sendCommand(['ECHO', 'mpbus-bench-start'])))
    const start = performance.now()
    await loginAll(clients, nodes)
    // A client that misses some for a minute is counted as missing them, not waited for.
    await until(
      () => clients.every((c) => c.frames >= MISSED || c.resyncs > 0),
      60_000,
      () => '',
    ).catch(() => {})
    const ms = performance.now() - start
    await Promise.all(info.map((c) => c.sendCommand(['ECHO', 'mpbus-bench-end'])))
    const calls1 = await commandCalls(info)
    await until(
      () => monitors.every((m) => m.ended()),
      10_000,
      () => 'MONITOR saw no end marker',
    )
    const byName = new Map<string, number>()
    for (const m of monitors)
      for (const [name, n] of m.counts.byName) byName.set(name, (byName.get(name) || 0) + n)
    return {
      recovered: delivered(clients),
      missing: clients.filter((c) => c.frames !== MISSED).length,
      twice: clients.reduce((sum, c) => sum + c.repeats, 0),
      resyncs: clients.reduce((sum, c) => sum + c.resyncs, 0),
      topLevel: monitors.reduce((sum, m) => sum + m.counts.top, 0),
      scriptCalls: monitors.reduce((sum, m) => sum + m.counts.lua, 0),
      commandstats: calls1 - calls0,
      byName,
      ms,
    }
  } finally {
    for (const m of monitors) m.close()
    dropAll(clients)
    await stopNodes(nodes)
    await Promise.all(info.map((c) => c.close()))
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

const spread = (values: number[], digits = 2) => {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  return lo.toFixed(digits) === hi.toFixed(digits)
    ? lo.toFixed(digits)
    : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`
}

function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] || '').length)))
  const line = (r: string[]) => `  ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')}`.trimEnd()
  return [
    line(cells[0]!),
    `  ${widths.map((w) => '-'.repeat(w)).join('-|-')}`,
    ...cells.slice(1).map(line),
  ].join('\n')
}

const us = (n: number) => n.toFixed(0)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** The figures each print gives back: what `npm run bench` shows as JSON. */
type Summary = Record<string, string | number>

function printScaling(runs: PushLoad[][], engine: Target['kind']): Summary {
  const rows: Array<Array<string | number>> = []
  for (const [r, loads] of runs.entries())
    for (const load of loads)
      rows.push([
        r + 1,
        load.nodes,
        load.frames,
        load.perNode.map(us).join(' / '),
        us(load.allNodes),
        us(sum(load.redis)),
        (load.allNodes / loads[0]!.allNodes).toFixed(2),
      ])
  console.log(
    `\n1. scaling: ${CLIENTS} clients, ${PUSHES} pushes to one random user each at ~${PUSH_RATE}/s, issued by every node in turn`,
  )
  console.log(
    table(
      [
        'run',
        'nodes',
        'frames',
        'each node µs/frame it delivered',
        'all nodes µs/frame',
        engine === 'redis' ? 'Redis µs/frame' : 'Redis µs/frame (all masters)',
        'all(N)/all(1)',
      ],
      rows,
    ),
  )
  const summary: Summary = {}
  const counts = runs[0]!.map((l) => l.nodes)
  for (const [i, n] of counts.entries()) {
    if (n === 1) continue
    const ratios = runs.map((loads) => loads[i]!.allNodes / loads[0]!.allNodes)
    const redis = runs.map((loads) => sum(loads[i]!.redis) / sum(loads[0]!.redis))
    console.log(
      `  ${n} nodes: all nodes' CPU per frame ${spread(ratios)}× one node's${n === 4 ? ' (target ≤ 1.2×)' : ''}; Redis's ${spread(redis)}×`,
    )
    summary[`allNodesCpuPerFrame${n}OfOne`] = spread(ratios)
    summary[`redisCpuPerFrame${n}OfOne`] = spread(redis)
  }
  return summary
}

function printRoom(runs: RoomLoad[]): Summary {
  console.log(
    `\n2. room: ${PUBLICATIONS} publications by node 0 to a room of ${ROOM_MEMBERS} members, all on node 0; node 1 serves ${ROOM_MEMBERS} other users`,
  )
  console.log(
    table(
      ['run', 'node 0 (members) µs/publication', 'node 1 (none) µs/publication', 'node 1 / node 0'],
      runs.map((r, i) => [i + 1, us(r.member), us(r.other), `${((r.other / r.member) * 100).toFixed(1)}%`]),
    ),
  )
  const percent = spread(
    runs.map((r) => (r.other / r.member) * 100),
    1,
  )
  console.log(`  non-member node: ${percent}% of the member node's CPU per publication (target ≤ 5%)`)
  return { nonMemberCpuPercentOfMember: percent }
}

function printCluster(runs: Array<{ single: PushLoad; cluster: PushLoad }>): Summary {
  console.log(
    `\n3. cluster: the load of 1 at 2 nodes, on one redis-server and on a Redis Cluster of 3 masters (same run)`,
  )
  console.log(
    table(
      ['run', 'one redis µs/push', 'masters µs/push', 'busiest / one', 'nodes µs/frame: one redis / cluster'],
      runs.map((r, i) => [
        i + 1,
        us(r.single.redis[0]!),
        r.cluster.redis.map(us).join(' / '),
        (Math.max(...r.cluster.redis) / r.single.redis[0]!).toFixed(2),
        `${us(r.single.allNodes)} / ${us(r.cluster.allNodes)}`,
      ]),
    ),
  )
  const busiest = spread(runs.map((r) => Math.max(...r.cluster.redis) / r.single.redis[0]!))
  console.log(`  busiest master: ${busiest}× one redis-server's CPU per push (target ≤ 0.5×)`)
  return { busiestMasterCpuPerPushOfOneRedis: busiest }
}

function printReconnect(runs: Reconnect[]): Summary {
  console.log(
    `\n4. reconnect: ${CLIENTS} clients of one room on 2 nodes, all dropped, ${MISSED} publications missed, all resume`,
  )
  console.log(
    table(
      [
        'run',
        'recovered',
        'missing some',
        'twice',
        'resync',
        'ms',
        '(a) top-level/frame',
        '(b) all/frame',
        'MONITOR all',
        'top-level by name',
      ],
      runs.map((r, i) => [
        i + 1,
        r.recovered,
        r.missing,
        r.twice,
        r.resyncs,
        us(r.ms),
        (r.topLevel / r.recovered).toFixed(3),
        (r.commandstats / r.recovered).toFixed(3),
        r.topLevel + r.scriptCalls,
        Array.from(r.byName)
          .sort((a, b) => b[1] - a[1])
          .map(([name, n]) => `${name} ${n}`)
          .join(', '),
      ]),
    ),
  )
  const summary: Summary = {
    topLevelCommandsPerRecoveredFrame: spread(
      runs.map((r) => r.topLevel / r.recovered),
      3,
    ),
    allCommandsPerRecoveredFrame: spread(
      runs.map((r) => r.commandstats / r.recovered),
      3,
    ),
    clientsMissingSome: Math.max(...runs.map((r) => r.missing)),
    framesTwice: Math.max(...runs.map((r) => r.twice)),
  }
  console.log(
    `  Redis commands per recovered frame: (a) ${summary.topLevelCommandsPerRecoveredFrame} sent by the nodes, (b) ${summary.allCommandsPerRecoveredFrame} with what scripts call (target ≤ 0.1); clients missing some: ${summary.clientsMissingSome}, frames twice: ${summary.framesTwice}`,
  )
  return summary
}

// ---------------------------------------------------------------------------------------------

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}

const has = (command: string, args: string[]) => !spawnSync(command, args, { stdio: 'ignore' }).error

export async function benchNodes(): Promise<Record<string, unknown>> {
  const engine = (flag('engine') || 'redis') as Target['kind']
  const runs = Number(flag('runs') || 3)
  const only = flag('only')
  if (engine !== 'redis' && engine !== 'redis-cluster')
    throw new Error(`--engine redis|redis-cluster: ${engine}`)
  if (only && !['scaling', 'room', 'cluster', 'reconnect'].includes(only))
    throw new Error(`--only scaling|room|cluster|reconnect: ${only}`)
  if (!(Number.isInteger(runs) && runs > 0))
    throw new Error(`--runs must be a whole number > 0: ${flag('runs')}`)
  if (!has(process.env.REDIS_SERVER || 'redis-server', ['--version'])) {
    const why = 'bench/nodes.ts skipped: redis-server is not installed (apt-get install redis-server)'
    console.log(why)
    return { skipped: why }
  }
  if (engine === 'redis-cluster' && !has(process.env.REDIS_CLI || 'redis-cli', ['--version'])) {
    const why = 'bench/nodes.ts skipped: --engine redis-cluster needs redis-cli (apt-get install redis-tools)'
    console.log(why)
    return { skipped: why }
  }
  const want = (name: string) => !only || only === name
  if (only === 'cluster' && engine !== 'redis-cluster') {
    const why = 'bench/nodes.ts: the cluster measure runs with --engine redis-cluster only'
    console.log(why)
    return { skipped: why }
  }
  const version = String(spawnSync(process.env.REDIS_SERVER || 'redis-server', ['--version']).stdout).trim()
  console.log(
    `mpbus/server on several nodes, engine ${engine === 'redis' ? 'one redis-server' : 'a Redis Cluster of 3 masters'}; ${runs} runs; ${version.split(' sha=')[0]}; node ${process.version}; ${new Date().toISOString().slice(0, 16)}Z`,
  )

  const script = await bundleNode()
  const target = await startTarget(engine)
  const single = engine === 'redis-cluster' && want('cluster') ? await startTarget('redis') : undefined
  const scaling: PushLoad[][] = []
  const rooms: RoomLoad[] = []
  const clusters: Array<{ single: PushLoad; cluster: PushLoad }> = []
  const reconnects: Reconnect[] = []
  try {
    for (let run = 0; run < runs; run++) {
      const prefix = (what: string) => `bench-nodes-${process.pid}-${run}-${what}`
      if (want('scaling')) {
        const loads: PushLoad[] = []
        for (const n of [1, 2, 4]) loads.push(await pushLoad(script, target, n, prefix(`push${n}`)))
        scaling.push(loads)
        process.stderr.write(`run ${run + 1}: scaling done\n`)
      }
      if (want('room')) {
        rooms.push(await roomLoad(script, target, prefix('room')))
        process.stderr.write(`run ${run + 1}: room done\n`)
      }
      if (single) {
        clusters.push({
          single: await pushLoad(script, single, 2, prefix('single')),
          cluster: await pushLoad(script, target, 2, prefix('cluster')),
        })
        process.stderr.write(`run ${run + 1}: cluster done\n`)
      }
      if (want('reconnect')) {
        reconnects.push(await massReconnect(script, target, prefix('reconnect')))
        process.stderr.write(`run ${run + 1}: reconnect done\n`)
      }
    }
  } finally {
    await target.stop()
    await single?.stop()
    fs.rmSync(script, { force: true })
  }
  return {
    engine,
    runs,
    scaling: scaling.length ? printScaling(scaling, engine) : undefined,
    room: rooms.length ? printRoom(rooms) : undefined,
    cluster: clusters.length ? printCluster(clusters) : undefined,
    reconnect: reconnects.length ? printReconnect(reconnects) : undefined,
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  benchNodes().then(
    () => process.exit(0),
    (error) => {
      console.error(`bench/nodes.ts failed: ${error && error.message ? error.message : error}`)
      process.exit(1)
    },
  )
}

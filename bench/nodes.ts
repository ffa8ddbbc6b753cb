/**
 * How `mpbus/server` scales over several nodes on Redis. Each node is its own process
 * (bench/node-process.ts, forked by bench/node-pool.ts), so its CPU time is its own
 * (`process.cpuUsage()`); Redis's is `INFO cpu` (used_cpu_sys + used_cpu_user) of each
 * redis-server (bench/redis-meter.ts). The clients are raw `ws` sockets in this process
 * (bench/ws-clients.ts), spread round-robin over the nodes, each logged in as its own user. Nodes
 * run without pings. Every figure is a ratio within one run; each run starts its own nodes on its
 * own key prefix, and the spread is min–max over the runs.
 *
 * 1. scaling (bench/nodes-scaling.ts): 1,000 clients; `server.push(user, 'Tick', {k})`, each to
 *    ONE random user, at 1, 2 and 4 nodes: each node's CPU per frame its own clients got, all
 *    nodes' CPU per delivered frame, Redis's CPU per frame, all(N)/all(1) (all nodes' CPU per
 *    frame at N over that at 1), and, measured in the same run at the same rate per node, the
 *    same nodes on Redis each pushing only to its own users (own) and on the memory engine (the
 *    floor: N servers sharing nothing). Two loads: a fixed total (5,000 pushes at 1,000/s in
 *    all; target: all(4)/all(1) ≤ 1.2×) and capacity (5,000 pushes at 1,000/s from each node).
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
 * (or `npm run bench -- nodes`); the default takes about six minutes on 2 cores.
 * `--engine redis-cluster` runs the nodes on `startRedisCluster({ masters: 3 })` through the
 * engine's `cluster` option, `redisEngine({ cluster: { rootNodes }, prefix })`.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import { pathToFileURL } from 'node:url'
import { bundleNode, type Node, nodesCpu, startNodes, stopNodes } from './node-pool'
import {
  CLIENTS,
  fixedTotal,
  type Load,
  type PushLoad,
  printScaling,
  pushLoad,
  type Scaling,
  scalingRun,
} from './nodes-scaling'
import { commandCalls, infoClients, monitor, onRedis, startTarget, type Target } from './redis-meter'
import { type Summary, spread, table, us } from './text-table'
import { sleep, until } from './wait'
import { clientsFor, delivered, dropAll, loginAll } from './ws-clients'

const ROOM_MEMBERS = 100
const PUBLICATIONS = 1000
const MISSED = 20

// ---------------------------------------------------------------------------------------------
// The measures.

interface RoomLoad {
  /** µs of node 0's CPU (the members' node) per publication. */
  member: number
  /** µs of node 1's CPU (none of the room's members) per publication. */
  other: number
}

async function roomLoad(script: string, target: Target, prefix: string): Promise<RoomLoad> {
  const nodes = await startNodes(script, 2, onRedis(target, prefix))
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
    nodes = await startNodes(script, 2, onRedis(target, prefix))
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

/** A third of `load`: what each of 3 masters carries. */
const thirdOf = (load: Load): Load => ({
  pushes: Math.round(load.pushes / 3),
  perSecond: load.perSecond / 3,
})

function printCluster(runs: Array<{ single: PushLoad; third: PushLoad; cluster: PushLoad }>): Summary {
  console.log(
    `\n3. cluster: the load of 1 at 2 nodes, on one redis-server and on a Redis Cluster of 3 masters (same run)`,
  )
  console.log(
    table(
      [
        'run',
        'one redis µs/push',
        'one redis at a third of the rate',
        'masters µs/push',
        'busiest / one',
        'nodes µs/frame: one redis / cluster',
      ],
      runs.map((r, i) => [
        i + 1,
        us(r.single.redis[0]!),
        us(r.third.redis[0]!),
        r.cluster.redis.map(us).join(' / '),
        (Math.max(...r.cluster.redis) / r.single.redis[0]!).toFixed(2),
        `${us(r.single.allNodes)} / ${us(r.cluster.allNodes)}`,
      ]),
    ),
  )
  const busiest = spread(runs.map((r) => Math.max(...r.cluster.redis) / r.single.redis[0]!))
  console.log(`  busiest master: ${busiest}× one redis-server's CPU per push (target ≤ 0.5×)`)
  // Each master carries about a third of the pushes: what one Redis spends per push at that rate.
  const third = spread(runs.map((r) => r.third.redis[0]! / r.single.redis[0]!))
  console.log(`  one redis-server at a third of the rate: ${third}× its CPU per push at the full rate`)
  return { busiestMasterCpuPerPushOfOneRedis: busiest, oneRedisAtAThirdOfTheRate: third }
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
  const scaling: Scaling[] = []
  const rooms: RoomLoad[] = []
  const clusters: Array<{ single: PushLoad; third: PushLoad; cluster: PushLoad }> = []
  const reconnects: Reconnect[] = []
  try {
    for (let run = 0; run < runs; run++) {
      const prefix = (what: string) => `bench-nodes-${process.pid}-${run}-${what}`
      if (want('scaling')) {
        scaling.push(await scalingRun(script, target, prefix))
        process.stderr.write(`run ${run + 1}: scaling done\n`)
      }
      if (want('room')) {
        rooms.push(await roomLoad(script, target, prefix('room')))
        process.stderr.write(`run ${run + 1}: room done\n`)
      }
      if (single) {
        clusters.push({
          single: await pushLoad(script, single, 2, fixedTotal(2), 'any', prefix('single')),
          third: await pushLoad(script, single, 2, thirdOf(fixedTotal(2)), 'any', prefix('third')),
          cluster: await pushLoad(script, target, 2, fixedTotal(2), 'any', prefix('cluster')),
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

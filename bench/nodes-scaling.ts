/**
 * Measure 1 of bench/nodes.ts, scaling: what a pushed frame costs the nodes at 1, 2 and 4 nodes.
 * 1,000 clients, spread round-robin over the nodes; every node pushes `Tick` frames, each to ONE
 * user picked at random, at a steady rate (in bursts every 10 ms or more). Two loads:
 *
 * - fixed total: 5,000 pushes at 1,000 a second in all, shared by the nodes (1,000/N a second
 *   from each).
 * - capacity: the load per node held: 5,000 pushes at 1,000 a second from EACH node (1 node
 *   1,000/s, 2 nodes 2,000/s, 4 nodes 4,000/s in all).
 *
 * A node's CPU per frame depends on its own rate: at a lower rate fewer frames share each
 * event-loop wakeup, socket read and write (and on a small machine N node processes take turns
 * on its cores). So each load is measured three ways, one right after the other in the same run:
 *
 * - all: on Redis, each push to any of the 1,000 users: a node mostly pushes to users of other
 *   nodes, and its own users get frames other nodes pushed.
 * - own: on Redis, each node pushing to its own users only: the same rate per node, the same
 *   Redis work per frame, nothing crossing between nodes. all(N)/own(N) is what frames that
 *   cross between nodes cost.
 * - floor: as many nodes on the memory engine, each pushing to its own users at the same rate:
 *   N independent single-node servers, no Redis at all. all(N)/floor(N) is the cost of sharing
 *   through Redis at that rate (the Redis engine's own cost included: all(1)/floor(1)).
 *
 * all(N)/all(1), the target's figure (4 nodes ≤ 1.2× at the fixed total), mixes both with the
 * rate per node.
 */

import { type Node, nodesCpu, startNodes, stopNodes } from './node-pool'
import type { NodeConfig } from './node-process'
import { checkTargetUsed, infoClients, onRedis, redisCpu, type Target } from './redis-meter'
import { type Summary, spread, sum, table, us } from './text-table'
import { until } from './wait'
import { clientsFor, delivered, dropAll, loginAll } from './ws-clients'

export const CLIENTS = 1000
const PUSHES = 5000
const PUSH_RATE = 1000
const NODES = [1, 2, 4]

/** Each node's share: `pushes` pushes at `perSecond` a second. */
export interface Load {
  pushes: number
  perSecond: number
}

/** The fixed total at `nodes` nodes: PUSHES at PUSH_RATE in all. */
export const fixedTotal = (nodes: number): Load => ({ pushes: PUSHES / nodes, perSecond: PUSH_RATE / nodes })
/** The load per node of one node, at any number of nodes. */
const heldPerNode: Load = { pushes: PUSHES, perSecond: PUSH_RATE }

export interface PushLoad {
  nodes: number
  /** Pushes that succeeded, all delivered. */
  frames: number
  /** µs of each node's CPU per frame its own clients got. */
  perNode: number[]
  /** µs of all nodes' CPU per delivered frame. */
  allNodes: number
  /** µs of each redis-server's CPU per frame (a cluster: each master); none on the memory engine. */
  redis: number[]
}

/**
 * `load` from each of `count` nodes (on Redis, a `Target`, or on the memory engine) to CLIENTS
 * users: each push to any of them, or to one of the pushing node's own users (on the memory
 * engine, where a node reaches its own connections only, the one choice).
 */
export async function pushLoad(
  script: string,
  on: Target | 'memory',
  count: number,
  load: Load,
  to: 'any' | 'own',
  prefix: string,
): Promise<PushLoad> {
  if (on === 'memory' && to === 'any' && count > 1)
    throw new Error('on the memory engine a node pushes to its own users only')
  const info = on === 'memory' ? [] : await infoClients(on)
  const clients = clientsFor(CLIENTS, count)
  const config: NodeConfig = on === 'memory' ? { engine: 'memory' } : onRedis(on, prefix)
  const usersOf = (node: number) => clients.filter((c) => to === 'any' || c.node === node).map((c) => c.user)
  let nodes: Node[] = []
  try {
    nodes = await startNodes(script, count, config)
    await loginAll(clients, nodes)
    const cpu0 = await nodesCpu(nodes)
    const redis0 = await redisCpu(info)
    const failures: number[] = await Promise.all(
      nodes.map((node, i) =>
        node.ask({ t: 'push', count: load.pushes, perSecond: load.perSecond, users: usersOf(i) }),
      ),
    )
    const frames = load.pushes * count - sum(failures)
    await until(
      () => delivered(clients) >= frames,
      30_000,
      () => `${delivered(clients)} of ${frames} pushes delivered`,
    )
    const cpu1 = await nodesCpu(nodes)
    const redis1 = await redisCpu(info)
    if (on !== 'memory' && on.kind === 'redis-cluster') await checkTargetUsed(on, info, prefix)
    const own = nodes.map((_, i) => delivered(clients.filter((c) => c.node === i)))
    const spent = cpu1.map((t, i) => t - cpu0[i]!)
    return {
      nodes: count,
      frames,
      perNode: spent.map((t, i) => t / own[i]!),
      allNodes: sum(spent) / frames,
      redis: redis1.map((t, i) => (t - redis0[i]!) / frames),
    }
  } finally {
    dropAll(clients)
    await stopNodes(nodes)
    await Promise.all(info.map((c) => c.close()))
  }
}

/** One load at N nodes, three ways, one after the other in the same run. */
interface Compared {
  load: Load
  /** On Redis, each push to any user: mostly one of another node. */
  shared: PushLoad
  /** On Redis, each node pushing to its own users only: nothing a node does not serve. */
  own: PushLoad
  /** The floor: on the memory engine, each node pushing to its own users: N servers sharing nothing. */
  floor: PushLoad
}

/** One run of measure 1: by number of nodes (NODES). */
export interface Scaling {
  fixedTotal: Compared[]
  capacity: Compared[]
}

export async function scalingRun(
  script: string,
  target: Target,
  prefix: (what: string) => string,
): Promise<Scaling> {
  const compared = async (n: number, load: Load, what: string): Promise<Compared> => {
    const shared = await pushLoad(script, target, n, load, 'any', prefix(`${what}${n}`))
    return {
      load,
      shared,
      // At one node every user is the node's own: the same load as `shared`, measured once.
      own: n === 1 ? shared : await pushLoad(script, target, n, load, 'own', prefix(`${what}${n}own`)),
      floor: await pushLoad(script, 'memory', n, load, 'own', ''),
    }
  }
  const run: Scaling = { fixedTotal: [], capacity: [] }
  for (const n of NODES) {
    const total = await compared(n, fixedTotal(n), 'push')
    run.fixedTotal.push(total)
    // At one node both loads are the same: measured once.
    run.capacity.push(n === 1 ? total : await compared(n, heldPerNode, 'capacity'))
  }
  return run
}

function printLoads(title: string, name: string, runs: Compared[][], engine: Target['kind']): Summary {
  const rows: Array<Array<string | number>> = []
  for (const [r, loads] of runs.entries()) {
    const one = loads[0]!
    for (const { load, shared, own, floor } of loads)
      rows.push([
        r + 1,
        shared.nodes,
        load.perSecond,
        shared.frames,
        shared.perNode.map(us).join(' / '),
        us(shared.allNodes),
        us(sum(shared.redis)),
        us(own.allNodes),
        us(floor.allNodes),
        (shared.allNodes / one.shared.allNodes).toFixed(2),
        (shared.allNodes / own.allNodes).toFixed(2),
        (shared.allNodes / floor.allNodes).toFixed(2),
        (floor.allNodes / one.floor.allNodes).toFixed(2),
      ])
  }
  console.log(`\n${title}`)
  console.log(
    table(
      [
        'run',
        'nodes',
        'pushes/s per node',
        'frames',
        'each node µs/frame it delivered',
        'all nodes µs/frame',
        engine === 'redis' ? 'Redis µs/frame' : 'Redis µs/frame (all masters)',
        'own µs/frame',
        'floor µs/frame',
        'all(N)/all(1)',
        'all(N)/own(N)',
        'all(N)/floor(N)',
        'floor(N)/floor(1)',
      ],
      rows,
    ),
  )
  const summary: Summary = {}
  const ratios = (i: number, of: (at: Compared, one: Compared) => number) =>
    spread(runs.map((loads) => of(loads[i]!, loads[0]!)))
  for (const [i, n] of runs[0]!.map((c) => c.shared.nodes).entries()) {
    const ofFloor = ratios(i, (at) => at.shared.allNodes / at.floor.allNodes)
    summary[`${name}AllNodes${n}OfFloor`] = ofFloor
    if (n === 1) {
      console.log(`  1 node: all(1)/floor(1) ${ofFloor} (the Redis engine over the memory engine)`)
      continue
    }
    const ofOne = ratios(i, (at, one) => at.shared.allNodes / one.shared.allNodes)
    const ofOwn = ratios(i, (at) => at.shared.allNodes / at.own.allNodes)
    const floorOfOne = ratios(i, (at, one) => at.floor.allNodes / one.floor.allNodes)
    const redis = ratios(i, (at, one) => sum(at.shared.redis) / sum(one.shared.redis))
    console.log(
      `  ${n} nodes: all(N)/all(1) ${ofOne}; all(N)/own(N) ${ofOwn}; all(N)/floor(N) ${ofFloor}; floor(N)/floor(1) ${floorOfOne}; Redis per frame ${redis}× at one node`,
    )
    summary[`${name}AllNodes${n}OfOne`] = ofOne
    summary[`${name}AllNodes${n}OfOwn`] = ofOwn
    summary[`${name}Floor${n}OfOne`] = floorOfOne
    summary[`${name}Redis${n}OfOne`] = redis
  }
  return summary
}

export function printScaling(runs: Scaling[], engine: Target['kind']): Summary {
  const legend = [
    '  all: the nodes on Redis, each push to a random one of all users (mostly of another node)',
    '  own: the same on Redis, each node pushing to its own users only (nothing crosses between nodes)',
    '  floor: the same nodes on the memory engine, each pushing to its own users (N servers sharing nothing)',
  ].join('\n')
  const fixed = printLoads(
    `1. scaling, fixed total (target: all(4)/all(1) ≤ 1.2×): ${CLIENTS} clients, ${PUSHES} pushes at ${PUSH_RATE}/s in all, shared by the nodes\n${legend}`,
    'fixedTotal',
    runs.map((r) => r.fixedTotal),
    engine,
  )
  const capacity = printLoads(
    `1. scaling, capacity: ${CLIENTS} clients, ${PUSHES} pushes at ${PUSH_RATE}/s from EACH node; all, own, floor as above`,
    'capacity',
    runs.map((r) => r.capacity),
    engine,
  )
  return { ...fixed, ...capacity }
}

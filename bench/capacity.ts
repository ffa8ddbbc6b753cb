/**
 * What one `mpbus/server` node holds: the figures a capacity plan is sized from. Three servers,
 * each a process of its own (bench/capacity-node.ts, forked with `--expose-gc`): mpbus on the
 * memory engine, mpbus on the Redis engine (a real redis-server per run), and, as the peer, a bare
 * `ws` WebSocketServer answering every text frame with one text frame. Each has its clients in a
 * process of their own (bench/capacity-clients.ts): raw `ws` sockets that log in
 * (`{"Operator":"userLogin","openId":"u<i>"}`, answered `LoginOK`; the bare server answers any
 * frame) and stay idle. The three are measured side by side, in the same windows, so that the
 * load others put on a shared machine weighs on them alike. Servers run without pings.
 *
 * 1. memory per connection: the server's `heapUsed + external` after forced full GCs, with N
 *    clients logged in minus with none, over N, at N/2 and N. `external` already includes
 *    `arrayBuffers` (Node's `process.memoryUsage()` docs), so it is not added again. RSS the
 *    same way. The kernel's socket buffers are in neither.
 * 2. CPU: the servers' CPU time (`process.cpuUsage()`) over wall time, as a % of one core, scaled
 *    to 10,000 connections: over a few seconds idle, then over ~20 s while the N clients each send
 *    the client's heartbeat frame `{"Operator":"Heart"}` every 25 s (the bus's default interval,
 *    src/bus/options.ts), spread evenly (N/25 frames a second), each answered (`HeartOK`). A
 *    server with pings on (the default, every 30 s) spends more: one ping per connection per
 *    interval.
 * 3. Redis memory per user: `INFO memory` used_memory with N users logged in minus with none
 *    (each user's stream subscribed by the node), and again once each user was pushed one frame
 *    (`server.push('u<i>', 'Tick', {k})`: a stream key with a 1-frame history), over N. Redis
 *    (6.2 and later) gives a stream's first node room for `stream-node-max-bytes` (4096 by
 *    default) at its first entry (https://github.com/redis/redis/pull/6281), so a short history
 *    costs about that: `MEMORY USAGE` of sampled keys by type shows it.
 *
 * Every ratio is within one run; the spread is min–max over the runs.
 *
 * `npx tsx bench/capacity.ts [--connections 10000] [--runs 3]` (or `npm run bench -- capacity`);
 * the default takes about 2 minutes on 2 cores. N is lowered when it does not fit the open-file
 * limit (`ulimit -n`): a server holds N sockets, its clients' process N more.
 */
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { createClient } from 'redis'
import { startRedisServer } from '../src/testing/index'
import type { ClientsConfig, ClientsRequest, Counts } from './capacity-clients'
import type { CapacityConfig, CapacityRequest } from './capacity-node'
import { type Child, startChild, type Unnumbered } from './child'
import { table } from './text-table'

/** The bus's default heartbeat interval (src/bus/options.ts). */
const HEARTBEAT_INTERVAL = 25_000
const CPU_WINDOW = 20_000
/** The same N connections without heartbeats first: what a server spends holding them. */
const IDLE_WINDOW = 3000
/** Heartbeats run this long before the window opens. */
const WARM_UP = 1000
/** Descriptors a process needs beside the sockets measured. */
const SPARE_FDS = 200

const here = path.dirname(fileURLToPath(import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

// ---------------------------------------------------------------------------------------------
// Servers and their clients: forked processes answering requests.

/** capacity-node.ts and capacity-clients.ts, each in one file (packages left to node_modules). */
async function bundle(): Promise<{ node: string; clients: string }> {
  const outdir = path.join(here, '..', '.tmp', 'bench', `capacity-${process.pid}`)
  await build({
    entryPoints: [path.join(here, 'capacity-node.ts'), path.join(here, 'capacity-clients.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outdir,
    outExtension: { '.js': '.mjs' },
    logLevel: 'warning',
  })
  return { node: path.join(outdir, 'capacity-node.mjs'), clients: path.join(outdir, 'capacity-clients.mjs') }
}

/** SIGKILL: a bench process keeps nothing, and closing 10,000 connections in order takes seconds. */
async function kill(children: Array<Child<unknown>>): Promise<void> {
  await Promise.all(
    children.map(({ child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return undefined
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGKILL')
      return exited
    }),
  )
}

// ---------------------------------------------------------------------------------------------
// One run: the three servers side by side.

type Kind = CapacityConfig['kind']

interface Memory {
  connections: number
  /** heapUsed + external over the empty server, per connection. */
  heap: number
  rss: number
}

interface KindResult {
  memory: Memory[]
  /** CPU % of one core at N connections: idle, then with heartbeats. */
  idlePercent: number
  cpuPercent: number
  /** Heartbeats sent in the window, and answers received. */
  heartbeats: number
  answered: number
}

interface RedisResult {
  /** used_memory per user at each step. */
  loggedIn: number[]
  keysLoggedIn: number
  pushed: number
  keysPerUser: number
  pushFailed: number
  /** MEMORY USAGE of a sample of keys, averaged by TYPE. */
  byType: Record<string, number>
}

type Run = Partial<Record<Kind, KindResult>> & { redisMemory?: RedisResult }

interface RedisInfo {
  sendCommand(args: string[]): Promise<unknown>
  close(): Promise<unknown>
}

const heapOf = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external
const cpuOf = (u: NodeJS.CpuUsage) => u.user + u.system

async function usedMemory(redis: RedisInfo): Promise<number> {
  const info = String(await redis.sendCommand(['INFO', 'memory']))
  return Number((/used_memory:(\d+)/.exec(info) || [])[1])
}

/** MEMORY USAGE of random keys, averaged by TYPE. */
async function sampleKeys(redis: RedisInfo, samples = 200): Promise<Record<string, number>> {
  const bytes: Record<string, number[]> = {}
  for (let i = 0; i < samples; i++) {
    const key = await redis.sendCommand(['RANDOMKEY'])
    if (typeof key !== 'string') break
    const type = String(await redis.sendCommand(['TYPE', key]))
    const usage = Number(await redis.sendCommand(['MEMORY', 'USAGE', key, 'SAMPLES', '0']))
    bytes[type] = [...(bytes[type] || []), usage]
  }
  return Object.fromEntries(
    Object.entries(bytes).map(([type, all]) => [type, all.reduce((a, b) => a + b, 0) / all.length]),
  )
}

async function measureRun(
  scripts: { node: string; clients: string },
  kinds: Kind[],
  steps: number[],
  prefix: string,
): Promise<Run> {
  const redisServer = kinds.includes('redis') ? await startRedisServer() : undefined
  const started: Array<Child<unknown>> = []
  let redis: RedisInfo | undefined
  try {
    const servers: Array<Child<CapacityRequest>> = []
    const clients: Array<Child<ClientsRequest>> = []
    for (const kind of kinds) {
      const config: CapacityConfig = { kind, url: redisServer?.url, prefix }
      const server = await startChild<CapacityRequest>(
        scripts.node,
        'MPBUS_BENCH_CAPACITY',
        config,
        `${kind} server`,
        ['--expose-gc'],
      )
      started.push(server)
      servers.push(server)
      const theirs: ClientsConfig = { port: server.port, bare: kind === 'bare' }
      const client = await startChild<ClientsRequest>(
        scripts.clients,
        'MPBUS_BENCH_CLIENTS',
        theirs,
        `${kind} server's clients`,
      )
      started.push(client)
      clients.push(client)
    }
    if (redisServer) {
      const client = createClient({ url: redisServer.url })
      client.on('error', () => {})
      await client.connect()
      redis = client as RedisInfo
    }
    const all = <T>(children: Array<Child<T>>, request: Unnumbered<T>) =>
      Promise.all(children.map((child) => child.ask(request)))

    const empty: NodeJS.MemoryUsage[] = await all(servers, { t: 'memory' })
    const redisEmpty = redis ? await usedMemory(redis) : 0
    const memory: Memory[][] = kinds.map(() => [])
    const redisLoggedIn: number[] = []
    for (const n of steps) {
      await all(clients, { t: 'fill', count: n })
      const now: NodeJS.MemoryUsage[] = await all(servers, { t: 'memory' })
      for (const [k, m] of now.entries())
        memory[k]!.push({
          connections: n,
          heap: (heapOf(m) - heapOf(empty[k]!)) / n,
          rss: (m.rss - empty[k]!.rss) / n,
        })
      if (redis) redisLoggedIn.push(((await usedMemory(redis)) - redisEmpty) / n)
    }
    const n = steps[steps.length - 1]!

    /** Each server's CPU % over `ms` from now. */
    const cpuOver = async (ms: number) => {
      const from: NodeJS.CpuUsage[] = await all(servers, { t: 'cpu' })
      const wall = performance.now()
      await sleep(ms)
      const to: NodeJS.CpuUsage[] = await all(servers, { t: 'cpu' })
      const elapsed = performance.now() - wall
      return to.map((u, k) => ((cpuOf(u) - cpuOf(from[k]!)) / (elapsed * 1000)) * 100)
    }
    const idle = await cpuOver(IDLE_WINDOW)
    const keysLoggedIn = redis ? Number(await redis.sendCommand(['DBSIZE'])) : 0
    await all(clients, { t: 'beat', interval: HEARTBEAT_INTERVAL })
    await sleep(WARM_UP)
    const before: Counts[] = await all(clients, { t: 'counts' })
    const cpu = await cpuOver(CPU_WINDOW)
    const after: Counts[] = await all(clients, { t: 'counts' })
    await all(clients, { t: 'stop' })

    const run: Run = {}
    for (const [k, kind] of kinds.entries())
      run[kind] = {
        memory: memory[k]!,
        idlePercent: idle[k]!,
        cpuPercent: cpu[k]!,
        heartbeats: after[k]!.sent - before[k]!.sent,
        answered: after[k]!.answered - before[k]!.answered,
      }

    if (redis) {
      const k = kinds.indexOf('redis')
      const pushFailed: number = await servers[k]!.ask({ t: 'push', users: n })
      const deadline = Date.now() + 60_000
      for (;;) {
        const got: Counts = await clients[k]!.ask({ t: 'counts' })
        if (got.ticks >= n - pushFailed) break
        if (Date.now() > deadline) throw new Error(`${got.ticks} of ${n - pushFailed} pushed frames arrived`)
        await sleep(50)
      }
      run.redisMemory = {
        loggedIn: redisLoggedIn,
        keysLoggedIn,
        pushed: ((await usedMemory(redis)) - redisEmpty) / n,
        keysPerUser: Number(await redis.sendCommand(['DBSIZE'])) / n,
        pushFailed,
        byType: await sampleKeys(redis),
      }
    }
    return run
  } finally {
    await kill(started)
    await redis?.close().catch(() => {})
    await redisServer?.stop()
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

const spread = (values: number[], digits = 0) => {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const f = (v: number) =>
    v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  return f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`
}

const LABEL: Record<Kind, string> = {
  bare: 'bare ws',
  memory: 'mpbus, memory engine',
  redis: 'mpbus, Redis engine',
}

function print(runs: Run[], steps: number[]): Record<string, unknown> {
  const kinds = (['bare', 'memory', 'redis'] as Kind[]).filter((k) => runs[0]![k])
  const summary: Record<string, unknown> = {}
  const n = steps[steps.length - 1]!

  console.log('\n1. memory per logged-in idle connection (after forced GC; min–max over runs)')
  const memRows: Array<Array<string | number>> = []
  for (const kind of kinds)
    for (const [s, connections] of steps.entries()) {
      const heap = runs.map((r) => r[kind]!.memory[s]!.heap)
      const ratio = runs.map((r) => r[kind]!.memory[s]!.heap / r.bare!.memory[s]!.heap)
      const rss = runs.map((r) => r[kind]!.memory[s]!.rss)
      memRows.push([
        LABEL[kind],
        connections.toLocaleString('en-US'),
        spread(heap),
        kind === 'bare' ? '1' : spread(ratio, 2),
        spread(rss),
      ])
      summary[`${kind}HeapPerConnection${connections}`] = spread(heap)
      if (kind !== 'bare') summary[`${kind}HeapRatioToBare${connections}`] = spread(ratio, 2)
      summary[`${kind}RssPerConnection${connections}`] = spread(rss)
    }
  console.log(table(['server', 'connections', 'heap+external B/conn', '× bare ws', 'RSS B/conn'], memRows))

  console.log(
    `\n2. CPU at ${n.toLocaleString('en-US')} connections (% of one core): idle over ${IDLE_WINDOW / 1000} s, then a heartbeat each every ${HEARTBEAT_INTERVAL / 1000} s (${(n / (HEARTBEAT_INTERVAL / 1000)).toFixed(0)} frames/s in, as many answers out) over ${CPU_WINDOW / 1000} s`,
  )
  const cpuRows: Array<Array<string | number>> = []
  for (const kind of kinds) {
    const idle = runs.map((r) => (r[kind]!.idlePercent * 10_000) / n)
    const per10k = runs.map((r) => (r[kind]!.cpuPercent * 10_000) / n)
    const ratio = runs.map((r) => r[kind]!.cpuPercent / r.bare!.cpuPercent)
    const answered = runs.map((r) => `${r[kind]!.answered}/${r[kind]!.heartbeats}`).join(', ')
    cpuRows.push([
      LABEL[kind],
      spread(idle, 2),
      spread(per10k, 2),
      kind === 'bare' ? '1' : spread(ratio, 2),
      answered,
    ])
    summary[`${kind}IdleCpuPercentPer10k`] = spread(idle, 2)
    summary[`${kind}HeartbeatCpuPercentPer10k`] = spread(per10k, 2)
    if (kind !== 'bare') summary[`${kind}HeartbeatCpuRatioToBare`] = spread(ratio, 2)
  }
  console.log(
    table(
      [
        'server',
        'idle, % per 10,000 conns',
        'heartbeats, % per 10,000 conns',
        '× bare ws',
        'answered/sent, per run',
      ],
      cpuRows,
    ),
  )

  if (runs[0]!.redisMemory) {
    const of = (r: Run) => r.redisMemory!
    const loggedIn = steps.map((_, s) => runs.map((r) => of(r).loggedIn[s]!))
    const pushed = runs.map((r) => of(r).pushed)
    const failed = runs.map((r) => of(r).pushFailed)
    const types = [...new Set(runs.flatMap((r) => Object.keys(of(r).byType)))].sort()
    console.log(
      '\n3. Redis used_memory per user (INFO memory, over the same Redis with the node and no user)',
    )
    console.log(
      `  logged in (its stream subscribed): ${steps.map((c, s) => `${spread(loggedIn[s]!)} B at ${c.toLocaleString('en-US')}`).join(', ')}; keys per user ${spread(
        runs.map((r) => of(r).keysLoggedIn / n),
        2,
      )}`,
    )
    console.log(
      `  pushed one frame each (a stream with a 1-frame history), ${n.toLocaleString('en-US')} users: ${spread(pushed)} B; keys per user ${spread(
        runs.map((r) => of(r).keysPerUser),
        2,
      )}${Math.max(...failed) > 0 ? `; pushes failed: ${failed.join(', ')}` : ''}`,
    )
    console.log(
      `  MEMORY USAGE of sampled keys by type: ${types.map((t) => `${t} ${spread(runs.map((r) => of(r).byType[t] ?? Number.NaN))} B`).join(', ')}`,
    )
    summary.redisBytesPerLoggedInUser = spread(loggedIn[loggedIn.length - 1]!)
    summary.redisBytesPerUserWith1FrameHistory = spread(pushed)
  }
  return summary
}

// ---------------------------------------------------------------------------------------------

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : undefined
}

const has = (command: string, args: string[]) => !spawnSync(command, args).error

/** The soft limit on open files of this process (the server inherits it). */
function openFileLimit(): number {
  const out = spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout.trim()
  return out === 'unlimited' || !out ? Number.POSITIVE_INFINITY : Number(out)
}

export async function benchCapacity(): Promise<Record<string, unknown>> {
  let connections = Number(flag('connections') ?? 10_000)
  const runs = Number(flag('runs') ?? 3)
  if (!(Number.isInteger(connections) && connections >= 2))
    throw new Error(`--connections must be a whole number ≥ 2: ${flag('connections')}`)
  if (!(Number.isInteger(runs) && runs > 0))
    throw new Error(`--runs must be a whole number > 0: ${flag('runs')}`)
  const limit = openFileLimit()
  if (connections + SPARE_FDS > limit) {
    const fits = Math.floor((limit - SPARE_FDS) / 1000) * 1000
    console.log(`open-file limit ${limit} (ulimit -n): ${connections} connections lowered to ${fits}`)
    connections = fits
  }
  const steps = [Math.floor(connections / 2), connections]
  const withRedis = has(process.env.REDIS_SERVER || 'redis-server', ['--version'])
  const redisVersion = withRedis
    ? String(spawnSync(process.env.REDIS_SERVER || 'redis-server', ['--version']).stdout)
        .trim()
        .split(' sha=')[0]
    : ''
  console.log(
    `capacity of one node: ${steps.map((s) => s.toLocaleString('en-US')).join(' and ')} idle logged-in connections; ${runs} runs; node ${process.version}; open-file limit ${limit}${withRedis ? `; ${redisVersion}` : ''}; ${new Date().toISOString().slice(0, 16)}Z`,
  )
  if (!withRedis)
    console.log('Redis parts skipped: redis-server is not installed (apt-get install redis-server)')

  const kinds: Kind[] = withRedis ? ['bare', 'memory', 'redis'] : ['bare', 'memory']
  const scripts = await bundle()
  const results: Run[] = []
  try {
    for (let run = 0; run < runs; run++) {
      results.push(await measureRun(scripts, kinds, steps, `bench-capacity-${process.pid}-${run}`))
      process.stderr.write(`run ${run + 1} done\n`)
    }
  } finally {
    fs.rmSync(path.dirname(scripts.node), { recursive: true, force: true })
  }
  return { connections, runs, ...print(results, steps) }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  benchCapacity().then(
    () => process.exit(0),
    (error) => {
      console.error(`bench/capacity.ts failed: ${error && error.message ? error.message : error}`)
      process.exit(1)
    },
  )
}

/**
 * What one `mpbus/server` node holds: the figures a capacity plan is sized from. The server is a
 * process of its own (bench/capacity-node.ts, bundled and forked with `--expose-gc`): mpbus on the
 * memory engine, mpbus on the Redis engine (a real redis-server per run), and, as the peer, a bare
 * `ws` WebSocketServer answering every text frame with one text frame. The clients are raw `ws`
 * sockets in this process; each sends `{"Operator":"userLogin","openId":"u<i>"}` and waits for
 * the answer (`LoginOK`; the bare server's one frame), then stays idle. Servers run without pings.
 *
 * 1. memory per connection: the server's `heapUsed + external` after forced full GCs, with N
 *    clients logged in minus with none, over N, at N/2 and N. `external` already includes
 *    `arrayBuffers` (Node's `process.memoryUsage()` docs), so it is not added again. RSS the
 *    same way. The kernel's socket buffers are in neither.
 * 2. CPU with heartbeats: the N clients each send the client's heartbeat frame
 *    `{"Operator":"Heart"}` every 25 s (the bus's default interval, src/bus/options.ts), spread
 *    evenly (N/25 frames a second in all); the server answers each (`HeartOK`). The server's CPU
 *    time (`process.cpuUsage()`) over ~20 s of wall time, as a %, and scaled to 10,000
 *    connections (a server with pings on, the default every 30 s, spends more: one ping per
 *    connection per interval).
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
 * the default takes about 5 minutes on 2 cores. N is lowered when it does not fit the open-file
 * limit (`ulimit -n`): this process holds N client sockets, the server N more.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { createClient } from 'redis'
import WebSocket from 'ws'
import { type RedisServer, startRedisServer } from '../src/testing/index'
import { BARE_ANSWER, type CapacityAnswer, type CapacityConfig, type CapacityRequest } from './capacity-node'

/** The bus's default heartbeat interval (src/bus/options.ts). */
const HEARTBEAT_INTERVAL = 25_000
const HEART = JSON.stringify({ Operator: 'Heart' })
const CPU_WINDOW = 20_000
/** The same N connections without heartbeats first: what the server spends holding them. */
const IDLE_WINDOW = 3000
/** Heartbeats run this long before the window opens. */
const WARM_UP = 1000
/** Logins in flight at once: more would overflow the listen backlog and wait out SYN retries. */
const CONNECTING = 200
/** Descriptors the processes need beside the sockets measured. */
const SPARE_FDS = 200

const here = path.dirname(fileURLToPath(import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`)
    await sleep(10)
  }
}

// ---------------------------------------------------------------------------------------------
// The server: a forked process answering requests.

type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never

interface Server {
  port: number
  child: ChildProcess
  ask(request: Unnumbered<CapacityRequest>): Promise<any>
}

async function bundleServer(): Promise<string> {
  const outfile = path.join(here, '..', '.tmp', 'bench', `capacity-node-${process.pid}.mjs`)
  await build({
    entryPoints: [path.join(here, 'capacity-node.ts')],
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

function startServer(script: string, config: CapacityConfig): Promise<Server> {
  const child = fork(script, [], {
    cwd: path.join(here, '..'),
    execArgv: ['--expose-gc'],
    env: { ...process.env, MPBUS_BENCH_CAPACITY: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let exited: Error | undefined
  return new Promise((resolve, reject) => {
    child.on('message', (answer: CapacityAnswer) => {
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
      else waiting?.reject(new Error(`${config.kind} server: ${answer.error}`))
    })
    child.once('exit', (code, signal) => {
      exited = new Error(`${config.kind} server exited (${signal ?? code})`)
      reject(exited)
      for (const waiting of pending.values()) waiting.reject(exited)
      pending.clear()
    })
  })
}

/** SIGKILL: a bench server keeps nothing, and closing 10,000 connections in order takes seconds. */
async function stopServer(server: Server): Promise<void> {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

// ---------------------------------------------------------------------------------------------
// Clients: raw `ws` sockets, logged in and idle.

interface Clients {
  sockets: WebSocket[]
  /** Frames received after each login's answer: heartbeat answers and pushed frames. */
  heartAnswers: number
  ticks: number
}

function openOne(port: number, i: number, clients: Clients, bare: boolean): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false })
    let loggedIn = false
    ws.on('open', () => ws.send(JSON.stringify({ Operator: 'userLogin', openId: `u${i}` })))
    ws.on('message', (data) => {
      const text = String(data)
      if (!loggedIn) {
        loggedIn = true
        if (bare ? text === BARE_ANSWER : text.includes('"LoginOK"')) resolve(ws)
        else reject(new Error(`u${i}: login answered ${text.slice(0, 200)}`))
      } else if (text.includes('"HeartOK"')) clients.heartAnswers++
      else if (text.includes('"Tick"')) clients.ticks++
    })
    ws.on('error', (error) => {
      if (!loggedIn) reject(new Error(`u${i}: ${error.message}`))
    })
    ws.on('close', (code) => {
      if (!loggedIn) reject(new Error(`u${i}: closed ${code} before its login was answered`))
    })
  })
}

/** Opens and logs in clients until there are `count`, `CONNECTING` at a time. */
async function fill(port: number, clients: Clients, count: number, bare: boolean): Promise<void> {
  let next = clients.sockets.length
  const worker = async () => {
    while (next < count) {
      const i = next++
      clients.sockets[i] = await openOne(port, i, clients, bare)
    }
  }
  await Promise.all(Array.from({ length: CONNECTING }, worker))
}

/** Every client's heartbeat once per interval, spread evenly; stops when the returned function is called. */
function beat(clients: Clients): { sent(): number; stop(): void } {
  const { sockets } = clients
  const start = performance.now()
  let sent = 0
  // One timer for all clients, every millisecond: at 10,000 clients a frame is due every 2.5 ms,
  // so each reaches the server on its own, as independent clients' frames do (a burst of several
  // would be read in one turn of the server's event loop, cheaper per frame than real traffic).
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - start) * sockets.length) / HEARTBEAT_INTERVAL)
    for (; sent < due; sent++) sockets[sent % sockets.length]!.send(HEART)
  }, 1)
  return { sent: () => sent, stop: () => clearInterval(timer) }
}

// ---------------------------------------------------------------------------------------------
// One server kind in one run.

interface Memory {
  connections: number
  /** heapUsed + external over the empty server, per connection. */
  heap: number
  rss: number
}

interface KindResult {
  memory: Memory[]
  /** CPU % over the window at N connections: idle, then with heartbeats. */
  idlePercent: number
  cpuPercent: number
  heartbeats: number
  answered: number
  redis?: {
    /** used_memory per user at each step. */
    loggedIn: number[]
    keysLoggedIn: number
    pushed: number
    keysPerUser: number
    pushFailed: number
    /** MEMORY USAGE of a sample of keys, averaged by TYPE. */
    byType: Record<string, number>
  }
}

const heapOf = (m: NodeJS.MemoryUsage) => m.heapUsed + m.external

/** CPU % of one core between two `process.cpuUsage()` readings `ms` apart. */
const percent = (from: NodeJS.CpuUsage, to: NodeJS.CpuUsage, ms: number) =>
  ((to.user + to.system - from.user - from.system) / (ms * 1000)) * 100

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

async function usedMemory(redis: RedisInfo): Promise<number> {
  const info = String(await redis.sendCommand(['INFO', 'memory']))
  return Number((/used_memory:(\d+)/.exec(info) || [])[1])
}

interface RedisInfo {
  sendCommand(args: string[]): Promise<unknown>
  close(): Promise<unknown>
}

async function measureKind(
  script: string,
  kind: CapacityConfig['kind'],
  steps: number[],
  redisServer: RedisServer | undefined,
  prefix: string,
): Promise<KindResult> {
  const server = await startServer(script, { kind, url: redisServer?.url, prefix })
  const clients: Clients = { sockets: [], heartAnswers: 0, ticks: 0 }
  let redis: RedisInfo | undefined
  try {
    if (redisServer) {
      const client = createClient({ url: redisServer.url })
      client.on('error', () => {})
      await client.connect()
      redis = client as RedisInfo
    }
    const empty: NodeJS.MemoryUsage = await server.ask({ t: 'memory' })
    const redisEmpty = redis ? await usedMemory(redis) : 0
    const memory: Memory[] = []
    const redisLoggedIn: number[] = []
    for (const n of steps) {
      await fill(server.port, clients, n, kind === 'bare')
      const m: NodeJS.MemoryUsage = await server.ask({ t: 'memory' })
      memory.push({ connections: n, heap: (heapOf(m) - heapOf(empty)) / n, rss: (m.rss - empty.rss) / n })
      if (redis) redisLoggedIn.push(((await usedMemory(redis)) - redisEmpty) / n)
    }

    const idle0 = await server.ask({ t: 'cpu' })
    const idleWall0 = performance.now()
    await sleep(IDLE_WINDOW)
    const idle1 = await server.ask({ t: 'cpu' })
    const idlePercent = percent(idle0, idle1, performance.now() - idleWall0)
    const keysLoggedIn = redis ? Number(await redis.sendCommand(['DBSIZE'])) : 0

    const beating = beat(clients)
    await sleep(WARM_UP)
    const sent0 = beating.sent()
    const answered0 = clients.heartAnswers
    const cpu0 = await server.ask({ t: 'cpu' })
    const wall0 = performance.now()
    await sleep(CPU_WINDOW)
    const cpu1 = await server.ask({ t: 'cpu' })
    const wall1 = performance.now()
    const heartbeats = beating.sent() - sent0
    const answered = clients.heartAnswers - answered0
    beating.stop()
    const result: KindResult = {
      memory,
      idlePercent,
      cpuPercent: percent(cpu0, cpu1, wall1 - wall0),
      heartbeats,
      answered,
    }

    if (redis) {
      const n = clients.sockets.length
      const pushFailed: number = await server.ask({ t: 'push', users: n })
      await until(
        () => clients.ticks >= n - pushFailed,
        60_000,
        () => `${clients.ticks} of ${n} pushed frames arrived`,
      )
      const keys = Number(await redis.sendCommand(['DBSIZE']))
      result.redis = {
        loggedIn: redisLoggedIn,
        pushed: ((await usedMemory(redis)) - redisEmpty) / n,
        keysLoggedIn,
        keysPerUser: keys / n,
        pushFailed,
        byType: await sampleKeys(redis),
      }
    }
    return result
  } finally {
    for (const ws of clients.sockets) ws?.terminate()
    await redis?.close().catch(() => {})
    await stopServer(server)
  }
}

// ---------------------------------------------------------------------------------------------
// Output.

type Kind = CapacityConfig['kind']
type Run = Partial<Record<Kind, KindResult>>

const spread = (values: number[], digits = 0) => {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  const f = (v: number) =>
    v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
  return f(lo) === f(hi) ? f(lo) : `${f(lo)}–${f(hi)}`
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

  if (runs[0]!.redis?.redis) {
    const of = (r: Run) => r.redis!.redis!
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

  const script = await bundleServer()
  const results: Run[] = []
  try {
    for (let run = 0; run < runs; run++) {
      const result: Run = {}
      result.bare = await measureKind(script, 'bare', steps, undefined, '')
      process.stderr.write(`run ${run + 1}: bare ws done\n`)
      result.memory = await measureKind(script, 'memory', steps, undefined, '')
      process.stderr.write(`run ${run + 1}: memory engine done\n`)
      if (withRedis) {
        const redis = await startRedisServer()
        try {
          result.redis = await measureKind(
            script,
            'redis',
            steps,
            redis,
            `bench-capacity-${process.pid}-${run}`,
          )
        } finally {
          await redis.stop()
        }
        process.stderr.write(`run ${run + 1}: Redis engine done\n`)
      }
      results.push(result)
    }
  } finally {
    fs.rmSync(script, { force: true })
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

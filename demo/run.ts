/**
 * The demo, as a function: starts the server nodes (mpbus/server) and the fault proxy on loopback
 * (or uses the user's server), runs N simulated mini programs through the fault timeline while the
 * servers push to each of them and publish to a room they all joined, waits until every outbox has
 * drained and every push has arrived, and returns the numbers of both directions. `main.ts` prints
 * them; `test/demo.test.ts` checks them.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type Client, createClient, type Timing, userOf } from './client'
import { type Cluster, createCluster, type EngineKind } from './cluster'
import type { PushResult } from './push-report'
import { createPusher } from './pusher'
import { type ClientResult, createTally, type Tally } from './report'
import { clientRows, pushRows } from './results'
import { type Fault, type FaultKind, runTimeline, seeded } from './timeline'

export interface DemoOptions {
  /** Seconds of sending under faults. @default 30 */
  duration?: number
  /** Simulated mini programs. @default 20 */
  clients?: number
  /** Seeds the random choices (which clients, send phases). @default a fresh one, reported in the result */
  seed?: number
  /** A server of the user's: no local server, no proxy, no faults, no pushes checked (a soak test). @default none */
  url?: string
  /** Server processes behind the proxy; more than one needs a Redis engine. @default 1 */
  servers?: number
  /**
   * The servers' engine: `redis` starts a redis-server for them, `redis-cluster` a Redis Cluster
   * of three masters (and adds the fault "Redis master killed"). @default 'memory'
   */
  engine?: EngineKind
  /** Ends the run early (Ctrl-C): it stops everything it started and rejects. */
  signal?: AbortSignal
  /** Messages per second per client. @default 5 */
  rate?: number
  /** Push batches per second (a `Tick` to every client's user and a `RoomTick` to the room). @default 2 */
  pushRate?: number
  /** ms to wait, after sending stops, for every outbox to drain and every push to arrive. @default 15000 */
  drainTimeout?: number
  /** Called about four times a second with the live status. */
  onStatus?: (status: DemoStatus) => void
  /** Called with a line for each fault as it begins. */
  onEvent?: (line: string) => void
}

export interface DemoStatus {
  /** ms since the start. */
  elapsed: number
  phase: 'sending' | 'draining'
  /** Clients whose bus is ready. */
  connected: number
  clients: number
  /** Messages waiting or in flight, over every outbox. */
  queued: number
  delivered: number
  /** Pushed frames confirmed, and those the clients' handlers have seen. */
  pushed: number
  seen: number
  /** The fault in progress, if any. */
  fault?: string
}

export interface DemoResult {
  mode: 'local' | 'url'
  seed: number
  /** Seconds of sending. */
  duration: number
  servers: number
  engine: EngineKind
  /** Client → server, per client. */
  rows: ClientResult[]
  /** Server → client, per client; absent with --url. */
  pushRows?: PushResult[]
  faults: Fault[]
  /** Every kind of fault that was injected (none with --url). */
  kinds: FaultKind[]
  /** Connections the proxy opened to each server node. */
  routed: number[]
  /** Whether every outbox was empty, and every push seen or behind a resync, before the drain deadline. */
  drained: boolean
  lost: number
  outOfOrder: number
  pushLost: number
  pushOutOfOrder: number
  /** Nothing lost, nothing out of order, in either direction (and no pushed frame seen twice). */
  ok: boolean
  wallMs: number
}

const DEFAULTS = { duration: 30, clients: 20, rate: 5, pushRate: 2, drainTimeout: 15_000 }

/**
 * The clients' timing. The default run (30 s) uses a 1 s heartbeat and a 2 s backoff cap, fast
 * enough to see each fault noticed and repaired within its few seconds; shorter runs play the
 * timeline faster, so they scale these down with it (to a fifth at most).
 */
function timingFor(duration: number, local: boolean): Timing {
  const scale = local ? Math.min(1, Math.max(0.2, duration / 30)) : 1
  return {
    heartbeat: { interval: 1000 * scale, timeout: 1000 * scale },
    reconnect: { minDelay: 100, maxDelay: 2000 * scale },
    connectTimeout: 1500 * scale,
    readyTimeout: 2000,
    suspendDelay: 500 * scale,
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const duration = options.duration ?? DEFAULTS.duration
  const count = options.clients ?? DEFAULTS.clients
  const rate = options.rate ?? DEFAULTS.rate
  const servers = options.servers ?? 1
  const engine = options.engine ?? 'memory'
  const seed = options.seed ?? Math.floor(Math.random() * 1e9)
  const random = seeded(seed)
  const local = !options.url
  const signal = options.signal
  const interrupted = () => new Error('interrupted: everything the run started is stopped')
  const aborted = new Promise<void>((resolve) => signal?.addEventListener('abort', () => resolve()))
  let t0 = performance.now()
  const clock = () => performance.now() - t0

  // Client → server ground truth: locally, the servers' record of what their handlers ran (a
  // record the demo has before the ack leaves); against a user's server, the delivery promises.
  const tallies: Tally[] = Array.from({ length: count }, createTally)
  const repeats = new Map<string, number>()
  let cluster: Cluster | undefined
  if (local) {
    cluster = await createCluster({
      servers,
      engine,
      onGot: (_user, client, n) => tallies[client]?.add(n),
      onRepeat: (user) => repeats.set(user, (repeats.get(user) ?? 0) + 1),
      // "acks lost" holds handlers for 8% of the run: a claim twice that, at least 3 s.
      claimTtl: Math.max(3000, duration * 1000 * 0.16),
    })
    if (signal?.aborted) {
      await cluster.close()
      throw interrupted()
    }
  }
  const url = options.url ?? cluster!.url()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpbus-demo-'))
  const timing = timingFor(duration, local)
  t0 = performance.now()

  const clients: Client[] = []
  for (let index = 0; index < count; index++) {
    const phase = random() * (1000 / rate)
    clients.push(createClient({ index, url, dir, timing, rate, phase, clock }))
  }
  const pusher = cluster
    ? createPusher({
        cluster,
        users: clients.map((c) => userOf(c.index)),
        interval: 1000 / (options.pushRate ?? DEFAULTS.pushRate),
        clock,
      })
    : undefined

  const cursors = clients.map(() => 0)
  function collect(): number {
    if (!cluster)
      clients.forEach((c, i) => {
        for (; cursors[i]! < c.resolved.length; cursors[i]!++) tallies[i]!.add(c.resolved[cursors[i]!]!)
      })
    return tallies.reduce((sum, t) => sum + t.size, 0)
  }

  let timeline: ReturnType<typeof runTimeline> | undefined
  let phase: DemoStatus['phase'] = 'sending'
  const status = (): DemoStatus => ({
    elapsed: clock(),
    phase,
    connected: clients.filter((c) => c.ready).length,
    clients: count,
    queued: clients.reduce((sum, c) => sum + c.queued, 0),
    delivered: collect(),
    pushed: pusher ? pusher.count() : 0,
    seen: clients.reduce((sum, c) => sum + c.seen.user.length + c.seen.room.length, 0),
    fault: timeline?.current()?.label,
  })
  let announced = 0
  const ticker = setInterval(() => {
    // Fault lines first, then the status they lead to.
    if (timeline && options.onEvent) {
      for (; announced < timeline.faults.length; announced++) {
        const f = timeline.faults[announced]!
        const who = f.who ?? (f.clients.length === count ? 'all clients' : `clients ${f.clients.join(', ')}`)
        options.onEvent(`${(f.start / 1000).toFixed(1).padStart(5)} s  ${f.label} (${who})`)
      }
    }
    options.onStatus?.(status())
  }, 250)

  try {
    for (const c of clients) c.start()
    if (cluster && pusher) {
      // Pushes and faults start once every client has logged in (and joined the room) once:
      // before its first login a client has no position, and the protocol starts it at the
      // stream's tip; and a fault is measured on clients that were up when it began.
      while (!clients.every((c) => c.log.length) && clock() < 10_000 && !signal?.aborted) await sleep(20)
      pusher.start()
      timeline = runTimeline({ cluster, clients, random, clock }, duration * 1000)
      // Cut short by an abort, a stage may still fail as its servers go: nobody's error then.
      timeline.done.catch(() => {})
      await Promise.race([timeline.done, aborted])
    } else await Promise.race([sleep(duration * 1000), aborted])

    // Stop sending and pushing, then wait for the outboxes (with acks on, an empty outbox means
    // the server acknowledged everything) and for every confirmed push to have been seen.
    phase = 'draining'
    for (const c of clients) c.stopSending()
    await pusher?.stop()
    const settled = () =>
      clients.every((c) => c.queued === 0) &&
      (!pusher || pushRows(clients, pusher).every((r) => r.lost === 0))
    const deadline = clock() + (options.drainTimeout ?? DEFAULTS.drainTimeout)
    while (!settled() && clock() < deadline && !signal?.aborted) await sleep(50)
    if (signal?.aborted) throw interrupted()
    const drained = settled()
    options.onStatus?.(status())
    collect()

    const faults = timeline ? timeline.faults : []
    const rows = clientRows(clients, tallies, faults, cluster ? repeats : undefined)
    const push = pusher ? pushRows(clients, pusher) : undefined
    const sum = <T>(list: T[] | undefined, pick: (r: T) => number) =>
      (list ?? []).reduce((s, r) => s + pick(r), 0)
    const lost = sum(rows, (r) => r.lost)
    const outOfOrder = sum(rows, (r) => r.outOfOrder)
    const pushLost = sum(push, (r) => r.lost)
    const pushOutOfOrder = sum(push, (r) => r.outOfOrder)
    const twice = sum(push, (r) => r.twice)
    return {
      mode: local ? 'local' : 'url',
      seed,
      duration,
      servers,
      engine,
      rows,
      pushRows: push,
      faults,
      kinds: Array.from(new Set(faults.map((f) => f.kind))),
      routed: cluster ? cluster.routed.slice() : [],
      drained,
      lost,
      outOfOrder,
      pushLost,
      pushOutOfOrder,
      ok: lost === 0 && outOfOrder === 0 && pushLost === 0 && pushOutOfOrder === 0 && twice === 0,
      wallMs: clock(),
    }
  } finally {
    clearInterval(ticker)
    timeline?.stop()
    await pusher?.stop()
    for (const c of clients) c.close()
    await cluster?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

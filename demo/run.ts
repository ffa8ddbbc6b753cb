/**
 * The demo, as a function: starts the reference server and the fault proxy on loopback (or uses
 * the user's server), runs N simulated mini programs through the fault timeline, waits for every
 * outbox to drain, and returns the numbers. `main.ts` prints them; `test/demo.test.ts` checks them.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createFaultProxy, createTestServer, type FaultProxy, type TestServer } from '../src/testing/index'
import { type Client, createClient, type Timing } from './client'
import { type ClientResult, createTally, type Tally, worstNotice, worstRecovery } from './report'
import { type Fault, type FaultKind, runTimeline, seeded } from './timeline'

export interface DemoOptions {
  /** Seconds of sending under faults. @default 30 */
  duration?: number
  /** Simulated mini programs. @default 20 */
  clients?: number
  /** Seeds the random choices (which clients, send phases). @default a fresh one, reported in the result */
  seed?: number
  /** A server of the user's: no local server, no proxy, no faults (a soak test). @default none */
  url?: string
  /** Messages per second per client. @default 5 */
  rate?: number
  /** ms to wait, after sending stops, for every outbox to drain. @default 15000 */
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
  /** The fault in progress, if any. */
  fault?: string
}

export interface DemoResult {
  mode: 'local' | 'url'
  seed: number
  /** Seconds of sending. */
  duration: number
  rows: ClientResult[]
  faults: Fault[]
  /** Every kind of fault that was injected (none with --url). */
  kinds: FaultKind[]
  /** Whether every outbox was empty before the drain deadline. */
  drained: boolean
  lost: number
  outOfOrder: number
  /** No message lost, none out of order. */
  ok: boolean
  wallMs: number
}

const DEFAULTS = { duration: 30, clients: 20, rate: 5, drainTimeout: 15_000 }

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

/**
 * The demo server's login: a stand-in for WeChat's `code2session`, which turns a `wx.login` code
 * into the user's openId on the server side. The demo's codes are `client-07.3` (client, then a
 * count), so one client always gets one openId. It believes a `userOpenId` the client sends,
 * as the reference server does: a real server must not (see src/testing/test-server.ts).
 */
const code2session = (frame: any) => ({
  openId: frame.userOpenId ?? `o-${String(frame.userCode).split('.')[0]}`,
})

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export async function runDemo(options: DemoOptions = {}): Promise<DemoResult> {
  const duration = options.duration ?? DEFAULTS.duration
  const count = options.clients ?? DEFAULTS.clients
  const rate = options.rate ?? DEFAULTS.rate
  const seed = options.seed ?? Math.floor(Math.random() * 1e9)
  const random = seeded(seed)
  const local = !options.url
  const t0 = performance.now()
  const clock = () => performance.now() - t0

  let server: TestServer | undefined
  let proxy: FaultProxy | undefined
  if (local) {
    server = await createTestServer({
      loginOk: code2session,
      sequence: (f) => (f.Operator === 'Demo' ? f.n : undefined),
    })
    proxy = await createFaultProxy({ port: server.port })
  }
  const url = options.url ?? proxy!.url()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpbus-demo-'))
  const timing = timingFor(duration, local)

  const clients: Client[] = []
  for (let index = 0; index < count; index++) {
    const phase = random() * (1000 / rate)
    clients.push(createClient({ index, url, dir, timing, rate, phase, clock }))
  }

  // What arrived, per client. Locally the ground truth is the server's record of first arrivals
  // (repeats are already dropped there); against a user's server it is the delivery promises.
  const tallies: Tally[] = clients.map(() => createTally())
  let cursor = 0
  const cursors = clients.map(() => 0)
  function collect(): number {
    if (server) {
      const received = server.received
      for (; cursor < received.length; cursor++) {
        const f = received[cursor]!.frame
        if (f && f.Operator === 'Demo' && tallies[f.client]) tallies[f.client]!.add(f.n)
      }
    } else {
      clients.forEach((c, i) => {
        for (; cursors[i]! < c.resolved.length; cursors[i]!++) tallies[i]!.add(c.resolved[cursors[i]!]!)
      })
    }
    return tallies.reduce((sum, t) => sum + t.size, 0)
  }

  const timeline =
    local && server && proxy
      ? runTimeline({ proxy, server, clients, random, clock }, duration * 1000)
      : undefined
  let phase: DemoStatus['phase'] = 'sending'
  const status = (): DemoStatus => ({
    elapsed: clock(),
    phase,
    connected: clients.filter((c) => c.ready).length,
    clients: count,
    queued: clients.reduce((sum, c) => sum + c.queued, 0),
    delivered: collect(),
    fault: timeline?.current()?.label,
  })
  let announced = 0
  const ticker = setInterval(() => {
    // Fault lines first, then the status they lead to.
    if (timeline && options.onEvent) {
      for (; announced < timeline.faults.length; announced++) {
        const f = timeline.faults[announced]!
        const who = f.clients.length === count ? 'all clients' : `clients ${f.clients.join(', ')}`
        options.onEvent(`${(f.start / 1000).toFixed(1).padStart(5)} s  ${f.label} (${who})`)
      }
    }
    options.onStatus?.(status())
  }, 250)

  try {
    for (const c of clients) c.start()
    if (timeline) await timeline.done
    else await sleep(duration * 1000)

    // Stop sending, then wait for the outboxes: with acks on, an empty outbox means the server
    // acknowledged everything.
    phase = 'draining'
    for (const c of clients) c.stopSending()
    const deadline = clock() + (options.drainTimeout ?? DEFAULTS.drainTimeout)
    while (clients.some((c) => c.queued > 0) && clock() < deadline) await sleep(50)
    const drained = clients.every((c) => c.queued === 0)
    options.onStatus?.(status())
    collect()

    const faults = timeline ? timeline.faults : []
    const stats = server?.stats()
    const rows: ClientResult[] = clients.map((c, i) => {
      const tally = tallies[i]!
      const delivered = tally.delivered(c.sent)
      const openId = c.openId()
      return {
        name: c.name,
        sent: c.sent,
        delivered,
        lost: c.sent - delivered,
        repeats: stats ? (openId ? (stats.get(openId)?.duplicates ?? 0) : 0) : undefined,
        outOfOrder: tally.outOfOrder,
        reconnects: Math.max(0, c.log.filter((e) => e.kind === 'ready').length - 1),
        noticeMs: worstNotice(i, c.log, faults),
        recoverMs: worstRecovery(i, c.log, faults),
      }
    })
    const lost = rows.reduce((s, r) => s + r.lost, 0)
    const outOfOrder = rows.reduce((s, r) => s + r.outOfOrder, 0)
    return {
      mode: local ? 'local' : 'url',
      seed,
      duration,
      rows,
      faults,
      kinds: Array.from(new Set(faults.map((f) => f.kind))),
      drained,
      lost,
      outOfOrder,
      ok: lost === 0 && outOfOrder === 0,
      wallMs: clock(),
    }
  } finally {
    clearInterval(ticker)
    timeline?.stop()
    for (const c of clients) c.close()
    await proxy?.close()
    await server?.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

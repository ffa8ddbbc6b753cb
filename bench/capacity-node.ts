/**
 * One server of bench/capacity.ts, run as its own process (bundled and `fork`ed by it, with
 * `--expose-gc`): its memory and CPU are then its own. Either `mpbus/server` as an app would run
 * it (memory or Redis engine, a login's `openId` as its user) or, as the peer, a bare `ws`
 * WebSocketServer answering every text frame with one text frame. It answers the bench over IPC:
 * its memory after a forced GC, its CPU time, one push to each of some users.
 *
 * Its config is JSON in the environment variable MPBUS_BENCH_CAPACITY (`CapacityConfig`).
 */
import { WebSocketServer } from 'ws'
import { createServer, type MpbusServer, memoryEngine, redisEngine } from '../src/server/index'

export interface CapacityConfig {
  kind: 'bare' | 'memory' | 'redis'
  /** The redis-server of `redis`. */
  url?: string
  prefix?: string
}

/** Bench → server: a request, answered with its id. */
export type CapacityRequest =
  /** Answers `process.memoryUsage()` after forced full GCs. */
  | { id: number; t: 'memory' }
  /** Answers `process.cpuUsage()`: µs of CPU since the process started. */
  | { id: number; t: 'cpu' }
  /** `server.push('u<i>', 'Tick', {k: i})` for each i below `users`; answers the number that failed. */
  | { id: number; t: 'push'; users: number }

/** Server → bench. */
export type CapacityAnswer =
  | { t: 'ready'; port: number }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'refused'; id: number; error: string }

/** The bare server's answer to every frame: as long as mpbus's `{"Operator":"HeartOK"}`. */
export const BARE_ANSWER = JSON.stringify({ Operator: 'HeartOK' })

const tell = (answer: CapacityAnswer) => process.send?.(answer)

interface Served {
  port: number
  server?: MpbusServer
}

async function bare(): Promise<Served> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise<void>((resolve, reject) => {
    wss.once('listening', resolve)
    wss.once('error', reject)
  })
  wss.on('connection', (ws) => {
    ws.on('message', () => ws.send(BARE_ANSWER))
  })
  return { port: (wss.address() as { port: number }).port }
}

async function mpbus(config: CapacityConfig): Promise<Served> {
  const server = await createServer({
    host: '127.0.0.1',
    engine:
      config.kind === 'redis' ? redisEngine({ url: config.url, prefix: config.prefix }) : memoryEngine(),
    authenticate: (login) => String(login.openId),
    // No pings: their round to every connection would land in some measured windows and not in
    // others. The bench measures what the clients' heartbeats cost.
    pingInterval: 0,
    onError: process.env.MPBUS_BENCH_DEBUG
      ? (e, user) => console.error(`node: ${user}: ${e.message}`)
      : undefined,
  })
  return { port: server.port, server }
}

/** Full collections until the heap stops shrinking (a weak reference's target goes in a later one). */
async function collected(): Promise<NodeJS.MemoryUsage> {
  const gc = (globalThis as { gc?: () => void }).gc
  if (!gc) throw new Error('run with --expose-gc')
  let last = Number.POSITIVE_INFINITY
  for (let i = 0; i < 5; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
    const used = process.memoryUsage().heapUsed
    if (used >= last) break
    last = used
  }
  return process.memoryUsage()
}

async function serve(served: Served, request: CapacityRequest): Promise<unknown> {
  switch (request.t) {
    case 'memory':
      return collected()
    case 'cpu':
      return process.cpuUsage()
    case 'push': {
      const server = served.server
      if (!server) throw new Error('the bare server has no push')
      let failed = 0
      await Promise.all(
        Array.from({ length: request.users }, (_, i) =>
          server.push(`u${i}`, 'Tick', { k: i }).catch(() => {
            failed++
          }),
        ),
      )
      return failed
    }
  }
}

async function main(config: CapacityConfig) {
  const served = config.kind === 'bare' ? await bare() : await mpbus(config)
  process.on('message', (request: CapacityRequest) => {
    serve(served, request).then(
      (value) => tell({ t: 'answer', id: request.id, value }),
      (error) => tell({ t: 'refused', id: request.id, error: String(error) }),
    )
  })
  // The bench ends a server with SIGKILL; a bench that died first leaves none behind.
  process.on('disconnect', () => process.exit(0))
  tell({ t: 'ready', port: served.port })
}

if (process.env.MPBUS_BENCH_CAPACITY)
  main(JSON.parse(process.env.MPBUS_BENCH_CAPACITY) as CapacityConfig).catch((error) => {
    console.error(`bench server could not start: ${error && error.message ? error.message : error}`)
    process.exit(1)
  })

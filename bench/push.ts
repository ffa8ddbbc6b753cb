// Server → client on loopback, 1,000 connected `ws` clients, memory engine and Redis engine (a
// real redis-server started by the test kit, skipped when it is not installed):
// - push throughput: 100 publications to a room of all 1,000 (100,000 frames out), against a bare
//   `ws` server broadcasting the same frames (serialised once per frame as well);
// - mass reconnect: all 1,000 drop at once, 20 pushes each are made meanwhile, all reconnect with
//   their positions; the time until every client has all 20, against the same 1,000 reconnects
//   with nothing missed (the cost of the login itself); with Redis, the commands Redis ran per
//   recovered message (`INFO commandstats` before and after: scripts and the commands they call).
import { pathToFileURL } from 'node:url'
import { createClient } from 'redis'
import WebSocket, { WebSocketServer } from 'ws'
import { createServer, type Engine, redisEngine } from '../src/server/index'
import { startRedisServer } from '../src/testing/index'

const CLIENTS = 1000
const PUBLICATIONS = 100
const MISSED = 20

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 1))
}

/** `CLIENTS` sockets, each counting frames of `op`, each sending `first(i)` once open. */
async function connectAll(url: string, op: string, first?: (i: number) => object) {
  const counts = new Array(CLIENTS).fill(0)
  const last: any[] = new Array(CLIENTS)
  const sockets = await Promise.all(
    counts.map(
      (_, i) =>
        new Promise<WebSocket>((resolve) => {
          const ws = new WebSocket(url)
          ws.on('message', (data) => {
            const frame = JSON.parse(data.toString())
            if (frame.Operator === 'LoginOK') resolve(ws)
            if (frame.Operator !== op) return
            counts[i]++
            last[i] = frame.Stream
          })
          ws.once('open', () => {
            if (first) ws.send(JSON.stringify(first(i)))
            else resolve(ws)
          })
        }),
    ),
  )
  const total = () => counts.reduce((a, b) => a + b, 0)
  return { sockets, counts, last, total }
}

const frame = (n: number) => ({ n, price: 100 + n, text: 'x'.repeat(60) })

async function bareBroadcast(): Promise<number> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => wss.once('listening', resolve))
  const { port } = wss.address() as import('node:net').AddressInfo
  const all = await connectAll(`ws://127.0.0.1:${port}`, 'Bid')
  const start = performance.now()
  for (let n = 1; n <= PUBLICATIONS; n++) {
    const data = JSON.stringify({ Operator: 'Bid', ...frame(n) })
    for (const ws of wss.clients) ws.send(data)
  }
  await waitFor(() => all.total() >= CLIENTS * PUBLICATIONS)
  const ms = performance.now() - start
  for (const ws of all.sockets) ws.terminate()
  await new Promise((resolve) => wss.close(resolve))
  return ms
}

/** Commands Redis has run so far, by `INFO commandstats` (an EVAL and each command its script calls). */
async function redisCalls(url: string): Promise<number> {
  const client = createClient({ url })
  await client.connect()
  const info = String(await client.sendCommand(['INFO', 'commandstats']))
  await client.close()
  let calls = 0
  for (const [, name, n] of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g))
    if (name !== 'info') calls += Number(n)
  return calls
}

async function viaServer(engine?: Engine, redisUrl?: string) {
  const server = await createServer({
    authenticate: (f) => f.user,
    rate: { frames: 1000, interval: 1000 },
    engine,
  })
  const url = `ws://127.0.0.1:${server.port}`
  await Promise.all(Array.from({ length: CLIENTS }, (_, i) => server.join(`u${i}`, 'auction')))
  const login = (i: number) => ({ Operator: 'userLogin', user: `u${i}` })
  const all = await connectAll(url, 'Bid', login)
  let start = performance.now()
  const published: Promise<unknown>[] = []
  for (let n = 1; n <= PUBLICATIONS; n++) published.push(server.publish('auction', 'Bid', frame(n)))
  await Promise.all(published)
  await waitFor(() => all.total() >= CLIENTS * PUBLICATIONS)
  const publishMs = performance.now() - start

  // Reconnect with nothing missed: the login alone.
  const resumeLogin = (positions: any[]) => (i: number) => ({
    ...login(i),
    Streams: { 'room:auction': { offset: positions[i].offset, epoch: positions[i].epoch } },
  })
  for (const ws of all.sockets) ws.terminate()
  await waitFor(() => server.connections('u0') === 0)
  start = performance.now()
  const calm = await connectAll(url, 'Bid', resumeLogin(all.last))
  const reconnectMs = performance.now() - start

  // A node restart in effect: all drop, 20 publications missed, all come back and resume.
  for (const ws of calm.sockets) ws.terminate()
  await waitFor(() => server.connections('u0') === 0)
  for (let n = 1; n <= MISSED; n++) await server.publish('auction', 'Bid', frame(PUBLICATIONS + n))
  const callsBefore = redisUrl ? await redisCalls(redisUrl) : 0
  start = performance.now()
  const back = await connectAll(url, 'Bid', resumeLogin(all.last))
  await waitFor(() => back.total() >= CLIENTS * MISSED)
  const recoverMs = performance.now() - start
  const calls = redisUrl ? (await redisCalls(redisUrl)) - callsBefore : 0
  const lost = back.counts.filter((c) => c !== MISSED).length
  for (const ws of back.sockets) ws.terminate()
  await server.close()
  return { publishMs, reconnectMs, recoverMs, lost, perRecovered: calls / (CLIENTS * MISSED) }
}

type Run = Awaited<ReturnType<typeof viaServer>>
const worst: Run = {
  publishMs: Infinity,
  reconnectMs: Infinity,
  recoverMs: Infinity,
  lost: 0,
  perRecovered: 0,
}
const better = (a: Run, b: Run): Run => ({
  publishMs: Math.min(a.publishMs, b.publishMs),
  reconnectMs: Math.min(a.reconnectMs, b.reconnectMs),
  recoverMs: Math.min(a.recoverMs, b.recoverMs),
  lost: Math.max(a.lost, b.lost),
  perRecovered: Math.max(a.perRecovered, b.perRecovered),
})

/** The engine's figures: throughput against the bare broadcast, recovery against a plain reconnect. */
function figures(best: Run, bare: number) {
  const frames = CLIENTS * PUBLICATIONS
  return {
    publish: {
      ms: Math.round(best.publishMs),
      perSecond: Math.round((frames / best.publishMs) * 1000),
      ofBare: +(bare / best.publishMs).toFixed(2),
    },
    massReconnect: {
      missedEach: MISSED,
      reconnectOnlyMs: Math.round(best.reconnectMs),
      recoverAllMs: Math.round(best.recoverMs),
      ofReconnectOnly: +(best.recoverMs / best.reconnectMs).toFixed(2),
      clientsMissingSome: best.lost,
    },
  }
}

export async function benchPush() {
  // Best of three each, interleaved; each Redis round on its own key prefix.
  const redis = await startRedisServer().catch(() => undefined)
  let bare = Infinity
  let memory = worst
  let onRedis = worst
  for (let round = 0; round < 3; round++) {
    bare = Math.min(bare, await bareBroadcast())
    memory = better(memory, await viaServer())
    if (redis)
      onRedis = better(
        onRedis,
        await viaServer(redisEngine({ url: redis.url, prefix: `bench${round}` }), redis.url),
      )
  }
  if (redis) await redis.stop()
  const frames = CLIENTS * PUBLICATIONS
  return {
    clients: CLIENTS,
    frames,
    bareWs: { ms: Math.round(bare), perSecond: Math.round((frames / bare) * 1000) },
    memory: figures(memory, bare),
    redis: redis
      ? Object.assign(figures(onRedis, bare), {
          redisCommandsPerRecoveredMessage: +onRedis.perRecovered.toFixed(3),
          recoverOfMemory: +(onRedis.recoverMs / memory.recoverMs).toFixed(2),
          publishOfMemory: +(memory.publishMs / onRedis.publishMs).toFixed(2),
        })
      : 'skipped: redis-server not installed',
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  benchPush().then(
    (result) => {
      console.log(JSON.stringify(result, null, 2))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}

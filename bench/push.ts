// Server → client on loopback, 1,000 connected `ws` clients, memory engine:
// - push throughput: 100 publications to a room of all 1,000 (100,000 frames out), against a bare
//   `ws` server broadcasting the same frames (serialised once per frame as well);
// - mass reconnect: all 1,000 drop at once, 20 pushes each are made meanwhile, all reconnect with
//   their positions; the time until every client has all 20, against the same 1,000 reconnects
//   with nothing missed (the cost of the login itself).
import { pathToFileURL } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import { createServer } from '../src/server/index'

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

async function viaServer() {
  const server = await createServer({
    authenticate: (f) => f.user,
    rate: { frames: 1000, interval: 1000 },
  })
  const url = `ws://127.0.0.1:${server.port}`
  for (let i = 0; i < CLIENTS; i++) server.join(`u${i}`, 'auction')
  const login = (i: number) => ({ Operator: 'userLogin', user: `u${i}` })
  const all = await connectAll(url, 'Bid', login)
  let start = performance.now()
  for (let n = 1; n <= PUBLICATIONS; n++) server.publish('auction', 'Bid', frame(n))
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
  for (let n = 1; n <= MISSED; n++) server.publish('auction', 'Bid', frame(PUBLICATIONS + n))
  start = performance.now()
  const back = await connectAll(url, 'Bid', resumeLogin(all.last))
  await waitFor(() => back.total() >= CLIENTS * MISSED)
  const recoverMs = performance.now() - start
  const lost = back.counts.filter((c) => c !== MISSED).length
  for (const ws of back.sockets) ws.terminate()
  await server.close()
  return { publishMs, reconnectMs, recoverMs, lost }
}

export async function benchPush() {
  // Best of three each, interleaved.
  let bare = Infinity
  let best = { publishMs: Infinity, reconnectMs: Infinity, recoverMs: Infinity, lost: 0 }
  for (let round = 0; round < 3; round++) {
    bare = Math.min(bare, await bareBroadcast())
    const run = await viaServer()
    best = {
      publishMs: Math.min(best.publishMs, run.publishMs),
      reconnectMs: Math.min(best.reconnectMs, run.reconnectMs),
      recoverMs: Math.min(best.recoverMs, run.recoverMs),
      lost: Math.max(best.lost, run.lost),
    }
  }
  const frames = CLIENTS * PUBLICATIONS
  return {
    clients: CLIENTS,
    publish: {
      frames,
      bareWs: { ms: Math.round(bare), perSecond: Math.round((frames / bare) * 1000) },
      mpbus: { ms: Math.round(best.publishMs), perSecond: Math.round((frames / best.publishMs) * 1000) },
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

// Part 6: 1,000 clients in a room, all dropped at once (the fault proxy in front of
// the server resets every connection and refuses new ones: a node restart as the clients see it),
// 20 room publications made meanwhile, then the server reachable again and every client told to
// reconnect at once; the time from then until every client has all 20, none twice. Three such
// drops per run on the same 1,000 clients; the median is reported.
//   mpbus:     1,000 buses (Node `ws` platform, memory storage) to mpbus/server, memory engine
//   socket.io: 1,000 socket.io-client sockets to a socket.io server with connection state recovery
//              on @socket.io/redis-streams-adapter, on a real redis-server
// Both sides in this process, each behind its own proxy; reconnects are started by hand
// (`bus.reconnect()`, `socket.connect()`), so neither client's backoff is timed.
import { io as ioClient } from 'socket.io-client'
import { createBus, createMemoryStorage, webSocketPlatform } from '../../src/index'
import { createServer, type Engine } from '../../src/server/index'
import { createFaultProxy, type FaultProxy } from '../../src/testing/index'
import { median, sleep, WebSocket, waitFor } from './common'
import { commandCounter } from './redis'
import { startSocketIoRecovery } from './socketio-recovery'

const CLIENTS = 1000
const MISSED = 20
const bid = (n: number) => ({ n, price: 100 + n, text: 'x'.repeat(60) })

export interface MassResult {
  /** Median over the drops. */
  recoverMs: number
  runsMs: number[]
  /** Clients that did not end a drop with exactly what was published, in the worst drop. */
  clientsMissingSome: number
  /** Publications a client's handler saw twice, over all drops. */
  repeats: number
  redisCommandsPerRecovered?: number
}

/** Counts what each of `clients` receives, by publication number. */
function tally(clients: number) {
  const counts = new Array(clients).fill(0)
  const seen = counts.map(() => new Set<number>())
  let repeats = 0
  return {
    counts,
    receive(i: number, n: number) {
      if (seen[i]!.has(n)) repeats++
      seen[i]!.add(n)
      counts[i]++
    },
    repeats: () => repeats,
  }
}

interface Side {
  proxy: FaultProxy
  tally: ReturnType<typeof tally>
  publish(n: number): unknown
  allGone(): boolean
  reconnectAll(): void
  /** Redis commands processed so far, where there is a Redis. */
  commands?(): Promise<number>
}

async function drops(side: Side, rounds: number): Promise<Omit<MassResult, 'repeats'>> {
  const { counts } = side.tally
  let published = 1
  await side.publish(0)
  await waitFor(() => counts.every((c) => c === 1))
  const runsMs: number[] = []
  let missing = 0
  let commands = 0
  for (let r = 0; r < rounds; r++) {
    side.proxy.refuse()
    await waitFor(side.allGone)
    for (let k = 0; k < MISSED; k++) await side.publish(published++)
    side.proxy.pass()
    // The proxy listens again (asynchronously) and the publications have settled: then the clock starts.
    await sleep(200)
    const before = side.commands ? await side.commands() : 0
    const start = Date.now()
    side.reconnectAll()
    await waitFor(() => counts.every((c) => c >= published), 30_000)
    runsMs.push(Date.now() - start)
    if (side.commands) commands += (await side.commands()) - before - 1
    await sleep(100)
    missing = Math.max(missing, counts.filter((c) => c !== published).length)
  }
  return {
    recoverMs: median(runsMs),
    runsMs,
    clientsMissingSome: missing,
    ...(side.commands
      ? { redisCommandsPerRecovered: +(commands / (rounds * counts.length * MISSED)).toFixed(3) }
      : {}),
  }
}

/**
 * `engine`: the memory engine by default; a Redis engine (`redisEngine` of src/server, once there)
 * with `redisUrl` to count its Redis commands.
 */
export async function mpbusMass(
  clients = CLIENTS,
  rounds = 3,
  engine?: Engine,
  redisUrl?: string,
): Promise<MassResult> {
  const server = await createServer({
    host: '127.0.0.1',
    authenticate: (login) => String(login.user),
    rate: { frames: 1e6, interval: 1000 },
    engine,
  })
  const counter = redisUrl ? await commandCounter(redisUrl) : undefined
  const proxy = await createFaultProxy({ port: server.port })
  const t = tally(clients)
  for (let i = 0; i < clients; i++) await server.join(`u${i}`, 'auction')
  const buses = t.counts.map((_, i) => {
    const bus = createBus({
      url: proxy.url(),
      platform: webSocketPlatform(WebSocket, createMemoryStorage()),
      login: () => ({ op: 'userLogin', payload: { user: `u${i}` } }),
      ready: { ok: 'LoginOK', fail: ['LoginError'] },
      ack: true,
      heartbeat: false,
      // Reconnects only when told to (bus.reconnect()), not on a backoff of its own.
      reconnect: { minDelay: 600_000, maxDelay: 600_000 },
    })
    bus.on('Bid', (frame: any) => t.receive(i, frame.n))
    return bus
  })
  await waitFor(() => buses.every((b) => b.state === 'ready'))
  const result = await drops(
    {
      proxy,
      tally: t,
      publish: (n) => server.publish('auction', 'Bid', bid(n)),
      allGone: () => t.counts.every((_, i) => server.connections(`u${i}`) === 0),
      reconnectAll: () => {
        for (const bus of buses) bus.reconnect()
      },
      commands: counter?.count,
    },
    rounds,
  )
  for (const bus of buses) bus.close()
  await proxy.close()
  await server.close()
  await counter?.close()
  return { ...result, repeats: t.repeats() }
}

export async function socketIoMass(redisUrl: string, clients = CLIENTS, rounds = 3): Promise<MassResult> {
  const server = await startSocketIoRecovery(redisUrl)
  const proxy = await createFaultProxy({ port: server.port })
  const t = tally(clients)
  const sockets = t.counts.map((_, i) => {
    const socket = ioClient(`http://127.0.0.1:${proxy.port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    })
    socket.on('Bid', (frame: any) => t.receive(i, frame.n))
    return socket
  })
  await waitFor(() => sockets.every((s) => s.connected))
  const result = await drops(
    {
      proxy,
      tally: t,
      publish: (n) => server.io.to('auction').emit('Bid', bid(n)),
      allGone: () => server.io.of('/').sockets.size === 0 && sockets.every((s) => !s.connected),
      reconnectAll: () => {
        for (const socket of sockets) socket.connect()
      },
      commands: server.redisCommands,
    },
    rounds,
  )
  for (const socket of sockets) socket.close()
  await proxy.close()
  await server.close()
  return { ...result, repeats: t.repeats() }
}

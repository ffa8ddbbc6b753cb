// Part 6 (issue 14): 1,000 clients in a room, all dropped at once (the fault proxy in front of
// the server resets every connection and refuses new ones: a node restart as the clients see it),
// 20 room publications made meanwhile, then the server reachable again and every client told to
// reconnect at once; the time from then until every client has all 20, none twice.
//   mpbus:     1,000 buses (Node `ws` platform, memory storage) to mpbus/server, memory engine
//   socket.io: 1,000 socket.io-client sockets to a socket.io server with connection state recovery
//              on @socket.io/redis-streams-adapter, on a real redis-server
// Both sides in this process, each behind its own proxy; reconnects are started by hand
// (`bus.reconnect()`, `socket.connect()`), so neither client's backoff is timed.
import { io as ioClient } from 'socket.io-client'
import { createBus, createMemoryStorage, webSocketPlatform } from '../../src/index'
import { createServer } from '../../src/server/index'
import { createFaultProxy } from '../../src/testing/index'
import { sleep, WebSocket, waitFor } from './common'
import { startSocketIoRecovery } from './socketio-recovery'

const CLIENTS = 1000
const MISSED = 20
const bid = (n: number) => ({ n, price: 100 + n, text: 'x'.repeat(60) })

export interface MassResult {
  recoverMs: number
  /** Clients that did not get exactly the 20 they missed. */
  clientsMissingSome: number
  repeats: number
  redisCommandsPerRecovered?: number
  recovered?: number
}

export async function mpbusMass(clients = CLIENTS): Promise<MassResult> {
  const server = await createServer({
    host: '127.0.0.1',
    authenticate: (login) => String(login.user),
    rate: { frames: 1e6, interval: 1000 },
  })
  const proxy = await createFaultProxy({ port: server.port })
  const counts = new Array(clients).fill(0)
  const seen = counts.map(() => new Set<number>())
  let repeats = 0
  const buses = counts.map((_, i) => {
    server.join(`u${i}`, 'auction')
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
    bus.on('Bid', (frame: any) => {
      if (seen[i]!.has(frame.n)) repeats++
      seen[i]!.add(frame.n)
      counts[i]++
    })
    return bus
  })
  await waitFor(() => buses.every((b) => b.state === 'ready'))
  server.publish('auction', 'Bid', bid(0))
  await waitFor(() => counts.every((c) => c === 1))
  proxy.refuse()
  await waitFor(() => counts.every((_, i) => server.connections(`u${i}`) === 0))
  for (let n = 1; n <= MISSED; n++) server.publish('auction', 'Bid', bid(n))
  proxy.pass()
  // The proxy listens again (asynchronously) and the publications have settled: then the clock starts.
  await sleep(200)
  const start = Date.now()
  for (const bus of buses) bus.reconnect()
  await waitFor(() => counts.every((c) => c >= 1 + MISSED), 30_000)
  const recoverMs = Date.now() - start
  const result = {
    recoverMs,
    clientsMissingSome: counts.filter((c) => c !== 1 + MISSED).length,
    repeats,
  }
  for (const bus of buses) bus.close()
  await proxy.close()
  await server.close()
  return result
}

export async function socketIoMass(redisUrl: string, clients = CLIENTS): Promise<MassResult> {
  const server = await startSocketIoRecovery(redisUrl)
  const io = server.io
  const proxy = await createFaultProxy({ port: server.port })
  const counts = new Array(clients).fill(0)
  const seen = counts.map(() => new Set<number>())
  let repeats = 0
  const sockets = counts.map((_, i) => {
    const socket = ioClient(`http://127.0.0.1:${proxy.port}`, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
    })
    socket.on('Bid', (frame: any) => {
      if (seen[i]!.has(frame.n)) repeats++
      seen[i]!.add(frame.n)
      counts[i]++
    })
    return socket
  })
  await waitFor(() => sockets.every((s) => s.connected))
  io.to('auction').emit('Bid', bid(0))
  await waitFor(() => counts.every((c) => c === 1))
  proxy.refuse()
  await waitFor(() => io.of('/').sockets.size === 0 && sockets.every((s) => !s.connected))
  for (let n = 1; n <= MISSED; n++) io.to('auction').emit('Bid', bid(n))
  proxy.pass()
  await sleep(200)
  const before = await server.redisCommands()
  const start = Date.now()
  for (const socket of sockets) socket.connect()
  await waitFor(() => counts.every((c) => c >= 1 + MISSED), 30_000)
  const recoverMs = Date.now() - start
  const commands = (await server.redisCommands()) - before - 1
  const result = {
    recoverMs,
    clientsMissingSome: counts.filter((c) => c !== 1 + MISSED).length,
    repeats,
    recovered: sockets.filter((s) => s.recovered).length,
    redisCommandsPerRecovered: +(commands / (clients * MISSED)).toFixed(3),
  }
  for (const socket of sockets) socket.close()
  await proxy.close()
  await server.close()
  return result
}

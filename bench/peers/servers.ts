// Every peer's server, in a child process of run.ts (forked by server-link.ts), so that the bench
// process's CPU time is its clients' alone. Each records the arrivals of the clients' messages
// by their channel tag (`c`) and sequence number (`n`), first arrivals and repeats alike.
//   raw     a minimal `ws` server: counts; answers the login and the heartbeat; on `/ack` acks every
//           frame with an id (raw `ws`, reconnecting-websocket, and mpbus in the throughput and
//           replay parts)
//   mpbus   mpbus/server (src/server), memory engine: login, acks, the duplicate window (one
//           throughput row, and mpbus in the fault script)
//   mqtt    aedes over WebSocket (the root's `ws` + createWebSocketStream), QoS 1 PUBACKs
//   sio     socket.io 4.8, websocket transport only, default heartbeat (25 s + 20 s)
//   sioFast the same with pingInterval 1 s + pingTimeout 1 s, for the fault script
import type { AddressInfo } from 'node:net'
import { Aedes } from 'aedes'
import { Server as SocketIoServer } from 'socket.io'
import { createServer, memoryEngine } from '../../src/server/index'
import { createWebSocketStream, WebSocketServer } from './common'

type Arrivals = { n: number[]; at: number[] }
const arrivals = new Map<string, Arrivals>()
const waiting = new Map<string, { count: number; id: number }>()

function record(message: any): void {
  if (!message || typeof message.c !== 'string') return
  let a = arrivals.get(message.c)
  if (!a) {
    a = { n: [], at: [] }
    arrivals.set(message.c, a)
  }
  a.n.push(message.n)
  a.at.push(Date.now())
  const w = waiting.get(message.c)
  if (w && a.n.length >= w.count) {
    waiting.delete(message.c)
    process.send!({ id: w.id, at: Date.now() })
  }
}

async function listen(wss: InstanceType<typeof WebSocketServer>): Promise<number> {
  await new Promise((resolve) => wss.once('listening', resolve))
  return (wss.address() as AddressInfo).port
}

async function main() {
  // The minimal server: it parses and counts; it answers the login and heartbeat of docs/protocol.md; on a
  // connection to `/ack` it also acks every frame with an id (mpbus with ack on). The raw clients'
  // frames carry an id as well (the same bytes), but on `/` nothing is answered: the server counts.
  const raw = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  const rawPort = await listen(raw)
  raw.on('connection', (ws, request) => {
    const ack = request.url === '/ack'
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (frame.Operator === 'userLogin') return ws.send('{"Operator":"LoginOK"}')
      if (frame.Operator === 'Heart') return ws.send('{"Operator":"HeartOK"}')
      record(frame)
      if (ack && typeof frame.MsgId === 'string')
        ws.send(JSON.stringify({ Operator: 'Ack', MsgId: frame.MsgId }))
    })
    ws.on('error', () => {})
  })

  const mpbus = await createServer({
    host: '127.0.0.1',
    authenticate: (login) => String(login.user || 'bench'),
    handlers: { Chat: (frame) => record(frame) },
    // The bench sends 100,000 frames as fast as it can: no rate limit. A 2-minute duplicate window
    // keeps memory flat over the run's millions of ids (the default is 8 days).
    rate: { frames: 1e9, interval: 1000 },
    engine: memoryEngine({ dedupTtl: 120_000 }),
  })

  const broker = await Aedes.createBroker()
  broker.on('publish', (packet, client) => {
    if (client && packet.topic.startsWith('chat/')) record(JSON.parse(packet.payload.toString()))
  })
  const mqtt = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  const mqttPort = await listen(mqtt)
  mqtt.on('connection', (ws) => {
    const stream = createWebSocketStream(ws)
    stream.on('error', () => {})
    broker.handle(stream as any)
  })

  const io = (options: object) => {
    const server = new SocketIoServer({ transports: ['websocket'], ...options })
    server.on('connection', (socket) => {
      socket.on('chat', (message, ack) => {
        record(message)
        if (typeof ack === 'function') ack()
      })
    })
    server.listen(0)
    return server
  }
  const sioPort = (server: SocketIoServer) => ((server as any).httpServer.address() as AddressInfo).port
  const sio = io({})
  const sioFast = io({ pingInterval: 1000, pingTimeout: 1000 })
  await new Promise((resolve) => setTimeout(resolve, 50))

  process.on('message', (m: any) => {
    if (m.cmd === 'expect') {
      const have = arrivals.get(m.tag)?.n.length ?? 0
      if (have >= m.count) process.send!({ id: m.id, at: Date.now() })
      else waiting.set(m.tag, { count: m.count, id: m.id })
    } else if (m.cmd === 'arrivals') {
      process.send!({ id: m.id, ...(arrivals.get(m.tag) || { n: [], at: [] }) })
    } else if (m.cmd === 'clear') {
      arrivals.delete(m.tag)
      waiting.delete(m.tag)
      process.send!({ id: m.id })
    } else if (m.cmd === 'exit') process.exit(0)
  })
  process.send!({
    ready: {
      raw: rawPort,
      mpbus: mpbus.port,
      mqtt: mqttPort,
      sio: sioPort(sio),
      sioFast: sioPort(sioFast),
    },
  })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})

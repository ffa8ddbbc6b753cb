// Part 1 and 2: 100,000 messages of 100 bytes, client → server on loopback, each client against
// its server in the child process: raw `ws`, reconnecting-websocket and mpbus against the same
// minimal server (which counts, and acks only for mpbus with ack on), so that the ratios compare
// the clients; one mpbus row against mpbus/server. Delivered msg/s runs from the first message handed to the client until the
// server has the last; client CPU is this process's (user + system) over the same
// span, per message. Rounds are interleaved so the JIT has warmed every path alike.
import * as clients from './clients'
import { median, round } from './common'
import type { ServerLink } from './server-link'

export const ROWS: Record<string, { label: string; connect: (link: ServerLink) => Promise<clients.Client> }> =
  {
    raw: { label: 'raw `ws` (baseline)', connect: (l) => clients.rawWs(l.ports) },
    mpbusAck: {
      label: 'mpbus, Node `ws` platform, ack, producer waits while `queued > 1000`',
      connect: (l) => clients.mpbus(l.ports, { ack: true, bound: 1000 }),
    },
    mpbusAckReference: {
      label: 'mpbus, same, to `mpbus/server` (memory engine) instead of the minimal server',
      connect: (l) => clients.mpbus(l.ports, { ack: true, bound: 1000, reference: true }),
    },
    mpbusAckNoWait: {
      label: 'mpbus, same, ack, producer not waiting (the queue grows to all of them)',
      connect: (l) => clients.mpbus(l.ports, { ack: true, bound: Infinity }),
    },
    mpbusNoAck: {
      label: 'mpbus, same, no ack, producer waits while `queued > 1000`',
      connect: (l) => clients.mpbus(l.ports, { ack: false, bound: 1000 }),
    },
    mpbusWxAck: {
      label: 'mpbus, wx emulation, ack, producer waits while `queued > 1000`',
      connect: (l) => clients.mpbus(l.ports, { ack: true, bound: 1000, wx: true }),
    },
    mqtt: { label: 'MQTT.js 5 QoS 1, aedes broker, over WebSocket', connect: (l) => clients.mqttJs(l.ports) },
    socketIo: {
      label: 'socket.io 4.8 with ack callbacks (websocket transport)',
      connect: (l) => clients.socketIo(l.ports),
    },
    reconnectingWs: {
      label: 'reconnecting-websocket 4.4 (over `ws`)',
      connect: (l) => clients.reconnectingWs(l.ports),
    },
  }

async function once(link: ServerLink, row: keyof typeof ROWS, count: number, tag: string) {
  const client = await ROWS[row]!.connect(link)
  const reached = link.expect(tag, count)
  const cpu = process.cpuUsage()
  const start = Date.now()
  await client.send(tag, count)
  const end = await reached
  const used = process.cpuUsage(cpu)
  client.close()
  await link.clear(tag)
  return { ms: Math.max(1, end - start), cpuUs: used.user + used.system }
}

export async function benchThroughput(link: ServerLink, count = 100_000, rounds = 3) {
  const runs: Record<string, { ms: number[]; cpuUs: number[] }> = {}
  let k = 0
  // A warm-up round of a tenth, not counted: the first client measured would pay for the JIT.
  for (const row of Object.keys(ROWS)) await once(link, row, Math.ceil(count / 10), `w${k++}`)
  for (let r = 0; r < rounds; r++)
    for (const row of Object.keys(ROWS)) {
      const { ms, cpuUs } = await once(link, row, count, `t${k++}`)
      const into = runs[row] || { ms: [], cpuUs: [] }
      runs[row] = into
      into.ms.push(ms)
      into.cpuUs.push(cpuUs)
    }
  const rawRate = count / (median(runs.raw!.ms) / 1000)
  const rawCpu = median(runs.raw!.cpuUs) / count
  const result: Record<string, unknown> = {}
  for (const [row, r] of Object.entries(runs)) {
    const perSecond = count / (median(r.ms) / 1000)
    const cpuPerMessage = median(r.cpuUs) / count
    result[row] = {
      perSecond: Math.round(perSecond),
      ofRaw: round(perSecond / rawRate),
      cpuUsPerMessage: round(cpuPerMessage),
      cpuOfRaw: round(cpuPerMessage / rawCpu),
      ms: r.ms,
    }
  }
  return { messages: count, rounds, rows: result }
}

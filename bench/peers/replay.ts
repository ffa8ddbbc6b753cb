// Part 3: 10,000 messages queued while offline, from the socket's open to the last one at the
// server, against a raw `ws` client sending the same frames from its open (bench/replay.ts's
// approach), both to the minimal server of servers.ts (acking for the bus with ack on); the bus's
// time includes its login round trip, which the raw client does not make.
import { createBus, createMemoryStorage, webSocketPlatform } from '../../src/index'
import { frame, median, payload, round, sleep, WebSocket } from './common'
import type { ServerLink } from './server-link'

async function raw(link: ServerLink, count: number, tag: string): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${link.ports.raw}`)
  await new Promise((resolve) => ws.once('open', resolve))
  const reached = link.expect(tag, count)
  const start = Date.now()
  for (let n = 0; n < count; n++) ws.send(frame(tag, n))
  const ms = (await reached) - start
  ws.close()
  return ms
}

async function viaBus(link: ServerLink, count: number, tag: string, ack: boolean): Promise<number> {
  let reachable = false
  const bus = createBus({
    // A closed port until the messages are queued: the bus is offline.
    url: () => (reachable ? `ws://127.0.0.1:${link.ports.raw}/${ack ? 'ack' : ''}` : 'ws://127.0.0.1:1/'),
    platform: webSocketPlatform(WebSocket, createMemoryStorage()),
    login: () => ({ op: 'userLogin', payload: { user: tag } }),
    ready: { ok: 'LoginOK' },
    ack,
    heartbeat: false,
    reconnect: { minDelay: 1, maxDelay: 1 },
    outbox: { maxMessages: count, maxBytes: 16 << 20 },
  })
  for (let n = 0; n < count; n++) bus.send('Chat', payload(tag, n)).catch(() => {})
  await sleep(10)
  let start = 0
  bus.events.on('open', () => {
    start = Date.now()
  })
  const reached = link.expect(tag, count)
  reachable = true
  const ms = (await reached) - start
  bus.close()
  return ms
}

export async function benchReplay(link: ServerLink, count = 10_000, rounds = 5) {
  const runs: Record<string, (tag: string) => Promise<number>> = {
    raw: (tag) => raw(link, count, tag),
    mpbusAck: (tag) => viaBus(link, count, tag, true),
    mpbusNoAck: (tag) => viaBus(link, count, tag, false),
  }
  const ms: Record<string, number[]> = {}
  let k = 0
  for (let r = 0; r <= rounds; r++)
    for (const [name, run] of Object.entries(runs)) {
      const tag = `r${k++}`
      const took = await run(tag)
      await link.clear(tag)
      // Round 0 warms the JIT up and is not counted.
      if (r > 0) ms[name] = [...(ms[name] || []), Math.max(1, took)]
    }
  const rawMs = median(ms.raw!)
  const rows: Record<string, unknown> = {}
  for (const [name, times] of Object.entries(ms))
    rows[name] = {
      perSecond: Math.round(count / (median(times) / 1000)),
      ofRaw: round(rawMs / median(times)),
      ms: times,
    }
  return { messages: count, rounds, rows }
}

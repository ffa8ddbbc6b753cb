// Client → server throughput on loopback: 100,000 messages of 100 bytes from mpbus (Node `ws`
// platform, ack on and off) and from a raw `ws` client, in one run, against one minimal server
// in a child process (so the client's CPU is measured alone: `process.cpuUsage()` of this
// process). Ratios only: the machine is shared, absolute figures are noise.
//
//   npx tsx bench/throughput.ts [count] [rounds]
//
// - raw: a `ws` client sending the same frames, 1,000 per macrotask (waiting while its
//   `bufferedAmount` is over 1 MiB), timed until the server has them all.
// - ack: `ack: true`, the producer waits while `bus.queued > 1000`; timed until every `send()`
//   has resolved (the server acknowledged them all). `ackOne`: the server acks each message with
//   its own frame; `ack`: it coalesces the acks of one macrotask into one batched frame
//   (`MsgIds`, docs/protocol.md).
// - noAck: the same producer, timed until the server has them all.
// Each round runs every client once, interleaved; medians of the rounds.
import { fork } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import WebSocket, { WebSocketServer } from 'ws'
import { createBus, webSocketPlatform } from '../src/index'

const COUNT = Number(process.argv[2]) || 100_000
const ROUNDS = Number(process.argv[3]) || 3
const BOUND = 1000
/** 100 bytes of payload per message (the frame adds the operator and the id). */
const TEXT = 'x'.repeat(100 - '{"n":000000,"text":""}'.length)
const payload = (n: number) => ({ n: 100000 + n, text: TEXT })

const tick = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * The server (child process): counts the frames of each connection, acknowledges the ones with
 * a `MsgId` when asked (`?ack=one` each, `?ack=batch` per macrotask), and sends
 * `{"Operator":"Done"}` when the count reaches `?n=`.
 */
function serve(): void {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  wss.on('connection', (ws, request) => {
    const query = new URL(request.url!, 'http://x').searchParams
    const mode = query.get('ack')
    const target = Number(query.get('n'))
    let count = 0
    let ids: string[] = []
    const flush = () => {
      if (ids.length === 1) ws.send(`{"Operator":"Ack","MsgId":${JSON.stringify(ids[0])}}`)
      else if (ids.length) ws.send(`{"Operator":"Ack","MsgIds":${JSON.stringify(ids)}}`)
      ids = []
    }
    ws.on('message', (data) => {
      const frame = JSON.parse(String(data))
      count++
      const id = frame.MsgId
      if (mode && id !== undefined) {
        if (mode === 'one') ws.send(`{"Operator":"Ack","MsgId":${JSON.stringify(id)}}`)
        else if (ids.push(id) === 1) setImmediate(flush)
      }
      if (count === target) ws.send('{"Operator":"Done"}')
    })
  })
  wss.on('listening', () => process.send!({ port: (wss.address() as any).port }))
}

interface Result {
  ms: number
  cpu: number
}

async function measure(run: () => Promise<void>): Promise<Result> {
  const cpu = process.cpuUsage()
  const start = performance.now()
  await run()
  const ms = performance.now() - start
  const used = process.cpuUsage(cpu)
  return { ms, cpu: (used.user + used.system) / 1000 }
}

async function raw(base: string): Promise<Result> {
  const ws = new WebSocket(`${base}/?n=${COUNT}`)
  await new Promise((resolve) => ws.once('open', resolve))
  const done = new Promise((resolve) => ws.once('message', resolve))
  const result = await measure(async () => {
    for (let n = 0; n < COUNT; ) {
      while (ws.bufferedAmount > 1 << 20) await tick()
      for (const end = Math.min(COUNT, n + BOUND); n < end; n++)
        ws.send(JSON.stringify({ Operator: 'Chat', ...payload(n), MsgId: `id-${n}` }))
      await tick()
    }
    await done
  })
  ws.close()
  return result
}

async function viaBus(base: string, ack: 'one' | 'batch' | false): Promise<Result> {
  const bus = createBus({
    url: `${base}/?n=${COUNT}${ack ? `&ack=${ack}` : ''}`,
    platform: webSocketPlatform(WebSocket),
    ack: !!ack,
    outbox: { maxMessages: COUNT, maxBytes: 1 << 30, window: Number(process.env.WINDOW) || undefined },
  })
  await new Promise((resolve) => bus.events.on('ready', () => resolve(undefined)))
  const done = bus.once('Done')
  const result = await measure(async () => {
    let last: Promise<void> | undefined
    for (let n = 0; n < COUNT; n++) {
      while (bus.queued > BOUND) await tick()
      last = bus.send('Chat', payload(n))
    }
    // In order: the last one resolving means every one was delivered.
    await last
    await done
  })
  bus.close()
  return result
}

async function main() {
  const child = fork(fileURLToPath(import.meta.url), ['--server'], { stdio: 'inherit' })
  const port = await new Promise<number>((resolve) => child.once('message', (m: any) => resolve(m.port)))
  const base = `ws://127.0.0.1:${port}`
  const runs: Record<string, () => Promise<Result>> = {
    raw: () => raw(base),
    ack: () => viaBus(base, 'batch'),
    ackOne: () => viaBus(base, 'one'),
    noAck: () => viaBus(base, false),
  }
  // ONLY=ackOne,noAck runs those alone (and raw, the reference).
  const only = process.env.ONLY && process.env.ONLY.split(',')
  for (const name of Object.keys(runs)) if (only && name !== 'raw' && !only.includes(name)) delete runs[name]
  const all: Record<string, Result[]> = Object.fromEntries(Object.keys(runs).map((name) => [name, []]))
  for (let round = 0; round < ROUNDS; round++)
    for (const [name, run] of Object.entries(runs)) all[name]!.push(await run())
  child.kill()
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
  const rawMs = median(all.raw!.map((r) => r.ms))
  const rawCpu = median(all.raw!.map((r) => r.cpu))
  const out: Record<string, unknown> = { messages: COUNT, rounds: ROUNDS }
  for (const [name, results] of Object.entries(all)) {
    const ms = median(results.map((r) => r.ms))
    const cpu = median(results.map((r) => r.cpu))
    out[name] = {
      perSecond: Math.round((COUNT / ms) * 1000),
      ofRaw: +(rawMs / ms).toFixed(2),
      ofRawEach: results.map((r) => +(rawMs / r.ms).toFixed(2)),
      cpuPerMessageUs: +((cpu * 1000) / COUNT).toFixed(2),
      cpuOfRaw: +(cpu / rawCpu).toFixed(2),
    }
  }
  return out
}

if (process.argv.includes('--server')) serve()
else if (import.meta.url === pathToFileURL(process.argv[1]!).href)
  main().then((result) => console.log(JSON.stringify(result, null, 2)))

// Replay throughput: 10,000 messages queued while offline, flushed to the test server on
// loopback after the network comes back, against a raw `ws` client sending the same frames.
// Targets: with ack at least 0.6 x the raw rate, without at least 0.9 x. `busAck` is
// acknowledged one frame per message, `busAckBatched` by a server batching its acks.
import { pathToFileURL } from 'node:url'
import WebSocket from 'ws'
import { createBus, webSocketPlatform } from '../src/index'
import { createTestServer, createWxRuntime } from '../src/testing/index'

const COUNT = 10_000
const payload = (n: number) => ({ n, text: 'x'.repeat(80) })

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 1))
}

async function raw(url: string, received: () => number): Promise<number> {
  const ws = new WebSocket(url)
  await new Promise((resolve) => ws.once('open', resolve))
  const base = received()
  const start = performance.now()
  for (let n = 0; n < COUNT; n++)
    ws.send(JSON.stringify({ Operator: 'Chat', ...payload(n), MsgId: `id-${n}` }))
  await waitFor(() => received() - base >= COUNT)
  const ms = performance.now() - start
  ws.close()
  return ms
}

/**
 * 10,000 sends queued while the bus cannot connect, then the time from its socket's open to the
 * server having them all (the raw run is timed from its open too: the replay, not the handshake).
 * `runtime: 'ws'` runs the bus on `webSocketPlatform` over the same `ws` client as the raw run
 * (the like-for-like comparison); `'wx'` on the wx runtime of the test kit, whose emulation adds
 * its own cost per frame (callbacks in a later macrotask, as WeChat's).
 */
async function viaBus(
  url: string,
  received: () => number,
  ack: boolean,
  runtime: 'ws' | 'wx',
): Promise<number> {
  const wx = createWxRuntime()
  let reachable = false
  // Unreachable at first: the ws run points at a closed port, the wx run goes offline.
  const target = () => (runtime === 'wx' || reachable ? url : 'ws://127.0.0.1:1/')
  if (runtime === 'wx') wx.control.offline()
  const bus = createBus({
    url: target,
    platform: runtime === 'wx' ? wx : webSocketPlatform(WebSocket),
    ack,
    heartbeat: false,
    reconnect: { minDelay: 1, maxDelay: 1 },
    outbox: { maxMessages: COUNT, maxBytes: 8 << 20 },
  })
  for (let n = 0; n < COUNT; n++) bus.send('Chat', payload(n)).catch(() => {})
  await new Promise((resolve) => setTimeout(resolve, 10))
  const base = received()
  let start = 0
  bus.events.on('open', () => {
    start = performance.now()
  })
  reachable = true
  if (runtime === 'wx') wx.control.online()
  await waitFor(() => received() - base >= COUNT && bus.queued === 0)
  const ms = performance.now() - start
  bus.close()
  wx.control.kill()
  return ms
}

export async function benchReplay() {
  const server = await createTestServer({ ack: { op: 'Ack', idKey: 'MsgId' } })
  // The same server acknowledging the messages of one macrotask in one frame (MsgIds, docs/protocol.md).
  const batching = await createTestServer({ ack: { batch: true } })
  const received = () => server.received.length
  const runs = {
    raw: () => raw(server.url, received),
    bus: () => viaBus(server.url, received, false, 'ws'),
    busAck: () => viaBus(server.url, received, true, 'ws'),
    rawBatching: () => raw(batching.url, () => batching.received.length),
    busAckBatched: () => viaBus(batching.url, () => batching.received.length, true, 'ws'),
    wxRuntime: () => viaBus(server.url, received, false, 'wx'),
    wxRuntimeAck: () => viaBus(server.url, received, true, 'wx'),
  }
  // Best of five rounds each, interleaved, so the JIT has warmed every path alike.
  const best: Record<string, number> = {}
  for (let round = 0; round < 5; round++)
    for (const [name, run] of Object.entries(runs)) best[name] = Math.min(best[name] ?? Infinity, await run())
  await server.close()
  await batching.close()
  const result: Record<string, unknown> = { messages: COUNT }
  for (const [name, ms] of Object.entries(best)) {
    result[name] = {
      ms: Math.round(ms),
      perSecond: Math.round((COUNT / ms) * 1000),
      // Against the raw client on the same server (the batching one for busAckBatched).
      ofRaw: +((name === 'busAckBatched' ? best.rawBatching! : best.raw!) / ms).toFixed(2),
    }
  }
  result.target = 'bus (on ws): with ack >= 0.6 x the raw rate, without >= 0.9 x'
  return result
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  benchReplay().then((result) => console.log(JSON.stringify(result, null, 2)))
}

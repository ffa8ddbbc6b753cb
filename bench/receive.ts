// Storage writes on the receive path, counted on the wx runtime of the test kit (`wx.setStorageSync`
// calls: WeChat's synchronous storage blocks the JS thread for each), not timed. A bus logged in to
// mpbus/server (memory engine):
// - replay: 1,000 frames pushed while it was offline, then back online (the server sends the
//   replay as batches, the client stores the positions of each once);
// - live, one push per macrotask: each frame its own message (the floor is one write each);
// - live, bursts of 10 pushes per macrotask: one message per burst.
// The live runs follow a reconnect: from the second login on a client names `Batch`.
// Every run checks that each frame was handled once, in order. Three runs each: median and spread.
import { pathToFileURL } from 'node:url'
import { createBus } from '../src/index'
import { createServer } from '../src/server/index'
import { createWxRuntime } from '../src/testing/index'

const FRAMES = 1000
const RUNS = 3

async function waitFor(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((resolve) => setTimeout(resolve, 1))
}

const tick = () => new Promise((resolve) => setImmediate(resolve))

async function once(mode: 'replay' | 'live' | 'bursts') {
  const server = await createServer({ authenticate: (login) => String(login.openId) })
  const wx = createWxRuntime()
  const bus = createBus({
    url: `ws://127.0.0.1:${server.port}`,
    platform: wx as any,
    login: () => ({ op: 'userLogin', payload: { openId: 'alice' } }),
    ready: { ok: 'LoginOK' },
    ack: true,
    reconnect: { minDelay: 10, maxDelay: 50 },
  })
  const seen: number[] = []
  bus.on('Quote', (f: any) => void seen.push(f.n))
  await waitFor(() => bus.state === 'ready')
  // One frame first: the stream has a position, so the login after the outage names it.
  await server.push('alice', 'Quote', { n: 0 })
  await waitFor(() => seen.length === 1)
  const frame = (n: number) => ({ n, price: 100 + n, text: 'x'.repeat(60) })
  let writes: number
  const started = performance.now()
  if (mode === 'replay') {
    wx.control.offline()
    await waitFor(() => server.connections('alice') === 0)
    for (let n = 1; n <= FRAMES; n++) await server.push('alice', 'Quote', frame(n))
    const before = wx.control.counters.setStorageSync
    wx.control.online()
    await waitFor(() => seen.length === FRAMES + 1)
    writes = wx.control.counters.setStorageSync - before
  } else {
    // A reconnect first: the login that names positions is the one that names `Batch` (a first
    // login names neither, so the first session of an app gets one frame per message).
    wx.control.offline()
    await waitFor(() => server.connections('alice') === 0)
    wx.control.online()
    await waitFor(() => server.connections('alice') === 1 && bus.state === 'ready')
    const before = wx.control.counters.setStorageSync
    const burst = mode === 'live' ? 1 : 10
    for (let n = 1; n <= FRAMES; n += burst) {
      for (let k = n; k < n + burst; k++) server.push('alice', 'Quote', frame(k))
      await tick()
    }
    await waitFor(() => seen.length === FRAMES + 1)
    writes = wx.control.counters.setStorageSync - before
  }
  const ms = performance.now() - started
  const inOrder = seen.every((n, i) => n === i)
  bus.close()
  wx.control.kill()
  await server.close()
  return { writes, ms, inOrder }
}

function spread(values: number[]) {
  const s = [...values].sort((a, b) => a - b)
  return { median: s[Math.floor(s.length / 2)]!, min: s[0]!, max: s[s.length - 1]! }
}

export async function benchReceive() {
  const result: Record<string, unknown> = { frames: FRAMES, runs: RUNS }
  for (const mode of ['replay', 'live', 'bursts'] as const) {
    const runs = []
    for (let r = 0; r < RUNS; r++) runs.push(await once(mode))
    const writes = spread(runs.map((r) => r.writes))
    result[mode] = {
      writesPerFrame: {
        median: writes.median / FRAMES,
        min: writes.min / FRAMES,
        max: writes.max / FRAMES,
      },
      writes,
      ms: spread(runs.map((r) => Math.round(r.ms))),
      everyFrameOnceInOrder: runs.every((r) => r.inOrder),
    }
  }
  result.target = 'replay of 1,000 frames after an offline period: <= 0.05 writes per frame'
  return result
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  benchReceive().then(
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

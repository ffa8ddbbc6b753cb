/**
 * The outbox at depth, on the wx storage emulation: a queue filled one message per tick (a commit
 * after each) to 1,000 ... 100,000 messages, then a cold start. Measured per depth, median of 3
 * runs with the spread (min-max):
 * - the longest commit while filling, and bytes written per message;
 * - the keys left in storage;
 * - a cold start: `createBus` + first `send()`, against the floor, one `getStorageSync` and one
 *   `JSON.parse` of the same envelopes held in a single key, measured in the same run;
 * - heap per queued message (memory only, after a forced GC), against its envelope's JSON.
 *
 * Run: npx tsx bench/depth.ts [depth ...]
 */

import { pathToFileURL } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'
import { createBus } from '../src/bus'
import { outboxSettings } from '../src/bus/options'
import { createOutbox } from '../src/outbox'
import { miniProgramPlatform } from '../src/platform/mini-program'
import { createStorageArea, createWxRuntime } from '../src/testing'

v8.setFlagsFromString('--expose-gc')
const gc: () => void = vm.runInNewContext('gc')

const PAYLOAD = { text: 'x'.repeat(60), n: 0 }
const url = 'ws://127.0.0.1:1/'
const big = (n: number) => ({ maxMessages: n + 10, maxBytes: 1e9 })

interface Run {
  commitMaxMs: number
  bytesPerMessage: number
  keys: number
  coldStartMs: number
  floorMs: number
  heapPerMessage: number
  envelopeBytes: number
}

async function run(n: number, heapPerMessage: number): Promise<Run> {
  const area = createStorageArea()
  const wx = createWxRuntime({ storage: area, totalLimit: 1e10, perKeyLimit: 1e9 })
  const outbox = createOutbox(outboxSettings({ storage: miniProgramPlatform(wx).storage!, ...big(n) }))
  let commitMaxMs = 0
  for (let i = 0; i < n; i++) {
    outbox.enqueue('Chat', PAYLOAD)
    const t = performance.now()
    outbox.commit()
    commitMaxMs = Math.max(commitMaxMs, performance.now() - t)
  }
  const list = outbox.list()
  const json = JSON.stringify(list)
  const envelopeBytes = Buffer.byteLength(json) / n
  const bytesPerMessage = wx.control.counters.bytesWritten / n
  wx.control.kill()
  const keys = area.keys().length

  // The floor: the same envelopes under one key, read and parsed once.
  const floorWx = createWxRuntime({ storage: createStorageArea(), totalLimit: 1e10, perKeyLimit: 1e9 })
  floorWx.setStorageSync('all', json)
  let t = performance.now()
  JSON.parse(floorWx.getStorageSync('all'))
  const floorMs = performance.now() - t

  const cold = createWxRuntime({ storage: area, totalLimit: 1e10, perKeyLimit: 1e9 })
  t = performance.now()
  const bus = createBus({ url, platform: cold, outbox: big(n) })
  bus.send('Chat', PAYLOAD).catch(() => {})
  // Its first commit runs at the end of the task: counted.
  await Promise.resolve()
  const coldStartMs = performance.now() - t
  if (bus.queued !== n + 1) throw new Error(`cold start found ${bus.queued - 1} of ${n}`)
  cold.control.kill()
  bus.close()
  return { commitMaxMs, bytesPerMessage, keys, coldStartMs, floorMs, heapPerMessage, envelopeBytes }
}

/**
 * Heap per message of memory-only outboxes holding `n` each, after forced collections: what the
 * messages add to an outbox once it exists (its own fixed cost, a few KB, would otherwise
 * dominate at 1,000). Measured before anything else in the bench, so no garbage of the rest (a
 * closed bus, its storage) is collected in between.
 */
function heap(n: number): number {
  // At least 10,000 messages in all (several outboxes of `n`): V8 allocates in steps of tens of KB,
  // a tenth of what 1,000 messages take.
  const outboxes = Array.from({ length: Math.max(1, Math.ceil(10_000 / n)) }, () =>
    createOutbox(outboxSettings(big(n))),
  )
  for (const memory of outboxes) if (memory.size !== 0) throw new Error('not empty')
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (const memory of outboxes)
    for (let i = 0; i < n; i++) memory.enqueue('Chat', { text: 'x'.repeat(60), n: i })
  gc()
  gc()
  const used = process.memoryUsage().heapUsed - before
  for (const memory of outboxes) if (memory.size !== n) throw new Error('lost')
  return used / (n * outboxes.length)
}

/** Median and spread of three runs. */
function stat(values: number[]) {
  const s = values.slice().sort((a, b) => a - b)
  const r = (x: number) => Math.round(x * 100) / 100
  return { median: r(s[1]!), min: r(s[0]!), max: r(s[2]!) }
}

export async function benchDepth(depths = [1000, 10_000, 100_000]) {
  const rows = []
  // A warm-up first: the code and type feedback the first enqueues compile would count as theirs.
  heap(1000)
  const heaps = depths.map((n) => [heap(n), heap(n), heap(n)])
  for (const [i, n] of depths.entries()) {
    const runs = [await run(n, heaps[i]![0]!), await run(n, heaps[i]![1]!), await run(n, heaps[i]![2]!)]
    const of = (k: keyof Run) => stat(runs.map((x) => x[k]))
    rows.push({
      queued: n,
      envelopeBytes: Math.round(runs[0]!.envelopeBytes),
      commitMaxMs: of('commitMaxMs'),
      bytesPerMessage: of('bytesPerMessage'),
      keys: of('keys'),
      coldStartMs: of('coldStartMs'),
      floorMs: of('floorMs'),
      coldStartOverFloor: stat(runs.map((x) => x.coldStartMs / x.floorMs)),
      heapPerMessage: of('heapPerMessage'),
      heapOverEnvelope: stat(runs.map((x) => x.heapPerMessage / x.envelopeBytes)),
    })
  }
  return rows
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const depths = process.argv.slice(2).map(Number)
  benchDepth(depths.length ? depths : undefined).then((rows) => console.log(JSON.stringify(rows, null, 2)))
}

/**
 * Storage cost of the outbox as its queue grows from 0 to 10,000 messages of 100-byte payloads,
 * enqueued one per tick (a commit after each) and in bursts of 100 per tick, measured through a
 * counting storage adapter. The naive design of the seeds (the whole queue as one JSON value
 * under one key, rewritten every tick) runs in the same process for comparison.
 *
 * Run: npx tsx bench/outbox.ts
 */
import { pathToFileURL } from 'node:url'
import { createOutbox } from '../src/outbox'
import { createCountingStorage } from '../test/outbox.storage'

export interface OutboxBenchRow {
  design: 'outbox' | 'naive'
  mode: 'one per tick' | 'bursts of 100'
  messages: number
  writes: number
  bytes: number
  writesPerMessage: number
  bytesPerMessage: number
  /** Bytes written per message over the last 100 messages before each queue size: flat or growing. */
  marginal: Record<number, number>
  /** Wall time of the run, ms. */
  ms: number
}

export interface OutboxBenchResult {
  envelopeBytes: number
  rows: OutboxBenchRow[]
  targets: { writesOnePerTick: number; writesBursts: number; bytesPerMessage: number }
  /** The outbox rows meet every target. */
  pass: boolean
}

const PAYLOAD = 'x'.repeat(100)
const CHECKPOINTS = [1000, 5000, 10_000]

function measure(design: OutboxBenchRow['design'], burst: number, total: number): OutboxBenchRow {
  // Buffer.byteLength: the naive design writes gigabytes in all, too many for a JS loop.
  const storage = createCountingStorage(undefined, (text) => Buffer.byteLength(text))
  const started = performance.now()
  const marginal: Record<number, number> = {}
  let windowStart = 0
  let enqueueTick: (n: number) => void
  if (design === 'outbox') {
    const outbox = createOutbox({ storage, maxMessages: total, maxBytes: 100 * 1024 * 1024 })
    enqueueTick = (n) => {
      for (let i = 0; i < n; i++) outbox.enqueue('Chat', PAYLOAD)
      // What the setTimeout(0) commit does at the end of the tick.
      outbox.commit()
    }
  } else {
    // The seeds' design, made as cheap as it can be: each envelope serialized once, the
    // queue's JSON grown by concatenation, and the whole of it written every tick.
    let body = ''
    let seq = 1
    enqueueTick = (n) => {
      for (let i = 0; i < n; i++) {
        const e = {
          id: 'V1StGXR8_Z5jdHi6B-myT',
          seq: seq++,
          op: 'Chat',
          payload: PAYLOAD,
          createdAt: 0,
          expiresAt: 0,
        }
        body += (body ? ',' : '') + JSON.stringify(e)
      }
      storage.set('queue', `[${body}]`)
    }
  }
  for (let done = 0; done < total; ) {
    if (done % 100 === 0) windowStart = storage.counts.bytes
    const n = Math.min(burst, total - done)
    enqueueTick(n)
    done += n
    if (CHECKPOINTS.includes(done)) marginal[done] = (storage.counts.bytes - windowStart) / 100
  }
  const { set: writes, bytes } = storage.counts
  return {
    design,
    mode: burst === 1 ? 'one per tick' : 'bursts of 100',
    messages: total,
    writes,
    bytes,
    writesPerMessage: writes / total,
    bytesPerMessage: bytes / total,
    marginal,
    ms: performance.now() - started,
  }
}

export function benchOutbox(total = 10_000): OutboxBenchResult {
  const envelope = createOutbox().enqueue('Chat', PAYLOAD)
  const envelopeBytes = JSON.stringify(envelope).length
  const rows = [
    measure('outbox', 1, total),
    measure('outbox', 100, total),
    measure('naive', 1, total),
    measure('naive', 100, total),
  ]
  const targets = { writesOnePerTick: 1, writesBursts: 0.1, bytesPerMessage: 2 * envelopeBytes + 200 }
  const pass = rows
    .filter((r) => r.design === 'outbox')
    .every(
      (r) =>
        r.writesPerMessage <= (r.mode === 'one per tick' ? targets.writesOnePerTick : targets.writesBursts) &&
        r.bytesPerMessage <= targets.bytesPerMessage &&
        Object.values(r.marginal).every((b) => b <= targets.bytesPerMessage),
    )
  return { envelopeBytes, rows, targets, pass }
}

function print(result: OutboxBenchResult): void {
  const { targets } = result
  console.log(`envelope: ${result.envelopeBytes} bytes (100-byte payload)`)
  console.log(
    `targets: writes/msg <= ${targets.writesOnePerTick} one per tick, <= ${targets.writesBursts} in bursts; ` +
      `bytes/msg <= ${targets.bytesPerMessage} (2 x envelope + 200), flat as the queue grows`,
  )
  const cols = [
    'design',
    'mode',
    'writes/msg',
    'bytes/msg',
    ...CHECKPOINTS.map((n) => `bytes/msg @${n}`),
    'ms',
  ]
  const lines = result.rows.map((r) => [
    r.design,
    r.mode,
    r.writesPerMessage.toFixed(3),
    r.bytesPerMessage.toFixed(0),
    ...CHECKPOINTS.map((n) => (r.marginal[n] ?? Number.NaN).toFixed(0)),
    r.ms.toFixed(0),
  ])
  const widths = cols.map((c, i) => Math.max(c.length, ...lines.map((l) => l[i]!.length)))
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  console.log(row(cols))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const l of lines) console.log(row(l))
  console.log(result.pass ? 'outbox: all targets met' : 'outbox: TARGETS MISSED')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) print(benchOutbox())

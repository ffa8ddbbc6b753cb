/**
 * Storage cost of the outbox as its queue grows from 0 to 10,000 messages of 100-byte payloads,
 * enqueued one per tick (a commit after each) and in bursts of 100 per tick, and as a queue of
 * 10,000 (stored in bursts of 100) drains, delivered one per tick and 32 per tick (the default
 * window), measured through a counting storage adapter. The naive design of the seeds (the whole
 * queue as one JSON value under one key, rewritten every tick) runs in the same process for
 * comparison. Deletes are counted apart from writes.
 *
 * Run: npx tsx bench/outbox.ts [total]
 */
import { pathToFileURL } from 'node:url'
import { outboxSettings } from '../src/bus/options'
import { createOutbox } from '../src/outbox'
import type { Storage } from '../src/platform/types'
import { createCountingStorage } from '../test/outbox.storage'

export interface OutboxBenchRow {
  design: 'outbox' | 'naive'
  mode: 'one per tick' | 'bursts of 100' | 'drain 1 per tick' | 'drain 32 per tick'
  messages: number
  writes: number
  deletes: number
  bytes: number
  writesPerMessage: number
  deletesPerMessage: number
  bytesPerMessage: number
  /**
   * Bytes written per message over the last 100 messages before each checkpoint (queue size when
   * enqueuing, messages delivered when draining): flat or growing.
   */
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

/** One design under test: a tick that enqueues `n` messages, and a tick that delivers up to `n`. */
interface Design {
  enqueueTick(n: number): void
  /** Returns how many were delivered. */
  drainTick(n: number): number
}

function outboxDesign(storage: Storage, total: number): Design {
  const outbox = createOutbox(outboxSettings({ storage, maxMessages: total, maxBytes: 100 * 1024 * 1024 }))
  return {
    enqueueTick(n) {
      for (let i = 0; i < n; i++) outbox.enqueue('Chat', PAYLOAD)
      // What the setTimeout(0) commit does at the end of the tick.
      outbox.commit()
    },
    drainTick(n) {
      let done = 0
      for (let e = done < n && outbox.next(); e; e = ++done < n && outbox.next()) outbox.sent(e.id)
      outbox.commit()
      return done
    },
  }
}

/**
 * The seeds' design, made as cheap as it can be: each envelope serialized once, the queue's JSON
 * grown by concatenation (and cut from the front as it drains), and the whole of it written every tick.
 */
function naiveDesign(storage: Storage): Design {
  let body = ''
  /** Where each queued envelope starts in `body`. */
  const starts: number[] = []
  let first = 0
  let seq = 1
  const write = () => storage.set('queue', `[${body}]`)
  return {
    enqueueTick(n) {
      for (let i = 0; i < n; i++) {
        const e = {
          id: 'V1StGXR8_Z5jdHi6B-myT',
          seq: seq++,
          op: 'Chat',
          payload: PAYLOAD,
          createdAt: 0,
          expiresAt: 0,
        }
        starts.push(body.length + (body ? 1 : 0))
        body += (body ? ',' : '') + JSON.stringify(e)
      }
      write()
    },
    drainTick(n) {
      const done = Math.min(n, starts.length - first)
      first += done
      const cut = first < starts.length ? starts[first]! : body.length
      body = body.slice(cut)
      for (let i = first; i < starts.length; i++) starts[i]! -= cut
      write()
      return done
    },
  }
}

function measure(
  design: OutboxBenchRow['design'],
  mode: OutboxBenchRow['mode'],
  total: number,
): OutboxBenchRow {
  // Buffer.byteLength: the naive design writes gigabytes in all, too many for a JS loop.
  const storage = createCountingStorage(undefined, (text) => Buffer.byteLength(text))
  const subject = design === 'outbox' ? outboxDesign(storage, total) : naiveDesign(storage)
  const draining = mode.startsWith('drain')
  const perTick = mode === 'one per tick' || mode === 'drain 1 per tick' ? 1 : draining ? 32 : 100
  if (draining) {
    // The queue to drain, stored in bursts of 100; not measured.
    for (let done = 0; done < total; done += 100) subject.enqueueTick(Math.min(100, total - done))
    storage.reset()
  }
  const started = performance.now()
  const marginal: Record<number, number> = {}
  /** Where the window of the last 100 (or a few more) messages before the next checkpoint starts. */
  let window = { done: 0, bytes: 0 }
  for (let done = 0; done < total; ) {
    const checkpoint = CHECKPOINTS.find((c) => c > done)
    if (checkpoint !== undefined && done <= checkpoint - 100) window = { done, bytes: storage.counts.bytes }
    const n = Math.min(perTick, total - done)
    if (draining) done += subject.drainTick(n)
    else {
      subject.enqueueTick(n)
      done += n
    }
    if (checkpoint !== undefined && done >= checkpoint)
      marginal[checkpoint] = (storage.counts.bytes - window.bytes) / (done - window.done)
  }
  const { set: writes, del: deletes, bytes } = storage.counts
  return {
    design,
    mode,
    messages: total,
    writes,
    deletes,
    bytes,
    writesPerMessage: writes / total,
    deletesPerMessage: deletes / total,
    bytesPerMessage: bytes / total,
    marginal,
    ms: performance.now() - started,
  }
}

export function benchOutbox(total = 10_000): OutboxBenchResult {
  const envelope = createOutbox(outboxSettings()).enqueue('Chat', PAYLOAD)
  const envelopeBytes = JSON.stringify(envelope).length
  const modes = ['one per tick', 'bursts of 100', 'drain 1 per tick', 'drain 32 per tick'] as const
  const rows = (['outbox', 'naive'] as const).flatMap((design) =>
    modes.map((mode) => measure(design, mode, total)),
  )
  // Records are merged as the queue grows (few keys at any depth), so an envelope is written
  // about three times: up to 4 x the envelope is allowed for it.
  const targets = { writesOnePerTick: 1, writesBursts: 0.1, bytesPerMessage: 4 * envelopeBytes }
  const onePerTick = (r: OutboxBenchRow) => r.mode === 'one per tick' || r.mode === 'drain 1 per tick'
  const pass = rows
    .filter((r) => r.design === 'outbox')
    .every(
      (r) =>
        r.writesPerMessage <= (onePerTick(r) ? targets.writesOnePerTick : targets.writesBursts) &&
        r.bytesPerMessage <= targets.bytesPerMessage,
    )
  return { envelopeBytes, rows, targets, pass }
}

/** Bytes per message: whole bytes, with a decimal below 10. */
const bytes = (n: number) => n.toFixed(n < 10 ? 1 : 0)

function print(result: OutboxBenchResult): void {
  const { targets } = result
  console.log(`envelope: ${result.envelopeBytes} bytes (100-byte payload)`)
  console.log(
    `targets: writes/msg <= ${targets.writesOnePerTick} one per tick, <= ${targets.writesBursts} in bursts (32 per tick draining); ` +
      `bytes/msg <= ${targets.bytesPerMessage} (4 x envelope), flat as the queue grows`,
  )
  const cols = [
    'design',
    'mode',
    'writes/msg',
    'deletes/msg',
    'bytes/msg',
    ...CHECKPOINTS.map((n) => `bytes/msg @${n}`),
    'ms',
  ]
  const lines = result.rows.map((r) => [
    r.design,
    r.mode,
    r.writesPerMessage.toFixed(3),
    r.deletesPerMessage.toFixed(3),
    bytes(r.bytesPerMessage),
    ...CHECKPOINTS.map((n) => bytes(r.marginal[n] ?? Number.NaN)),
    r.ms.toFixed(0),
  ])
  const widths = cols.map((c, i) => Math.max(c.length, ...lines.map((l) => l[i]!.length)))
  const row = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  console.log(row(cols))
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`)
  for (const l of lines) console.log(row(l))
  console.log(result.pass ? 'outbox: all targets met' : 'outbox: TARGETS MISSED')
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href)
  print(benchOutbox(Number(process.argv[2]) || undefined))

/**
 * Client → server, in numbers and a table: per client, what was sent and what the servers got
 * (or, against a user's server, what the delivery promises said), how fast faults were noticed
 * and recovered from; and the verdict over both directions (the other is demo/push-report.ts).
 */
import type { ClientEvent } from './client'
import type { PushResult } from './push-report'
import { pushVerdict } from './push-report'
import { render } from './table'
import type { Fault } from './timeline'

export interface ClientResult {
  name: string
  sent: number
  /** Distinct messages that arrived (at the server; with --url, whose send() promise resolved). */
  delivered: number
  /** Sent but never arrived. */
  lost: number
  /** Repeats the server dropped by message id (resends after lost acks); undefined with --url (their server knows). */
  repeats?: number
  /**
   * Messages a server handler ran for a second time: a resend that the duplicate window no longer
   * knew (the memory engine's window goes with a restart). At least once allows it; it is shown.
   */
  twice?: number
  /** First arrivals whose n was below one that arrived before it. */
  outOfOrder: number
  /** Times the bus came back to ready after losing it (a cold start counts). */
  reconnects: number
  /** Worst ms from a link freezing to this client noticing (leaving ready); undefined when never frozen. */
  noticeMs?: number
  /** Worst ms from a fault's cause going away to this client's next ready; undefined when never hit. */
  recoverMs?: number
}

/** Counts first arrivals of one client's messages, and checks their order as they come. */
export function createTally() {
  const seen = new Set<number>()
  let highest = -1
  let outOfOrder = 0
  let twice = 0
  return {
    /** Records an arrival; false when `n` had arrived before. */
    add(n: number): boolean {
      if (seen.has(n)) {
        twice++
        return false
      }
      seen.add(n)
      if (n < highest) outOfOrder++
      else highest = n
      return true
    },
    /** Distinct messages numbered below `sent`. */
    delivered(sent: number): number {
      let count = 0
      for (const n of seen) if (n < sent) count++
      return count
    },
    get size() {
      return seen.size
    },
    get outOfOrder() {
      return outOfOrder
    },
    /** Arrivals of a number that had arrived before. */
    get twice() {
      return twice
    },
  }
}

export type Tally = ReturnType<typeof createTally>

function readyAt(log: ClientEvent[], at: number): boolean {
  let ready = false
  for (const e of log) {
    if (e.at > at) break
    ready = e.kind === 'ready'
  }
  return ready
}

/** Worst time from a freeze to this client leaving ready; Infinity when it never noticed. */
export function worstNotice(index: number, log: ClientEvent[], faults: Fault[]): number | undefined {
  let worst: number | undefined
  for (const fault of faults) {
    if (fault.kind !== 'freeze' || !fault.clients.includes(index) || !readyAt(log, fault.start)) continue
    const down = log.find((e) => e.kind === 'down' && e.at >= fault.start)
    const ms = down ? down.at - fault.start : Number.POSITIVE_INFINITY
    worst = Math.max(worst ?? 0, ms)
  }
  return worst
}

/**
 * Worst time from a fault's cause going away (pass, online, show, cold start, server up; a reset's
 * own moment; for lost acks, the moment their links were dropped) to this client's next ready. A fault counts for a client it hit that was not ready
 * when it began or left ready before the next fault began. A client still reconnecting when the
 * next fault hits it too (a backoff of up to `maxDelay` can outlast the quiet time between faults)
 * is measured at that next fault instead, where it starts not ready. Never ready again: Infinity.
 */
export function worstRecovery(index: number, log: ClientEvent[], faults: Fault[]): number | undefined {
  let worst: number | undefined
  faults.forEach((fault, i) => {
    if (fault.end === undefined || !fault.clients.includes(index)) return
    const end = fault.end
    const next = faults[i + 1]
    const nextStart = next ? next.start : Number.POSITIVE_INFINITY
    const hit =
      !readyAt(log, fault.start) ||
      log.some((e) => e.kind === 'down' && e.at >= fault.start && e.at < nextStart)
    if (!hit) return
    const ready = log.find((e) => e.kind === 'ready' && e.at >= end)
    if (next?.clients.includes(index) && (!ready || ready.at >= next.start)) return
    worst = Math.max(worst ?? 0, ready ? ready.at - end : Number.POSITIVE_INFINITY)
  })
  return worst
}

export function totals(rows: ClientResult[]): ClientResult {
  const sum = (pick: (r: ClientResult) => number | undefined) => rows.reduce((s, r) => s + (pick(r) ?? 0), 0)
  const worst = (pick: (r: ClientResult) => number | undefined) => {
    const values = rows.map(pick).filter((v): v is number => v !== undefined)
    return values.length ? Math.max(...values) : undefined
  }
  return {
    name: 'total',
    sent: sum((r) => r.sent),
    delivered: sum((r) => r.delivered),
    lost: sum((r) => r.lost),
    repeats: rows.some((r) => r.repeats !== undefined) ? sum((r) => r.repeats) : undefined,
    twice: rows.some((r) => r.twice !== undefined) ? sum((r) => r.twice) : undefined,
    outOfOrder: sum((r) => r.outOfOrder),
    reconnects: sum((r) => r.reconnects),
    noticeMs: worst((r) => r.noticeMs),
    recoverMs: worst((r) => r.recoverMs),
  }
}

const seconds = (ms: number | undefined) =>
  ms === undefined ? '-' : ms === Number.POSITIVE_INFINITY ? 'never' : `${(ms / 1000).toFixed(2)} s`

const COLUMNS: Array<[string, (r: ClientResult) => string]> = [
  ['client', (r) => r.name],
  ['sent', (r) => String(r.sent)],
  ['delivered', (r) => String(r.delivered)],
  ['lost', (r) => String(r.lost)],
  ['repeats dropped', (r) => (r.repeats === undefined ? '-' : String(r.repeats))],
  ['handled twice', (r) => (r.twice === undefined ? '-' : String(r.twice))],
  ['out of order', (r) => String(r.outOfOrder)],
  ['reconnects', (r) => String(r.reconnects)],
  ['worst notice (freeze)', (r) => seconds(r.noticeMs)],
  ['worst recovery', (r) => seconds(r.recoverMs)],
]

/** The client → server table with a totals row (worst times, summed counts). */
export const renderTable = (rows: ClientResult[]) => render(COLUMNS, [...rows, totals(rows)])

/**
 * The verdict over both directions: PASS only with nothing lost and nothing out of order either
 * way (and, server → client, no frame seen twice). `push` is absent with --url: the demo cannot
 * know what the user's server pushed.
 */
export function verdict(
  rows: ClientResult[],
  faults: Fault[],
  push?: PushResult[],
): { ok: boolean; text: string } {
  const t = totals(rows)
  const kinds = Array.from(new Set(faults.map((f) => f.label)))
  const through = kinds.length ? ` Through ${kinds.length} kinds of fault: ${kinds.join('; ')}.` : ''
  const down = push ? pushVerdict(push) : undefined
  const ok = t.lost === 0 && t.outOfOrder === 0 && (!down || down.ok)
  const up =
    `client → server ${t.sent} sent, ${t.delivered} delivered, ${t.lost} lost, ` +
    `${t.outOfOrder} out of order`
  const text = `${ok ? 'PASS' : 'FAIL'}: ${up}; ${down ? down.text : 'server → client not checked (--url)'}.${through}`
  return { ok, text }
}

/**
 * Server → client: for each client, what the servers pushed to it (confirmed, with positions)
 * against what its handlers saw, over both of its streams (its user's and the room's).
 *
 * A pushed frame the handlers never saw is one of two things:
 * - behind a resync: the client got a `resync` for that stream that covers it (same epoch and at
 *   or before the resync's position; or an older epoch, pushed before the resync arrived), and
 *   had not seen a later frame of its epoch before that (a frame skipped earlier was missed
 *   silently: a loss). The server said "your history is gone, reload": the app's reload is what
 *   brings it back. Counted and shown, not hidden as delivered.
 * - lost: anything else. Lost frames fail the run.
 */
import type { Resync, Seen } from './client'
import type { PushRecord } from './pusher'
import { render } from './table'

export interface PushResult {
  name: string
  /** Frames confirmed pushed to this client (its user's stream and the room's). */
  pushed: number
  /** Of those, the ones its handlers saw. */
  delivered: number
  /** Never seen, and no resync covers them. */
  lost: number
  /** Handler calls for a frame already seen. */
  twice: number
  /** First sights of a frame numbered below one seen before it, in the same stream. */
  outOfOrder: number
  /** `resync` events. */
  resyncs: number
  /** Never seen, but behind a resync the client got (left to the app's reload). */
  behindResync: number
  /** For a client that was killed: frames pushed while it was dead, and how many of them it saw after its cold start. */
  whileDead?: { pushed: number; recovered: number }
  /** The first few lost frames, to look into a failure: `user k=12 @13/epoch`. */
  lostFrames: string[]
}

interface StreamTally {
  delivered: number
  /** The frames lost, in push order. */
  lost: PushRecord[]
  twice: number
  outOfOrder: number
  behindResync: number
  got: Set<number>
}

function tallyStream(pushes: PushRecord[], seen: Seen[], resyncs: Resync[]): StreamTally {
  const got = new Set<number>()
  let twice = 0
  let outOfOrder = 0
  let highest = -1
  for (const s of seen) {
    if (got.has(s.k)) twice++
    else {
      got.add(s.k)
      if (s.k < highest) outOfOrder++
      else highest = s.k
    }
  }
  // A resync covers a missed frame when the frame is in the gap it announced: at or before its tip
  // in its epoch, or of an older epoch and pushed before it arrived; and the client had not already
  // seen a later frame of that epoch before it (then the frame was skipped silently, not resynced).
  const covers = (r: Resync, p: PushRecord) =>
    (r.epoch === p.epoch ? p.offset <= r.offset : p.at < r.at) &&
    !seen.some((s) => s.epoch === p.epoch && s.offset > p.offset && s.at < r.at)
  let delivered = 0
  let behindResync = 0
  const lost: PushRecord[] = []
  for (const p of pushes) {
    if (got.has(p.k)) delivered++
    else if (resyncs.some((r) => covers(r, p))) behindResync++
    else lost.push(p)
  }
  return { delivered, behindResync, lost, twice, outOfOrder, got }
}

export interface PushInput {
  name: string
  user: PushRecord[]
  room: PushRecord[]
  seen: { user: Seen[]; room: Seen[] }
  resyncs: Resync[]
  deaths: Array<{ from: number; to?: number }>
}

export function pushResult(input: PushInput): PushResult {
  const user = tallyStream(
    input.user,
    input.seen.user,
    input.resyncs.filter((r) => r.stream === 'user'),
  )
  const room = tallyStream(
    input.room,
    input.seen.room,
    input.resyncs.filter((r) => r.stream === 'room'),
  )
  const result: PushResult = {
    name: input.name,
    pushed: input.user.length + input.room.length,
    delivered: user.delivered + room.delivered,
    lost: user.lost.length + room.lost.length,
    twice: user.twice + room.twice,
    outOfOrder: user.outOfOrder + room.outOfOrder,
    resyncs: input.resyncs.length,
    behindResync: user.behindResync + room.behindResync,
    lostFrames: [
      ...user.lost.map((p) => `user k=${p.k} @${p.offset}/${p.epoch}`),
      ...room.lost.map((p) => `room k=${p.k} @${p.offset}/${p.epoch}`),
    ].slice(0, 5),
  }
  if (input.deaths.length) {
    // Asked for after the kill, before the cold start: no life of the app was there to get them live.
    const dead = (p: PushRecord) =>
      input.deaths.some((d) => p.at >= d.from && (d.to === undefined || p.at < d.to))
    const u = input.user.filter(dead)
    const r = input.room.filter(dead)
    result.whileDead = {
      pushed: u.length + r.length,
      recovered: u.filter((p) => user.got.has(p.k)).length + r.filter((p) => room.got.has(p.k)).length,
    }
  }
  return result
}

export function pushTotals(rows: PushResult[]): PushResult {
  const sum = (pick: (r: PushResult) => number) => rows.reduce((s, r) => s + pick(r), 0)
  const dead = rows.filter((r) => r.whileDead)
  return {
    name: 'total',
    pushed: sum((r) => r.pushed),
    delivered: sum((r) => r.delivered),
    lost: sum((r) => r.lost),
    twice: sum((r) => r.twice),
    outOfOrder: sum((r) => r.outOfOrder),
    resyncs: sum((r) => r.resyncs),
    behindResync: sum((r) => r.behindResync),
    lostFrames: [],
    whileDead: dead.length
      ? {
          pushed: dead.reduce((s, r) => s + r.whileDead!.pushed, 0),
          recovered: dead.reduce((s, r) => s + r.whileDead!.recovered, 0),
        }
      : undefined,
  }
}

const PUSH_COLUMNS: Array<[string, (r: PushResult) => string]> = [
  ['client', (r) => r.name],
  ['pushed', (r) => String(r.pushed)],
  ['delivered', (r) => String(r.delivered)],
  ['lost', (r) => String(r.lost)],
  ['seen twice', (r) => String(r.twice)],
  ['out of order', (r) => String(r.outOfOrder)],
  ['resyncs', (r) => String(r.resyncs)],
  ['behind a resync', (r) => String(r.behindResync)],
  [
    'pushed while killed: recovered',
    (r) => (r.whileDead ? `${r.whileDead.recovered}/${r.whileDead.pushed}` : '-'),
  ],
]

/** The server → client table, with a totals row. */
export const renderPushTable = (rows: PushResult[]) => render(PUSH_COLUMNS, [...rows, pushTotals(rows)])

/** The server → client half of the verdict: fails on a lost or reordered frame (a frame seen twice fails too: handlers must see each once). */
export function pushVerdict(rows: PushResult[]): { ok: boolean; text: string } {
  const t = pushTotals(rows)
  const ok = t.lost === 0 && t.outOfOrder === 0 && t.twice === 0
  let text =
    `server → client ${t.pushed} pushed, ${t.delivered} delivered, ${t.lost} lost, ` +
    `${t.twice} seen twice, ${t.outOfOrder} out of order`
  if (t.resyncs) text += `, ${t.resyncs} resyncs (${t.behindResync} pushed frames behind them)`
  if (t.whileDead) text += `, ${t.whileDead.recovered}/${t.whileDead.pushed} pushed while killed recovered`
  return { ok, text }
}

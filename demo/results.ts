/** The run's per-client rows, both directions, from what the servers and the clients recorded. */
import type { Client } from './client'
import { userOf } from './client'
import { type PushResult, pushResult } from './push-report'
import type { Pusher } from './pusher'
import { type ClientResult, type Tally, worstNotice, worstRecovery } from './report'
import type { Fault } from './timeline'

/** Client → server, per client: `tallies` are the arrivals, `repeats` the servers' dropped repeats by user (absent with --url). */
export function clientRows(
  clients: Client[],
  tallies: Tally[],
  faults: Fault[],
  repeats: Map<string, number> | undefined,
): ClientResult[] {
  return clients.map((c, i) => {
    const tally = tallies[i]!
    const delivered = tally.delivered(c.sent)
    return {
      name: c.name,
      sent: c.sent,
      delivered,
      lost: c.sent - delivered,
      repeats: repeats ? (repeats.get(userOf(i)) ?? 0) : undefined,
      twice: repeats ? tally.twice : undefined,
      outOfOrder: tally.outOfOrder,
      reconnects: Math.max(0, c.log.filter((e) => e.kind === 'ready').length - 1),
      noticeMs: worstNotice(i, c.log, faults),
      recoverMs: worstRecovery(i, c.log, faults),
    }
  })
}

/** Server → client, per client, from the pusher's confirmations and what the client's handlers saw. */
export function pushRows(clients: Client[], pusher: Pusher): PushResult[] {
  return clients.map((c, i) =>
    pushResult({
      name: c.name,
      user: pusher.user[i]!,
      room: pusher.room,
      seen: c.seen,
      resyncs: c.resyncs,
      deaths: c.deaths,
    }),
  )
}

/**
 * What both engines keep, and for how long: the options the memory and the Redis engine share,
 * declared once with their defaults and their bounds.
 */
import { MpbusError } from '../errors'

const DAY = 24 * 60 * 60 * 1000

export interface EngineOptions {
  /** Frames kept per stream for resume; older ones are trimmed. @default 1000 */
  history?: number
  /**
   * ms a stream's history and epoch live after its last push (0: forever). A client that comes
   * back later resyncs. @default 8 days
   */
  historyTtl?: number
  /**
   * ms a message id stays in a user's duplicate window (0: forever). At least the client outbox's
   * ttl, so a message resent as late as the client may resend it is still recognised. @default 8 days
   */
  dedupTtl?: number
  /**
   * Message ids kept per user in the duplicate window; past it the oldest is forgotten first. A
   * resend comes from an outbox of at most 1000 messages (the client's default), so this covers
   * ten outboxes of one user sending at once. @default 10000
   */
  dedupLimit?: number
  /**
   * ms a message id is claimed while its handler runs: a resend meanwhile, to any node, is neither
   * handled nor acked (its connection closes; the client resends later). A handler that never
   * settles, or a node that dies mid-handler, holds it no longer: the resend is handled once the
   * claim expires. Longer than your slowest handler. @default 30000
   */
  claimTtl?: number
}

/** Each option's default and the least whole number it takes. */
const SHARED: Record<keyof EngineOptions, [number, number]> = {
  history: [1000, 1],
  historyTtl: [8 * DAY, 0],
  dedupTtl: [8 * DAY, 0],
  dedupLimit: [10_000, 1],
  claimTtl: [30_000, 1],
}

/**
 * `options` with every shared option, and every one of `more` (name: [default, least]), set and
 * checked: a value out of range is BAD_OPTION naming it.
 */
export function engineSettings<T extends EngineOptions>(
  options: T,
  more: Record<string, [number, number]> = {},
): Required<EngineOptions> & Record<string, number> {
  const out: Record<string, number> = {}
  const table: Record<string, [number, number]> = Object.assign({}, SHARED, more)
  for (const name of Object.keys(table)) {
    const [fallback, least] = table[name]!
    const given = (options as Record<string, unknown>)[name]
    const value = given === undefined ? fallback : given
    if (!(Number.isInteger(value) && (value as number) >= least))
      throw new MpbusError('BAD_OPTION', `${name} must be an integer >= ${least}: ${String(value)}`)
    out[name] = value as number
  }
  return out as Required<EngineOptions> & Record<string, number>
}

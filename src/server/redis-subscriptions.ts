/**
 * Which streams this node hears: one channel per stream, subscribed while a connection of this
 * node reads it, so that a node hears only what its connections read (a user's stream also
 * carries that user's room changes and session end: only the nodes where the user is connected
 * hear them). As Centrifugo's Redis engine subscribes per channel, only to channels with local
 * subscribers: https://centrifugal.dev/docs/server/engines#redis-engine
 *
 * A subscription is proven before a reader relies on it: `listen` resolves once Redis answered
 * its SUBSCRIBE (or SSUBSCRIBE), so what is appended from then on is heard. When a line (a
 * subscriber connection) fails, whatever its channels carried meanwhile is lost: the readers of
 * its streams are told to resume (`reset`), and each of those subscriptions is proven again, with
 * a fresh SUBSCRIBE, before the next reader relies on it (node-redis subscribes again by itself
 * after a reconnect, but does not tell when).
 */
import type { RedisLink } from './redis-link'

interface Subscription {
  /** Local readers. */
  count: number
  channel: string
  /** Its line, as found by its last proof. */
  line?: string
  /** The line's failure count when Redis last answered its subscribe; -1: never. */
  proven: number
  proving?: Promise<void>
}

export interface Subscriptions {
  /** Counts a local reader of `stream`; resolves once what is appended to it from now on is heard. */
  listen(stream: string): Promise<void>
  /** Undoes one `listen`; the last one unsubscribes. */
  unlisten(stream: string): void
  /** A line failed (undefined: every line): the streams it carried, which may have lost messages. */
  failed(line: string | undefined): string[]
  /** The stream a channel carries, if this node still reads it; a channel no one reads is let go. */
  streamOf(channel: string): string | undefined
  /** A line is back: the channels held for no reader (their unsubscribe failed) are let go. */
  sweep(): void
}

/** Runs `work` within the command timeout; a timeout counts as a failure of `line`. */
export type Timed = <T>(work: Promise<T>, what: string, line: string | undefined) => Promise<T>

export function createSubscriptions(
  link: () => Promise<RedisLink>,
  channelOf: (stream: string) => string,
  within: Timed,
): Subscriptions {
  const byStream = new Map<string, Subscription>()
  const byChannel = new Map<string, string>()
  /**
   * Channels node-redis may hold a listener for: from the subscribe asked until an unsubscribe
   * answered. node-redis keeps a listener whose unsubscribe failed (the line was down), and then
   * answers a subscribe to that channel at once without asking Redis, so such a subscribe proves
   * nothing: the proof unsubscribes it first.
   */
  const held = new Set<string>()
  /** Unsubscribes in flight, so that a channel is let go once. */
  const leaving = new Set<string>()
  /** Failures per line ('' for the one line of one Redis), and of every line at once. */
  const failures = new Map<string, number>()
  let everyLine = 0
  const failuresOf = (line: string) => (failures.get(line) || 0) + everyLine

  async function prove(s: Subscription): Promise<void> {
    const redis = await link()
    // Found anew each time: after a failover the slot's master is another.
    s.line = await within(redis.lineOf(s.channel), 'the channel’s shard', undefined)
    const seen = failuresOf(s.line)
    if (held.has(s.channel)) {
      await within(redis.unsubscribe(s.channel), `UNSUBSCRIBE ${s.channel}`, s.line)
      held.delete(s.channel)
    }
    held.add(s.channel)
    await within(redis.subscribe(s.channel), `SUBSCRIBE ${s.channel}`, s.line)
    if (failuresOf(s.line) !== seen) return prove(s)
    s.proven = seen
  }

  function check(s: Subscription): Promise<void> {
    if (s.proving) return s.proving
    if (s.line !== undefined && s.proven === failuresOf(s.line)) return Promise.resolve()
    const proving = prove(s).finally(() => {
      if (s.proving === proving) s.proving = undefined
    })
    s.proving = proving
    return proving
  }

  /** Unsubscribes a channel no local reader reads (once at a time; kept as held if it fails). */
  function letGo(channel: string): void {
    if (leaving.has(channel)) return
    leaving.add(channel)
    link()
      .then((redis) => redis.unsubscribe(channel))
      .then(
        () => {
          if (!byChannel.has(channel)) held.delete(channel)
        },
        () => {},
      )
      .then(() => leaving.delete(channel))
  }

  return {
    listen(stream) {
      let s = byStream.get(stream)
      if (!s) {
        s = { count: 0, channel: channelOf(stream), proven: -1 }
        byStream.set(stream, s)
        byChannel.set(s.channel, stream)
      }
      s.count++
      return check(s)
    },
    unlisten(stream) {
      const s = byStream.get(stream)
      if (!s || --s.count > 0) return
      byStream.delete(stream)
      byChannel.delete(s.channel)
      letGo(s.channel)
    },
    failed(line) {
      if (line === undefined) everyLine++
      else failures.set(line, (failures.get(line) || 0) + 1)
      const out: string[] = []
      // A subscription whose line is not known yet is being proven: its proof starts over.
      for (const [stream, s] of byStream)
        if (line === undefined || s.line === line || s.line === undefined) out.push(stream)
      return out
    },
    streamOf(channel) {
      const stream = byChannel.get(channel)
      if (stream === undefined) letGo(channel)
      return stream
    },
    sweep() {
      for (const channel of held) if (!byChannel.has(channel)) letGo(channel)
    },
  }
}

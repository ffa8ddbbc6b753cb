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
  /** Its line, once known. */
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
  /** The stream a channel carries, if this node still reads it. */
  streamOf(channel: string): string | undefined
}

export function createSubscriptions(
  link: () => Promise<RedisLink>,
  channelOf: (stream: string) => string,
  within: <T>(work: Promise<T>, what: string) => Promise<T>,
): Subscriptions {
  const byStream = new Map<string, Subscription>()
  const byChannel = new Map<string, string>()
  /** Failures per line ('' for the one line of one Redis), and of every line at once. */
  const failures = new Map<string, number>()
  let everyLine = 0
  const failuresOf = (line: string) => (failures.get(line) || 0) + everyLine

  async function prove(s: Subscription): Promise<void> {
    const redis = await link()
    if (s.line === undefined) s.line = await within(redis.lineOf(s.channel), 'the channel’s shard')
    const seen = failuresOf(s.line)
    // Subscribed before: a fresh SUBSCRIBE, so that its answer proves it (node-redis answers a
    // subscribe to a channel it already holds at once, without asking Redis).
    if (s.proven >= 0) await redis.unsubscribe(s.channel).catch(() => {})
    await within(redis.subscribe(s.channel), `SUBSCRIBE ${s.channel}`)
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
      link().then(
        (redis) => redis.unsubscribe(s.channel).catch(() => {}),
        () => {},
      )
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
    streamOf: (channel) => byChannel.get(channel),
  }
}

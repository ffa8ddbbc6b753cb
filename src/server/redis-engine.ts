/**
 * The Redis engine: several server processes on one Redis, or on a Redis Cluster, behave as one
 * server. History per stream in a Redis Stream (bounded, with a ttl), the duplicate window as a
 * hash and a sorted set per user, rooms as sets, and one channel per stream that only the nodes
 * reading it subscribe to (redis-subscriptions.ts; the scripts in redis-scripts.ts keep a
 * stream's appends and publications in one order). Needs the `redis` package (node-redis),
 * loaded on first use, so `mpbus/server` with the memory engine never requires it.
 */
import { randomBytes } from 'node:crypto'
import { MpbusError } from '../errors'
import { down, type LinkTarget, openLink, type RedisLink, within } from './redis-link'
import { endMessage, eventOf, leaveMessage } from './redis-messages'
import { type RedisEngine, type RedisEngineOptions, redisSettings } from './redis-options'
import {
  APPEND,
  CLAIM,
  FORGET,
  HANDLED,
  JOIN_ROOM,
  JOIN_USER,
  JOINED,
  LEAVE_USER,
  LOGIN,
  SINCE,
  TIP,
} from './redis-scripts'
import { createSubscriptions } from './redis-subscriptions'
import { roomStream, userStream } from './streams'
import type { EngineEvent, Position, Stored } from './types'

export type { RedisEngine, RedisEngineOptions } from './redis-options'

const newEpoch = () => randomBytes(6).toString('base64url')

export function redisEngine(options: RedisEngineOptions = {}): RedisEngine {
  const { prefix, url, history, historyTtl, dedupTtl, dedupLimit, claimTtl, connectTimeout, commandTimeout } =
    redisSettings(options)
  const target: LinkTarget = { url, cluster: options.cluster, connectTimeout, hear: (m, c) => hear(m, c) }
  // What the scripts publish with: sharded pub/sub on a cluster (redis-link.ts).
  const publish = options.cluster ? 'SPUBLISH' : 'PUBLISH'
  // Keys and channels tagged with their stream's name (a user's keys with the user's stream's):
  // on a cluster, what one script touches is in one slot.
  const key = (kind: string, stream: string) => `${prefix}:${kind}:{${stream}}`
  const meta = (stream: string) => key('m', stream)
  const log = (stream: string) => key('s', stream)
  const channelOf = (stream: string) => key('c', stream)
  const window = (user: string) => [key('w', userStream(user)), key('o', userStream(user))]
  const roomsOf = (user: string) => key('r', userStream(user))
  const joinsOf = (user: string) => key('j', userStream(user))
  const membersOf = (room: string) => key('u', roomStream(room))

  const listeners = new Set<(event: EngineEvent) => void>()
  const emit = (event: EngineEvent) => {
    for (const listener of Array.from(listeners)) listener(event)
  }
  let opened: Promise<RedisLink> | undefined
  let closed = false
  /** Lines known to be down, reported once per outage ('' for one Redis). */
  const downLines = new Set<string>()
  /** '1' once every master is known to keep what it acknowledged across a restart. */
  let durable = '0'

  /**
   * `work` within `commandTimeout`; past it, the line it ran on counts as failed (undefined:
   * every line; a function: found once it is needed), as when its connection drops.
   */
  const timed = <T>(
    work: Promise<T>,
    what: string,
    line: string | undefined | (() => Promise<string>),
  ): Promise<T> =>
    within(work, commandTimeout, () => {
      const error = down(`Redis did not answer ${what} in ${commandTimeout} ms`)
      if (typeof line !== 'function') trouble(line, error)
      else
        line().then(
          (l) => trouble(l, error),
          () => trouble(undefined, error),
        )
      return error
    })

  function trouble(line: string | undefined, error: unknown): void {
    if (closed) return
    const name = line === undefined ? '' : line
    const streams = subscriptions.failed(line)
    if (!downLines.has(name)) {
      downLines.add(name)
      emit({ type: 'error', error: down(`Redis connection lost: ${(error as Error).message}`, error) })
    }
    // What the failed line carried meanwhile is not heard: its readers resume.
    if (streams.length) emit({ type: 'reset', streams })
  }

  function hear(message: string, channel: string): void {
    // Undefined: heard after its last reader left (node-redis subscribed it again after a reconnect).
    const stream = subscriptions.streamOf(channel)
    if (stream === undefined) return
    try {
      const event = eventOf(message, stream)
      if (event) emit(event)
    } catch (e) {
      emit({ type: 'error', error: e as Error })
    }
  }

  function open(): Promise<RedisLink> {
    if (closed) return Promise.reject(new MpbusError('CLOSED', 'the Redis engine is closed'))
    if (!opened) {
      opened = openLink(target, {
        trouble,
        ready(line) {
          downLines.delete('')
          if (line !== undefined) downLines.delete(line)
          subscriptions.sweep()
          checkDurable().catch(() => {})
        },
      })
      opened.catch(() => {
        opened = undefined
      })
    }
    return opened
  }

  /** Asked on every connection's ready, the first included: a Redis restarted with other settings is seen. */
  async function checkDurable(): Promise<void> {
    const redis = await opened
    if (redis) durable = (await redis.durable()) ? '1' : '0'
  }

  const subscriptions = createSubscriptions(open, channelOf, timed)

  async function command(key: string, args: string[]): Promise<any> {
    const redis = await open()
    try {
      return await timed(redis.run(key, args), args[0]!, () => redis.lineOf(key))
    } catch (e) {
      throw e instanceof MpbusError ? e : down(`Redis: ${(e as Error).message}`, e)
    }
  }

  // EVAL, not EVALSHA: after a Redis restart a NOSCRIPT retry could reorder two appends.
  const script = (source: string, keys: string[], args: Array<string | number>) =>
    command(keys[0]!, ['EVAL', source, String(keys.length), ...keys, ...args.map(String)])
  /** The first arguments of every stream script (redis-scripts.ts, EPOCH). */
  const epochArgs = () => [newEpoch(), historyTtl, durable]
  const position = ([offset, epoch]: [unknown, unknown]): Position => ({
    offset: Number(offset),
    epoch: String(epoch),
  })
  /** A READ answer (redis-scripts.ts): the frames after `from`, or undefined. */
  const stored = (frames: string[] | null, from: Position): Stored[] | undefined =>
    frames ? frames.map((f, i) => ({ offset: from.offset + 1 + i, frame: JSON.parse(f) })) : undefined
  /** A JOINED answer: each room with the position the user joined it at. */
  const joinedOf = (rows: [string, string | null][]) => {
    const out: Record<string, Position | null> = {}
    for (const [room, at] of rows) {
      const space = at ? at.indexOf(' ') : -1
      out[room] = at ? { offset: Number(at.slice(0, space)), epoch: at.slice(space + 1) } : null
    }
    return out
  }

  return {
    async subscribe(listener) {
      listeners.add(listener)
      try {
        await open()
      } catch (e) {
        listeners.delete(listener)
        throw e
      }
      return () => void listeners.delete(listener)
    },
    listen: (stream) => subscriptions.listen(stream),
    unlisten: (stream) => subscriptions.unlisten(stream),
    async append(stream, frame) {
      const args = [...epochArgs(), history, publish, channelOf(stream), JSON.stringify(frame)]
      return position(await script(APPEND, [meta(stream), log(stream)], args))
    },
    async tip(stream) {
      return position(await script(TIP, [meta(stream)], epochArgs()))
    },
    async since(stream, from) {
      const args = [...epochArgs(), from.offset, from.epoch]
      return stored(await script(SINCE, [meta(stream), log(stream)], args), from)
    },
    async remember(user, id) {
      const claimed = await script(CLAIM, window(user), [id, claimTtl, dedupTtl, dedupLimit])
      return claimed === 1 ? true : claimed === 0 ? false : 'busy'
    },
    async handled(user, id) {
      await script(HANDLED, window(user), [id, 0, dedupTtl, dedupLimit])
    },
    async forget(user, id) {
      await script(FORGET, window(user), [id])
    },
    // A join and a leave are two scripts, one per slot: the room's members and the user's
    // rooms. In between, the room lists the user (join) or the user still lists the room (leave);
    // a node that dies there leaves that half, and the same call again completes it.
    async join(user, room) {
      const stream = roomStream(room)
      const at = position(await script(JOIN_ROOM, [meta(stream), membersOf(room)], [...epochArgs(), user]))
      const args = [room, `${at.offset} ${at.epoch}`, publish, channelOf(userStream(user))]
      await script(JOIN_USER, [roomsOf(user), joinsOf(user)], [...args, JSON.stringify(user)])
    },
    async leave(user, room) {
      const message = leaveMessage(user, room)
      const args = [room, publish, channelOf(userStream(user)), message]
      await script(LEAVE_USER, [roomsOf(user), joinsOf(user)], args)
      await command(membersOf(room), ['SREM', membersOf(room), user])
    },
    async rooms(user) {
      return ((await command(roomsOf(user), ['SMEMBERS', roomsOf(user)])) as string[]).sort()
    },
    async joined(user) {
      return joinedOf(await script(JOINED, [roomsOf(user), joinsOf(user)], []))
    },
    async login(user, from) {
      const own = userStream(user)
      const keys = [meta(own), log(own), roomsOf(user), joinsOf(user)]
      const args = [...epochArgs(), from ? from.offset : '', from ? from.epoch : '']
      const [rows, offset, epoch, frames] = await script(LOGIN, keys, args)
      return { joined: joinedOf(rows), tip: position([offset, epoch]), missed: from && stored(frames, from) }
    },
    async members(room) {
      return ((await command(membersOf(room), ['SMEMBERS', membersOf(room)])) as string[]).sort()
    },
    async end(user, reason) {
      const channel = channelOf(userStream(user))
      const message = endMessage(user, reason)
      await command(channel, [publish, channel, message])
    },
    async close() {
      closed = true
      listeners.clear()
      const was = opened
      opened = undefined
      if (!was) return
      const redis = await was.catch(() => undefined)
      if (redis) await redis.close()
    },
  }
}

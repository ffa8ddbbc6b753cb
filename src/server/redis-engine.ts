/**
 * The Redis engine: several server processes on one Redis behave as one server. History per
 * stream in a Redis Stream (bounded, with a ttl), the duplicate window as keys with a ttl, rooms
 * as sets, and fan-out through one pub/sub channel that every node hears (redis-scripts.ts keeps
 * appends and publications in one order). Needs the `redis` package (node-redis), loaded on
 * first use, so `mpbus/server` with the memory engine never requires it.
 */
import { randomBytes } from 'node:crypto'
import { MpbusError } from '../errors'
import { type EngineOptions, engineSettings } from './engine-options'
import { APPEND, BOOT, CLAIM, FORGET, HANDLED, JOIN, JOINED, LEAVE, SINCE, TIP } from './redis-scripts'
import { roomStream } from './streams'
import type { Engine, EngineEvent, Position, Stored } from './types'

export interface RedisEngineOptions extends EngineOptions {
  /** The Redis server. @default 'redis://127.0.0.1:6379' */
  url?: string
  /** Prefix of every key and of the channel: two apps on one Redis never mix. @default 'mpbus' */
  prefix?: string
  /**
   * ms `createServer` waits for Redis at start before it fails with `ENGINE_DOWN`; a refused or
   * failed connection fails it at once, with the connection's error as `cause`. @default 10000
   */
  connectTimeout?: number
  /**
   * ms every Redis command may take. Past it the engine counts as down, as when the connection
   * drops: the command fails with `ENGINE_DOWN`, every connection is told to resume (and its
   * login is refused with 1013 until Redis answers again), and it recovers by itself once Redis
   * answers. A command that timed out may still run when Redis comes back (a push then arrives
   * although it was reported as failed). @default 5000
   */
  commandTimeout?: number
}

/** The Redis engine answers with Promises; `close()` releases its two connections. */
export interface RedisEngine extends Engine {
  subscribe(listener: (event: EngineEvent) => void): Promise<() => void>
  append(stream: string, frame: Record<string, unknown>): Promise<Position>
  tip(stream: string): Promise<Position>
  since(stream: string, from: Position): Promise<Stored[] | undefined>
  remember(user: string, id: string): Promise<boolean | 'busy'>
  forget(user: string, id: string): Promise<void>
  handled(user: string, id: string): Promise<void>
  join(user: string, room: string): Promise<void>
  leave(user: string, room: string): Promise<void>
  rooms(user: string): Promise<string[]>
  joined(user: string): Promise<Record<string, Position | null>>
  members(room: string): Promise<string[]>
  end(user: string, reason?: string): Promise<void>
  close(): Promise<void>
}

/** What the engine uses of a node-redis client. */
interface Client {
  connect(): Promise<unknown>
  duplicate(): Client
  sendCommand(args: string[]): Promise<unknown>
  subscribe(channel: string, listener: (message: string) => void): Promise<void>
  on(event: string, listener: (arg?: unknown) => void): unknown
  close(): Promise<void>
  destroy(): void
}

/**
 * A CONFIG GET answer's value: node-redis 6 answers `sendCommand(['CONFIG', 'GET', name])` with an
 * object (`{ appendfsync: 'always' }`), older clients and RESP2 with a flat array
 * (`['appendfsync', 'always']`); anything else (CONFIG refused) is no value.
 */
export function configValue(answer: unknown, name: string): string | undefined {
  if (Array.isArray(answer)) return answer[0] === name ? String(answer[1]) : undefined
  if (answer instanceof Map) return answer.has(name) ? String(answer.get(name)) : undefined
  if (answer && typeof answer === 'object' && name in answer)
    return String((answer as Record<string, unknown>)[name])
  return undefined
}
const newEpoch = () => randomBytes(6).toString('base64url')
const down = (message: string, cause?: unknown) => new MpbusError('ENGINE_DOWN', message, cause)

export function redisEngine(options: RedisEngineOptions = {}): RedisEngine {
  const url = options.url || 'redis://127.0.0.1:6379'
  const prefix = options.prefix || 'mpbus'
  const { history, historyTtl, dedupTtl, dedupLimit, claimTtl, connectTimeout, commandTimeout } =
    engineSettings(options, { connectTimeout: [10_000, 0], commandTimeout: [5000, 1] })
  const channel = `${prefix}:fanout`
  const meta = (stream: string) => `${prefix}:m:${stream}`
  const log = (stream: string) => `${prefix}:s:${stream}`
  // The user's length first: no user's window shares a key with another's.
  const window = (user: string) => [
    `${prefix}:w:${user.length}:${user}`,
    `${prefix}:o:${user.length}:${user}`,
  ]
  const roomsOf = (user: string) => `${prefix}:r:${user}`
  const membersOf = (room: string) => `${prefix}:u:${room}`
  const joinsOf = (user: string) => `${prefix}:j:${user}`
  const gen = `${prefix}:gen`

  const listeners = new Set<(event: EngineEvent) => void>()
  const emit = (event: EngineEvent) => {
    for (const listener of Array.from(listeners)) listener(event)
  }
  let clients: Promise<{ cmd: Client; sub: Client }> | undefined
  let closed = false
  /** The subscription is known to be up: nothing published from now on can be missed. */
  let live = false
  /** A probe in flight after a reconnect: its nonce, heard back on the channel when the subscription is up again. */
  let probe: string | undefined
  let probing: ReturnType<typeof setInterval> | undefined
  let cmdClient: Client | undefined
  /** Settles once this connection's Redis process is checked (BOOT); no script runs before. */
  let booted: Promise<void> = Promise.resolve()

  function lost(error: unknown): void {
    if (closed) return
    const wasLive = live
    live = false
    if (wasLive) {
      emit({ type: 'error', error: down(`Redis connection lost: ${(error as Error).message}`, error) })
      // Publications while the subscription was down are not heard: every connection resumes.
      emit({ type: 'reset' })
    }
  }

  /** After a reconnect: publish a nonce until the subscriber hears it, then the fan-out is live again. */
  function confirm(): void {
    if (live || closed || probing) return
    const send = () => {
      probe = newEpoch()
      if (cmdClient) cmdClient.sendCommand(['PUBLISH', channel, `p ${probe}`]).catch(() => {})
    }
    probing = setInterval(send, 200)
    probing.unref()
    send()
  }

  function hear(message: string): void {
    const kind = message.slice(0, 2)
    const rest = message.slice(2)
    if (kind === 'p ') {
      if (rest === probe && probing) {
        clearInterval(probing)
        probing = undefined
        live = true
      }
      return
    }
    try {
      if (kind === 'f ') {
        const [head, frame] = [rest.slice(0, rest.indexOf('\n')), rest.slice(rest.indexOf('\n') + 1)]
        const first = head.indexOf(' ')
        const second = head.indexOf(' ', first + 1)
        const position = { offset: Number(head.slice(0, first)), epoch: head.slice(first + 1, second) }
        emit({
          type: 'frame',
          stream: JSON.parse(head.slice(second + 1)),
          position,
          frame: JSON.parse(frame),
        })
      } else if (kind === 'j ' || kind === 'l ') {
        const [user, room] = JSON.parse(rest)
        emit({ type: kind === 'j ' ? 'join' : 'leave', user, room })
      } else if (kind === 'e ') {
        const [user, reason] = JSON.parse(rest)
        emit({ type: 'end', user, reason: reason === null ? undefined : reason })
      }
    } catch (e) {
      emit({ type: 'error', error: e as Error })
    }
  }

  async function connect(): Promise<{ cmd: Client; sub: Client }> {
    const { createClient } = (await import('redis')) as unknown as {
      createClient(options: object): Client
    }
    // No offline queue: while Redis is away a command fails at once instead of waiting unseen.
    const cmd = createClient({ url, disableOfflineQueue: true })
    const sub = cmd.duplicate()
    cmdClient = cmd
    cmd.on('error', lost)
    sub.on('error', lost)
    // node-redis subscribes again after a reconnect; the probe tells when it has.
    sub.on('ready', confirm)
    cmd.on('ready', () => {
      booted = boot(cmd)
      booted.catch(() => {})
      confirm()
    })
    let timer: ReturnType<typeof setTimeout> | undefined
    /**
     * The first connection error fails the start at once, with that error as the cause: node-redis
     * retries a refused connect for ever, reporting each try only as an `error` event.
     */
    let failed: ((error: unknown) => void) | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(down(`Redis at ${url} not reached in ${connectTimeout} ms`)),
        connectTimeout,
      )
      failed = (error) => reject(down(`Redis at ${url} not reached: ${(error as Error).message}`, error))
    })
    const early = (error: unknown) => {
      if (failed) failed(error)
    }
    cmd.on('error', early)
    sub.on('error', early)
    try {
      await Promise.race([Promise.all([cmd.connect(), sub.connect()]), timeout])
      await Promise.race([sub.subscribe(channel, hear), timeout])
    } catch (e) {
      cmd.destroy()
      sub.destroy()
      throw e
    } finally {
      clearTimeout(timer)
      failed = undefined
    }
    // SUBSCRIBE answered: whatever Redis runs from now on reaches this node.
    live = true
    if (probing) clearInterval(probing)
    probing = undefined
    return { cmd, sub }
  }

  /**
   * On every (re)connection, before any script: a Redis process other than the one the epochs
   * were made under, whose persistence may have lost the last writes (anything but
   * `appendfsync always`; CONFIG refused counts as such), starts a new generation of epochs.
   */
  async function boot(cmd: Client): Promise<void> {
    const info = String(await cmd.sendCommand(['INFO', 'server']))
    const runId = (/run_id:(\w+)/.exec(info) || [])[1] || ''
    const config = async (name: string) =>
      configValue(await cmd.sendCommand(['CONFIG', 'GET', name]).catch(() => []), name)
    const durable = (await config('appendonly')) === 'yes' && (await config('appendfsync')) === 'always'
    await cmd.sendCommand(['EVAL', BOOT, '2', `${prefix}:boot`, gen, runId, durable ? '1' : '0'])
  }

  function open(): Promise<{ cmd: Client; sub: Client }> {
    if (closed) return Promise.reject(new MpbusError('CLOSED', 'the Redis engine is closed'))
    if (!clients) {
      clients = connect()
      clients.catch(() => {
        clients = undefined
      })
    }
    return clients
  }

  /**
   * Runs a command within `commandTimeout`. A Redis that does not answer (paused, its host
   * swapping, a network path that drops packets) is a Redis that is down: the fan-out may be
   * behind too, so every connection resumes, and the probe tells when Redis answers again.
   */
  function command(args: string[]): Promise<any> {
    const run = send(args)
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = down(`Redis did not answer ${args[0]} in ${commandTimeout} ms`)
        lost(error)
        confirm()
        reject(error)
      }, commandTimeout)
    })
    run.catch(() => {})
    const result = Promise.race([run, timeout])
    result.then(
      () => clearTimeout(timer),
      () => clearTimeout(timer),
    )
    return result
  }

  async function send(args: string[]): Promise<any> {
    const { cmd } = await open()
    try {
      for (let gate = booted; ; gate = booted) {
        try {
          await gate
        } catch (e) {
          // The boot failed (Redis still loading its data, say): the next command boots again,
          // so the node does not stay down until the connection happens to drop.
          if (booted === gate) {
            booted = boot(cmd)
            booted.catch(() => {})
          }
          throw e
        }
        if (gate === booted) break
      }
      return await cmd.sendCommand(args)
    } catch (e) {
      throw down(`Redis: ${(e as Error).message}`, e)
    }
  }

  // EVAL, not EVALSHA: after a Redis restart a NOSCRIPT retry could reorder two appends.
  const script = (source: string, keys: string[], args: Array<string | number>) =>
    command(['EVAL', source, String(keys.length), ...keys, ...args.map(String)])

  /** Reads that a login depends on need the fan-out up: otherwise the connection would miss live frames. */
  async function readable(): Promise<void> {
    if (closed) throw new MpbusError('CLOSED', 'the Redis engine is closed')
    await open()
    if (!live) throw down('Redis fan-out not subscribed (reconnecting)')
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
    async append(stream, frame) {
      const [offset, epoch] = await script(
        APPEND,
        [meta(stream), log(stream), gen],
        [newEpoch(), history, historyTtl, channel, JSON.stringify(stream), JSON.stringify(frame)],
      )
      return { offset: Number(offset), epoch: String(epoch) }
    },
    async tip(stream): Promise<Position> {
      await readable()
      const [offset, epoch] = await script(TIP, [meta(stream), gen], [newEpoch(), historyTtl])
      return { offset: Number(offset), epoch: String(epoch) }
    },
    async since(stream, from) {
      await readable()
      const frames: string[] | null = await script(
        SINCE,
        [meta(stream), log(stream), gen],
        [from.offset, from.epoch, newEpoch(), historyTtl],
      )
      if (!frames) return undefined
      return frames.map((f, i): Stored => ({ offset: from.offset + 1 + i, frame: JSON.parse(f) }))
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
    async join(user, room) {
      await script(
        JOIN,
        [roomsOf(user), membersOf(room), joinsOf(user), meta(roomStream(room)), gen],
        [room, user, channel, `j ${JSON.stringify([user, room])}`, newEpoch(), historyTtl],
      )
    },
    async leave(user, room) {
      await script(
        LEAVE,
        [roomsOf(user), membersOf(room), joinsOf(user)],
        [room, user, channel, `l ${JSON.stringify([user, room])}`],
      )
    },
    async rooms(user) {
      await readable()
      return ((await command(['SMEMBERS', roomsOf(user)])) as string[]).sort()
    },
    async joined(user) {
      await readable()
      const out: Record<string, Position | null> = {}
      for (const [room, at] of (await script(JOINED, [roomsOf(user), joinsOf(user)], [])) as [
        string,
        string | null,
      ][]) {
        const space = at ? at.indexOf(' ') : -1
        out[room] = at ? { offset: Number(at.slice(0, space)), epoch: at.slice(space + 1) } : null
      }
      return out
    },
    async members(room) {
      return ((await command(['SMEMBERS', membersOf(room)])) as string[]).sort()
    },
    async end(user, reason) {
      await command(['PUBLISH', channel, `e ${JSON.stringify([user, reason === undefined ? null : reason])}`])
    },
    async close() {
      closed = true
      live = false
      if (probing) clearInterval(probing)
      probing = undefined
      listeners.clear()
      const opened = clients
      clients = undefined
      if (!opened) return
      const { cmd, sub } = await opened.catch(() => ({ cmd: undefined, sub: undefined }))
      // close() waits for replies in flight; destroy() when the socket is gone already.
      for (const client of [sub, cmd]) if (client) await client.close().catch(() => client.destroy())
    },
  }
}

/**
 * The Redis engine's connections, to one Redis or to a Redis Cluster, behind one shape: commands
 * routed by their first key (on a cluster, to the master of its slot), and subscriptions to
 * channels (SUBSCRIBE on one Redis; sharded pub/sub, SSUBSCRIBE, on a cluster, so that a
 * publication goes to its shard only: https://redis.io/docs/latest/develop/interact/pubsub/#sharded-pubsub).
 * A subscription lives on a "line": the one subscriber connection of one Redis, or the sharded
 * pub/sub connection to one cluster master, named by its address.
 */
import { MpbusError } from '../errors'

export const down = (message: string, cause?: unknown) => new MpbusError('ENGINE_DOWN', message, cause)

/** What a subscription hears: a message and the channel it came on. */
export type Hear = (message: string, channel: string) => void

export interface RedisLink {
  /** Runs a command where `key` lives. */
  run(key: string, args: string[]): Promise<unknown>
  /** The line a channel's subscription lives on ('' on one Redis). */
  lineOf(channel: string): Promise<string>
  /** Subscribes `channel`; what it carries goes to `LinkTarget.hear`. Resolves once Redis answered. */
  subscribe(channel: string): Promise<void>
  unsubscribe(channel: string): Promise<void>
  /** True if every master keeps every acknowledged write across a restart (`appendfsync always`). */
  durable(): Promise<boolean>
  close(): Promise<void>
}

/** Told by the link: a line's connection failed (undefined: every line), or it is ready again. */
export interface LinkEvents {
  trouble(line: string | undefined, error: unknown): void
  ready(line: string | undefined): void
}

/** What the engine uses of node-redis's clients. */
interface Client {
  connect(): Promise<unknown>
  duplicate(): Client
  sendCommand(...args: unknown[]): Promise<unknown>
  subscribe(channels: string[], listener: Hear): Promise<void>
  unsubscribe(channels: string[], listener: Hear): Promise<void>
  sSubscribe(channel: string, listener: Hear): Promise<void>
  sUnsubscribe(channel: string, listener: Hear): Promise<void>
  getNodeClientForKey(key: string): Promise<{ options?: { socket?: { host?: string; port?: number } } }>
  masters: unknown[]
  nodeClient(node: unknown): Promise<Client>
  on(event: string, listener: (...args: any[]) => void): unknown
  readonly isOpen: boolean
  close(): Promise<void>
  destroy(): void
}

interface Redis {
  createClient(options: object): Client
  createCluster(options: object): Client
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

/**
 * Whether a Redis keeps every acknowledged write across a restart. CONFIG refused (a managed
 * Redis may rename it) counts as no; a Redis still loading its data, or gone again, answers
 * nothing (a rejection: the caller keeps what it knew).
 */
async function isDurable(client: Client): Promise<boolean> {
  const config = async (name: string) => {
    const answer = await client.sendCommand(['CONFIG', 'GET', name]).catch((e: Error) => {
      if (/^LOADING|offline|closed|Socket/i.test(String(e && e.message))) throw e
      return []
    })
    return configValue(answer, name)
  }
  return (await config('appendonly')) === 'yes' && (await config('appendfsync')) === 'always'
}

/**
 * The subscribe and unsubscribe calls of one event-loop turn, sent in their order as few commands:
 * a run of subscribes is one SUBSCRIBE of all their channels (a thousand clients logging in at
 * once cost one command, not a thousand). Order is kept between runs, so an unsubscribe and a
 * subscribe of one channel leave it as the last one asked.
 */
function batching(sub: Client, hear: Hear) {
  type Ask = { subscribe: boolean; channel: string; done: (error?: unknown) => void }
  let asks: Ask[] = []
  function flush(): void {
    const runs: Ask[][] = []
    for (const ask of asks) {
      const last = runs[runs.length - 1]
      if (last && last[0]!.subscribe === ask.subscribe) last.push(ask)
      else runs.push([ask])
    }
    asks = []
    for (const run of runs) {
      const channels = run.map((ask) => ask.channel)
      // In a promise: a client closed meanwhile throws at once, which must not escape the timer.
      const sent = Promise.resolve().then(() =>
        run[0]!.subscribe ? sub.subscribe(channels, hear) : sub.unsubscribe(channels, hear),
      )
      sent.then(
        () => {
          for (const ask of run) ask.done()
        },
        (error) => {
          for (const ask of run) ask.done(error || new Error('failed'))
        },
      )
    }
  }
  return (subscribe: boolean, channel: string) =>
    new Promise<void>((resolve, reject) => {
      if (!asks.length) setImmediate(flush)
      asks.push({ subscribe, channel, done: (error) => (error ? reject(error) : resolve()) })
    })
}

/** Rejects with `error()` unless `work` settles within `ms`; the timer goes either way. */
export function within<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms)
  })
  work.catch(() => {})
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

/**
 * Lets a client go: `close()` waits for the replies in flight, but a client between two
 * reconnection attempts has nothing in flight and would wait for a connection first: it, and one
 * whose replies do not come within a second, is destroyed.
 */
function release(client: Client): Promise<void> {
  if (!client.isOpen) return Promise.resolve(client.destroy())
  return within(client.close(), 1000, () => new Error('close timed out')).catch(() => client.destroy())
}

export interface LinkTarget {
  url: string
  /** node-redis's `createCluster` options (`rootNodes` at least), or undefined for one Redis. */
  cluster?: { rootNodes: Array<{ url: string }> } & Record<string, unknown>
  connectTimeout: number
  /** Hears every subscribed channel. */
  hear: Hear
}

/**
 * Connects, within `connectTimeout`. The first connection error fails it at once, with that error
 * as the cause: node-redis retries a refused connect for ever, reporting each try only as an
 * `error` event. No offline queue: while Redis is away a command fails at once instead of waiting
 * unseen.
 */
export async function openLink(target: LinkTarget, events: LinkEvents): Promise<RedisLink> {
  const redis = (await import('redis')) as unknown as Redis
  const where = target.cluster ? 'Redis Cluster' : `Redis at ${target.url}`
  let failed: ((error: unknown) => void) | undefined
  const early = new Promise<never>((_, reject) => {
    failed = (error) => reject(down(`${where} not reached: ${(error as Error).message}`, error))
  })
  early.catch(() => {})
  const onError = (line: string | undefined) => (error: unknown) => {
    if (failed) failed(error)
    events.trouble(line, error)
  }
  let link: RedisLink
  let clients: Client[]
  if (target.cluster) {
    const cluster = redis.createCluster(
      Object.assign({}, target.cluster, {
        defaults: Object.assign({ disableOfflineQueue: true }, target.cluster.defaults),
      }),
    )
    const address = (info: { host?: string; port?: number }) => `${info.host}:${info.port}`
    cluster.on('node-error', (error, info) => onError(address(info))(error))
    cluster.on('node-reconnecting', (info) => events.trouble(address(info), down('reconnecting')))
    cluster.on('node-ready', (info) => events.ready(address(info)))
    cluster.on('error', onError(undefined))
    clients = [cluster]
    link = {
      run: (key, args) => cluster.sendCommand(key, false, args),
      async lineOf(channel) {
        const node = await cluster.getNodeClientForKey(channel)
        const socket = (node.options && node.options.socket) || {}
        return address(socket)
      },
      // One channel a command: channels of several slots cannot share an SSUBSCRIBE.
      subscribe: (channel) => cluster.sSubscribe(channel, target.hear),
      unsubscribe: (channel) => cluster.sUnsubscribe(channel, target.hear),
      async durable() {
        const masters = await Promise.all(cluster.masters.map((m) => cluster.nodeClient(m)))
        return (await Promise.all(masters.map(isDurable))).every(Boolean)
      },
      close: () => release(cluster),
    }
  } else {
    const cmd = redis.createClient({ url: target.url, disableOfflineQueue: true })
    const sub = cmd.duplicate()
    for (const client of [cmd, sub]) {
      client.on('error', onError(undefined))
      client.on('ready', () => events.ready(undefined))
    }
    clients = [cmd, sub]
    const pubsub = batching(sub, target.hear)
    link = {
      run: (_key, args) => cmd.sendCommand(args),
      lineOf: () => Promise.resolve(''),
      subscribe: (channel) => pubsub(true, channel),
      unsubscribe: (channel) => pubsub(false, channel),
      durable: () => isDurable(cmd),
      close: () => Promise.all([sub, cmd].map(release)).then(() => {}),
    }
  }
  try {
    await within(
      Promise.race([Promise.all(clients.map((c) => c.connect())), early]),
      target.connectTimeout,
      () => down(`${where} not reached in ${target.connectTimeout} ms`),
    )
  } catch (e) {
    for (const client of clients) client.destroy()
    throw e
  } finally {
    failed = undefined
  }
  return link
}

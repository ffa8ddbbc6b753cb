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
  /** PUBLISH on one Redis, SPUBLISH on a cluster: what the scripts publish with. */
  readonly publish: 'PUBLISH' | 'SPUBLISH'
  /** Runs a command where `key` lives. */
  run(key: string, args: string[]): Promise<unknown>
  /** The line a channel's subscription lives on ('' on one Redis). */
  lineOf(channel: string): Promise<string>
  subscribe(channel: string, hear: Hear): Promise<void>
  unsubscribe(channel: string, hear: Hear): Promise<void>
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
  subscribe(channel: string, listener: Hear): Promise<void>
  unsubscribe(channel: string, listener: Hear): Promise<void>
  sSubscribe(channel: string, listener: Hear): Promise<void>
  sUnsubscribe(channel: string, listener: Hear): Promise<void>
  getNodeClientForKey(key: string): Promise<{ options?: { socket?: { host?: string; port?: number } } }>
  masters: unknown[]
  nodeClient(node: unknown): Promise<Client>
  on(event: string, listener: (...args: any[]) => void): unknown
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

/** Rejects with `error()` unless `work` settles within `ms`; the timer goes either way. */
export function within<T>(work: Promise<T>, ms: number, error: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(error()), ms)
  })
  work.catch(() => {})
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}

export interface LinkTarget {
  url: string
  /** node-redis's `createCluster` options (`rootNodes` at least), or undefined for one Redis. */
  cluster?: { rootNodes: Array<{ url: string }> } & Record<string, unknown>
  connectTimeout: number
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
      publish: 'SPUBLISH',
      run: (key, args) => cluster.sendCommand(key, false, args),
      async lineOf(channel) {
        const node = await cluster.getNodeClientForKey(channel)
        const socket = (node.options && node.options.socket) || {}
        return address(socket)
      },
      subscribe: (channel, hear) => cluster.sSubscribe(channel, hear),
      unsubscribe: (channel, hear) => cluster.sUnsubscribe(channel, hear),
      async durable() {
        const masters = await Promise.all(cluster.masters.map((m) => cluster.nodeClient(m)))
        return (await Promise.all(masters.map(isDurable))).every(Boolean)
      },
      close: () => cluster.close(),
    }
  } else {
    const cmd = redis.createClient({ url: target.url, disableOfflineQueue: true })
    const sub = cmd.duplicate()
    for (const client of [cmd, sub]) {
      client.on('error', onError(undefined))
      client.on('ready', () => events.ready(undefined))
    }
    clients = [cmd, sub]
    link = {
      publish: 'PUBLISH',
      run: (_key, args) => cmd.sendCommand(args),
      lineOf: () => Promise.resolve(''),
      subscribe: (channel, hear) => sub.subscribe(channel, hear),
      unsubscribe: (channel, hear) => sub.unsubscribe(channel, hear),
      durable: () => isDurable(cmd),
      async close() {
        // close() waits for replies in flight; destroy() when the socket is gone already.
        for (const client of [sub, cmd]) await client.close().catch(() => client.destroy())
      },
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

/** The Redis engine's options (the ones both engines share are in engine-options.ts) and its type. */
import type { EngineOptions } from './engine-options'
import type { Engine, EngineEvent, Position, Stored } from './types'

export interface RedisEngineOptions extends EngineOptions {
  /** The Redis server. @default 'redis://127.0.0.1:6379' */
  url?: string
  /**
   * A Redis Cluster instead of one Redis (Redis 7 or later: sharded pub/sub): node-redis's
   * `createCluster` options, `rootNodes` at least, e.g. `{ rootNodes: [{ url: 'redis://10.0.0.5:7000' }] }`.
   * `url` is then not used.
   */
  cluster?: { rootNodes: Array<{ url: string }> } & Record<string, unknown>
  /** Prefix of every key and channel: two apps on one Redis never mix. No `{` or `}`. @default 'mpbus' */
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

/** The Redis engine answers with Promises; `close()` releases its connections. */
export interface RedisEngine extends Engine {
  subscribe(listener: (event: EngineEvent) => void): Promise<() => void>
  listen(stream: string): Promise<void>
  unlisten(stream: string): void
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
  login(
    user: string,
    from: Position | undefined,
  ): Promise<{ joined: Record<string, Position | null>; tip: Position; missed: Stored[] | undefined }>
  members(room: string): Promise<string[]>
  end(user: string, reason?: string): Promise<void>
  close(): Promise<void>
}

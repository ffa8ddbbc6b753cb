/**
 * `mpbus/server`: the other end of an mpbus client, on `ws` (Node only). It speaks
 * docs/protocol.md: login first and nothing else before its answer, the heartbeat reply, an ack
 * for every message with an id, duplicates dropped by (user, id), the session end, and pushes that
 * carry their stream position so that a client resumes what it missed, even after a cold start.
 */
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { asMpbusError, MpbusError } from '../errors'
import { ACK, type Frame, ID, type Position } from '../protocol'
import { uncork } from '../task'
import { accept, type Node } from './connection'
import { createFanout, hear, readersOf } from './fanout'
import { memoryEngine } from './memory-engine'
import { flush } from './send'
import { frameOf, roomStream, userStream } from './streams'
import type { Engine, LoginDecision, ServerHandler } from './types'

export type { ConformanceOptions, ConformanceResult } from './conformance'
export { checkConformance } from './conformance'
export type { MemoryEngine, MemoryEngineOptions } from './memory-engine'
export { memoryEngine } from './memory-engine'
export type { RedisEngine, RedisEngineOptions } from './redis-engine'
export { redisEngine } from './redis-engine'
export { roomStream, userStream } from './streams'
export type {
  Awaitable,
  Engine,
  EngineEvent,
  HandlerContext,
  LoginDecision,
  Position,
  ServerHandler,
  Stored,
} from './types'

export interface ServerOptions {
  /** Listen on this port (0: any free one). Ignored when `server` is given. @default 0 */
  port?: number
  /** The address to listen on. @default every interface (Node's default) */
  host?: string
  /** An HTTP(S) server to attach to instead of listening. */
  server?: HttpServer
  /** Decides a login frame. Refusal answers `LoginError` (or the `refuse` operator) and closes. May return a Promise. */
  authenticate(login: Frame): LoginDecision | PromiseLike<LoginDecision>
  /** Streams, the duplicate window, rooms and fan-out: `memoryEngine()` or `redisEngine({ url })`. @default memoryEngine() */
  engine?: Engine
  /**
   * Acknowledge the messages handled in one macrotask of a connection in one frame (`MsgIds`,
   * docs/protocol.md); `false`: one `Ack` with `MsgId` per message, for clients that read only
   * that form (a hand-written one, or an mpbus before the batched ack). @default true
   */
  batchAcks?: boolean
  /** Handlers by operator. A message with no handler is acked and otherwise ignored. */
  handlers?: Record<string, ServerHandler>
  /** Frames larger than this close the connection with 1009 (by `ws`). @default 1048576 */
  maxFrameBytes?: number
  /**
   * At most `frames` inbound frames per `interval` ms per connection. Past it the connection is not
   * read until the interval ends: TCP holds the client back, and nothing is refused (a client
   * replaying a long outbox sends a whole window at once). @default { frames: 1000, interval: 1000 }
   */
  rate?: { frames: number; interval: number }
  /**
   * A handler that threw, a frame refused, an engine failure: for logs. An `MpbusError` whose
   * `code` says which (src/errors.ts), with `user` when the connection has one. @default none
   */
  onError?: (error: MpbusError, user: string | undefined) => void
  /**
   * ms `close()` waits for handlers still running before it closes the engine, so that their
   * messages are marked handled (a resend is then acked, not refused until its claim expires). @default 5000
   */
  closeTimeout?: number
}

export interface MpbusServer {
  /** The port listened on (that of `server` when attached, if it was listening). */
  readonly port: number
  /**
   * Pushes to every connection of `user` (on every node of the engine); kept in the user's stream
   * for those offline. Rejects (and reports to `onError`) when the engine cannot store it.
   */
  push(user: string, op: string, payload?: Record<string, unknown>): Promise<Position>
  /** Pushes to every member of `room`, connected or not (kept in the room's stream). Rejects like `push`. */
  publish(room: string, op: string, payload?: Record<string, unknown>): Promise<Position>
  join(user: string, room: string): Promise<void>
  leave(user: string, room: string): Promise<void>
  /** Sends `SessionEnd` to every connection of `user`, on every node, and closes them: their buses stop for good. */
  end(user: string, reason?: string): Promise<void>
  /** Connections of `user` that are logged in to this node. */
  connections(user: string): number
  /** Closes every connection, stops listening, and closes the engine (its Redis connections). */
  close(): Promise<void>
}

/** Every default of `ServerOptions`, declared once (each option's `@default` says the same). */
const DEFAULTS = {
  port: 0,
  batchAcks: true,
  maxFrameBytes: 1 << 20,
  rate: { frames: 1000, interval: 1000 },
  closeTimeout: 5000,
}

export async function createServer(options: ServerOptions): Promise<MpbusServer> {
  if (!options || typeof options.authenticate !== 'function')
    throw new MpbusError('BAD_OPTION', 'authenticate must be a function')
  const given = <K extends keyof typeof DEFAULTS>(key: K) =>
    options[key] === undefined ? DEFAULTS[key] : (options[key] as (typeof DEFAULTS)[K])
  const rate = given('rate')
  const maxPayload = given('maxFrameBytes')
  if (!(rate.frames >= 1 && rate.interval >= 1 && maxPayload >= 1))
    throw new MpbusError('BAD_OPTION', 'rate.frames, rate.interval and maxFrameBytes must be >= 1')
  const engine = options.engine || memoryEngine()
  const report = options.onError || (() => {})
  const fanout = createFanout(report)

  /**
   * Runs an engine call; a failure is reported and rethrown, never swallowed. The Promise is marked
   * handled: a caller that does not await `push()` (fire and forget, during a Redis blip) has the
   * failure in `onError`, not an unhandled rejection that ends the process.
   */
  function store<T>(user: string | undefined, call: () => T | PromiseLike<T>): Promise<T> {
    const result = (async () => {
      try {
        return await call()
      } catch (e) {
        const error = asMpbusError('ENGINE_DOWN', e)
        report(error, user)
        throw error
      }
    })()
    result.catch(() => {})
    return result
  }

  const handlers = new Map(Object.entries(options.handlers || {}))
  const node: Node = {
    authenticate: (login) => options.authenticate(login),
    handler: (op) => handlers.get(op),
    batchAcks: given('batchAcks'),
    ackOp: ACK,
    idKey: ID,
    rate,
    engine,
    fanout,
    running: new Set(),
    report,
    store,
    push: (user, op, payload) => store(user, () => engine.append(userStream(user), frameOf(op, payload))),
  }

  // Before the first connection: a node hears everything appended after it accepts a login.
  const unsubscribe = await engine.subscribe((event) => hear(fanout, event))
  const wss = new WebSocketServer(
    options.server
      ? { server: options.server, maxPayload }
      : { port: given('port'), host: options.host, maxPayload },
  )
  if (!options.server) await new Promise<void>((resolve) => wss.once('listening', resolve))
  const address = (options.server ? options.server.address() : wss.address()) as AddressInfo | null
  wss.on('connection', (ws) => accept(node, ws))

  return {
    port: address ? address.port : 0,
    push: node.push,
    publish: (room, op, payload) =>
      store(undefined, () => engine.append(roomStream(room), frameOf(op, payload))),
    join: (user, room) => store(user, () => engine.join(user, room)),
    leave: (user, room) => store(user, () => engine.leave(user, room)),
    end: (user, reason) => store(user, () => engine.end(user, reason)),
    // A connection whose login is still being served (its resume read) is not logged in yet.
    connections: (user) => readersOf(fanout, user).filter((c) => c.phase === 'ready').length,
    async close() {
      unsubscribe()
      await new Promise<void>((resolve) => {
        for (const ws of wss.clients) {
          flush(ws)
          uncork(ws)
          ws.terminate()
        }
        wss.close(() => resolve())
      })
      // Frames queued behind are skipped (their connections are closed); the one running finishes.
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.all(Array.from(node.running)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, given('closeTimeout'))
        }),
      ])
      clearTimeout(timer)
      if (engine.close) await engine.close()
    },
  }
}

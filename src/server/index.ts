/**
 * `mpbus/server`: the other end of an mpbus client, on `ws` (Node only). It speaks
 * docs/protocol.md: login first and nothing else before its answer, the heartbeat reply, an ack
 * for every message with an id, duplicates dropped by (user, id), the session end, and pushes that
 * carry their stream position so that a client resumes what it missed, even after a cold start.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { asMpbusError, describe, MpbusError } from '../errors'
import { ACK, type Frame, ID, type Position } from '../protocol'
import { uncork } from '../task'
import { accept, type Node } from './connection'
import { createFanout, hear, readersOf } from './fanout'
import { memoryEngine } from './memory-engine'
import { flush } from './send'
import { frameOf, roomStream, userStream } from './streams'
import type { Engine, Handlers, LoginDecision, OpMap, PayloadOf, ServerHandler } from './types'

export type { ConformanceOptions, ConformanceResult } from './conformance'
export { checkConformance } from './conformance'
export type { MemoryEngine, MemoryEngineOptions } from './memory-engine'
export { memoryEngine } from './memory-engine'
export type { RedisEngine, RedisEngineOptions } from './redis-engine'
export { redisEngine } from './redis-engine'
export { Refusal, refuse } from './refusal'
export { roomStream, userStream } from './streams'
export type {
  Awaitable,
  Engine,
  EngineEvent,
  HandlerContext,
  Handlers,
  LoginDecision,
  OpMap,
  PayloadOf,
  Position,
  ServerHandler,
  Stored,
} from './types'

/**
 * `Out` and `In` are the operations a client's `createBus<Out, In>` takes: what clients send (the
 * handlers' frames) and what they receive (`reply`, `push`, `publish`). Untyped by default.
 */
export interface ServerOptions<Out extends OpMap = OpMap, In extends OpMap = OpMap> {
  /**
   * Listen on this port; 0, the default, takes any free one: read the one taken from the server's
   * `port`. Ignored when `server` is given. @default 0
   */
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
  /**
   * Handlers by operator. A message with no handler is refused (`NO_HANDLER`, docs/protocol.md,
   * Refusals): the client's `send()` rejects, and `onError` is told.
   */
  // NoInfer: the types come from createServer<Out, In> (or stay untyped), never from the handlers given.
  handlers?: Handlers<NoInfer<Out>, NoInfer<In>>
  /** Frames larger than this close the connection with 1009 (by `ws`). @default 1048576 */
  maxFrameBytes?: number
  /** Message ids (`MsgId`) longer than this many characters close the connection with 1007, unhandled. @default 128 */
  maxIdLength?: number
  /**
   * Bytes a connection may have waiting to be written to its socket (`bufferedAmount`). A client
   * that reads slower than it is pushed to is closed with 4002 once its backlog passes this; it
   * reconnects and resumes from its positions, so nothing is lost. @default 4194304
   */
  maxBufferedBytes?: number
  /**
   * Frames, and their bytes, read from a connection and waiting behind the one being handled.
   * Reaching either stops reading the socket until the handlers catch up (TCP holds the client
   * back); nothing is refused. @default { frames: 1000, bytes: 4194304 }
   */
  backlog?: { frames: number; bytes: number }
  /**
   * ms between WebSocket pings. A connection that answered none of the previous ping (a half-open
   * peer: a dead NAT mapping, a client that lost power) is dropped, as is one still closing
   * after it. 0: no pings. @default 30000
   */
  pingInterval?: number
  /** ms a connection has to complete its login (answer included); past it, closed with 4003. @default 10000 */
  loginTimeout?: number
  /**
   * ms the HTTP request that opens a WebSocket may take (its headers, slowly sent or not). Only
   * when mpbus/server listens itself: an attached `server` has its own `headersTimeout`. @default 10000
   */
  upgradeTimeout?: number
  /**
   * At most `frames` inbound frames per `interval` ms per connection. Past it the connection is not
   * read until the interval ends: TCP holds the client back, and nothing is refused (a client
   * replaying a long outbox sends a whole window at once). @default { frames: 1000, interval: 1000 }
   */
  rate?: { frames: number; interval: number }
  /**
   * A handler that threw, a frame refused, a message with no handler, an engine failure: for logs. An `MpbusError` whose
   * `code` says which (src/errors.ts), with `user` when the connection has one. @default none
   */
  onError?: (error: MpbusError, user: string | undefined) => void
  /**
   * ms `close()` waits for handlers still running before it closes the engine, so that their
   * messages are marked handled (a resend is then acked, not refused until its claim expires). @default 5000
   */
  closeTimeout?: number
}

export interface MpbusServer<In extends OpMap = OpMap> {
  /**
   * The port listened on: the one taken when `port` was 0 (the default), that of `server` when
   * attached (if it was listening). Clients connect to `ws://host:${server.port}`.
   */
  readonly port: number
  /**
   * Pushes to every connection of `user` (on every node of the engine); kept in the user's stream
   * for those offline. Rejects (and reports to `onError`) when the engine cannot store it.
   */
  push<K extends keyof In & string>(user: string, op: K, ...payload: PayloadOf<In, K>): Promise<Position>
  /** Pushes to every member of `room`, connected or not (kept in the room's stream). Rejects like `push`. */
  publish<K extends keyof In & string>(room: string, op: K, ...payload: PayloadOf<In, K>): Promise<Position>
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
  maxIdLength: 128,
  maxBufferedBytes: 4 << 20,
  backlog: { frames: 1000, bytes: 4 << 20 },
  rate: { frames: 1000, interval: 1000 },
  pingInterval: 30_000,
  loginTimeout: 10_000,
  upgradeTimeout: 10_000,
  closeTimeout: 5000,
}

export async function createServer<Out extends OpMap = OpMap, In extends OpMap = OpMap>(
  options: ServerOptions<Out, In>,
): Promise<MpbusServer<In>> {
  if (!options || typeof options.authenticate !== 'function')
    throw new MpbusError('BAD_OPTION', 'authenticate must be a function')
  const given = <K extends keyof typeof DEFAULTS>(key: K) =>
    options[key] === undefined ? DEFAULTS[key] : (options[key] as (typeof DEFAULTS)[K])
  const rate = given('rate')
  const backlog = given('backlog')
  const maxPayload = given('maxFrameBytes')
  const pingInterval = given('pingInterval')
  const upgradeTimeout = given('upgradeTimeout')
  for (const [name, value, min] of [
    ['rate.frames', rate.frames, 1],
    ['rate.interval', rate.interval, 1],
    ['maxFrameBytes', maxPayload, 1],
    ['maxIdLength', given('maxIdLength'), 1],
    ['maxBufferedBytes', given('maxBufferedBytes'), 1],
    ['backlog.frames', backlog.frames, 1],
    ['backlog.bytes', backlog.bytes, 1],
    ['pingInterval', pingInterval, 0],
    ['loginTimeout', given('loginTimeout'), 1],
    ['upgradeTimeout', upgradeTimeout, 1],
    ['closeTimeout', given('closeTimeout'), 0],
  ] as const)
    if (!(typeof value === 'number' && value >= min))
      throw new MpbusError('BAD_OPTION', `${name} must be a number >= ${min}: ${value}`)
  const engine = options.engine || memoryEngine()
  const report = options.onError || (() => {})
  const fanout = createFanout(report, given('maxBufferedBytes'))
  let closed = false

  /**
   * Runs an engine call; a failure is reported and rethrown, never swallowed. The Promise is marked
   * handled: a caller that does not await `push()` (fire and forget, during a Redis blip) has the
   * failure in `onError`, not an unhandled rejection that ends the process.
   */
  function store<T>(user: string | undefined, call: () => T | PromiseLike<T>): Promise<T> {
    const result = (async () => {
      if (closed) throw new MpbusError('CLOSED', 'the server is closed')
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

  /**
   * A frame to keep in a stream: one JSON cannot encode (a BigInt, a cycle) is refused now, with
   * BAD_PAYLOAD, or every later resume of its readers would fail on it until it is trimmed.
   */
  function storable(op: string, payload: Record<string, unknown> | undefined): Frame {
    const frame = frameOf(op, payload)
    try {
      JSON.stringify(frame)
    } catch (e) {
      throw new MpbusError('BAD_PAYLOAD', `${op}: not JSON (${describe(e)})`, e)
    }
    return frame
  }

  const handlers = new Map<string, ServerHandler>(Object.entries(options.handlers || {}))
  const node: Node = {
    authenticate: (login) => options.authenticate(login),
    handler: (op) => handlers.get(op),
    batchAcks: given('batchAcks'),
    ackOp: ACK,
    idKey: ID,
    rate,
    backlog,
    maxIdLength: given('maxIdLength'),
    loginTimeout: given('loginTimeout'),
    alive: new WeakSet(),
    engine,
    fanout,
    running: new Set(),
    report,
    store,
    push: (user, op, payload) => store(user, () => engine.append(userStream(user), storable(op, payload))),
  }

  // Before the first connection: a node hears everything appended after it accepts a login.
  const unsubscribe = await engine.subscribe((event) => hear(fanout, event))
  // Listening itself, the HTTP request of the upgrade is bounded too (a slowloris sends its
  // headers a byte at a time); Node checks these timeouts every connectionsCheckingInterval.
  const http =
    options.server ||
    createHttpServer({
      headersTimeout: upgradeTimeout,
      requestTimeout: upgradeTimeout,
      connectionsCheckingInterval: Math.min(upgradeTimeout, 1000),
    })
  const wss = new WebSocketServer({ server: http, maxPayload })
  if (!options.server)
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(given('port'), options.host, () => {
        http.off('error', reject)
        resolve()
      })
    })
  const address = http.address() as AddressInfo | null
  wss.on('connection', (ws) => accept(node, ws))

  /**
   * The liveness check: a connection that answered no ping since the last one is dropped (a
   * frame from it is no answer: a peer that sends but never reads is not alive), and so is one
   * whose close did not complete within an interval (its peer reads nothing, not even that). A
   * connection whose reading the server paused (rate gate, backlog) cannot be heard answering:
   * it is skipped until reading resumes.
   */
  const pinging =
    pingInterval > 0
      ? setInterval(() => {
          for (const ws of wss.clients) {
            if (ws.isPaused && ws.readyState === ws.OPEN) continue
            if (!node.alive.has(ws) || ws.readyState === ws.CLOSING) {
              report(
                new MpbusError('TIMEOUT', `no answer to a ping within ${pingInterval} ms: dropped`),
                undefined,
              )
              uncork(ws)
              ws.terminate()
              continue
            }
            node.alive.delete(ws)
            ws.ping()
          }
        }, pingInterval)
      : undefined
  if (pinging) pinging.unref()

  // Typed by `In` for the app; inside, the operators are any names.
  const server: MpbusServer = {
    port: address ? address.port : 0,
    push: node.push,
    publish: (room, op, payload) =>
      store(undefined, () => engine.append(roomStream(room), storable(op, payload))),
    join: (user, room) => store(user, () => engine.join(user, room)),
    leave: (user, room) => store(user, () => engine.leave(user, room)),
    end: (user, reason) => store(user, () => engine.end(user, reason)),
    // A connection whose login is still being served (its resume read) is not logged in yet.
    connections: (user) => readersOf(fanout, user).filter((c) => c.phase === 'ready').length,
    async close() {
      closed = true
      if (pinging) clearInterval(pinging)
      unsubscribe()
      await new Promise<void>((resolve) => {
        for (const ws of wss.clients) {
          flush(ws)
          uncork(ws)
          ws.terminate()
        }
        wss.close(() => (options.server ? resolve() : http.close(() => resolve())))
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
  return server as MpbusServer<In>
}

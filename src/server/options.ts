/**
 * Every option of `mpbus/server`, declared once with its documentation and its default
 * (`DEFAULTS`, which `createServer` reads), and the server it returns.
 */
import type { Server as HttpServer } from 'node:http'
import type { MpbusError } from '../errors'
import type { Frame, Position } from '../protocol'
import type { Engine, Handlers, LoginDecision, OpMap, PayloadOf } from './types'
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
export const DEFAULTS = {
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

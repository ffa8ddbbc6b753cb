/** The server's types: what `authenticate` and the handlers see, and what the server keeps in its engine (stream histories, the duplicate window, room membership, fan-out). */
import type { FrameOf as Message, OpMap, Position } from '../protocol'

export type { Position }

/**
 * Where a connection stands: it must log in first; `authenticate` runs; its resume is read and
 * sent; then it is served. `closed` from a refusal, an engine failure, or the socket's close.
 */
export type Phase = 'login' | 'authenticating' | 'resuming' | 'ready' | 'closed'

/** What `authenticate` decides: the user, with fields for the login answer; or a refusal. */
export type LoginDecision =
  | string
  | { user: string; fields?: Record<string, unknown> }
  | { refuse: string; reason?: string }
  | null
  | undefined

export type { OpMap }

/**
 * The payload of operator `K` of `Ops`, as the rest of a call's arguments: it may be left out only
 * where its type allows `undefined` (always, untyped), as with the client's `send`.
 */
export type PayloadOf<Ops extends OpMap, K extends keyof Ops> = undefined extends Ops[K]
  ? [payload?: Ops[K]]
  : [payload: Ops[K]]

/** What a handler may do; `In` types what the clients receive (the bus's second type, as in `createBus<Out, In>`). */
export interface HandlerContext<In extends OpMap = OpMap> {
  /** The connection's user, as `authenticate` named it. */
  user: string
  /** Sends a frame to this connection only (not stored: a reply, not a push). */
  reply<K extends keyof In & string>(op: K, ...payload: PayloadOf<In, K>): void
  /** Pushes to every connection of this user, through the user's stream. */
  push<K extends keyof In & string>(op: K, ...payload: PayloadOf<In, K>): Promise<Position>
}

/**
 * Runs for a message; the ack leaves when it returns (or its Promise resolves). A throw withholds
 * the ack: the client resends; but `throw refuse(code, reason)` refuses the message for good
 * (docs/protocol.md, Refusals): the client's `send()` rejects with the code and reason.
 */
export type ServerHandler<P = any, In extends OpMap = OpMap> = (
  frame: Message<P>,
  context: HandlerContext<In>,
) => void | PromiseLike<void>

/**
 * A handler per operator a client sends: `Out` and `In` are the two types a client's
 * `createBus<Out, In>` takes (what it sends, what it receives), so one declaration types both ends.
 */
export type Handlers<Out extends OpMap = OpMap, In extends OpMap = OpMap> = {
  [K in keyof Out & string]?: ServerHandler<Out[K], In>
}

export interface Stored {
  offset: number
  /** The frame as pushed, without its position. */
  frame: Record<string, unknown>
}

/** A value now (the memory engine) or later (Redis). */
export type Awaitable<T> = T | PromiseLike<T>

/**
 * What a node hears: a frame appended to a stream it listens to (in offset order per stream), a
 * room change or a session end of a user whose stream it listens to, an engine failure, and
 * `reset`: the node may have missed events of `streams` (of every stream, when absent) because its
 * link to the engine dropped, so the connections reading them must resume. A `join` carries the
 * room stream's position the user reads the room from.
 */
export type EngineEvent =
  | { type: 'frame'; stream: string; position: Position; frame: Record<string, unknown> }
  | { type: 'join'; user: string; room: string; position?: Position }
  | { type: 'leave'; user: string; room: string }
  | { type: 'end'; user: string; reason?: string }
  | { type: 'error'; error: Error }
  | { type: 'reset'; streams?: string[] }

/**
 * Everything the server must share between nodes. Methods may answer at once (the memory engine)
 * or with a Promise (Redis); the server keeps the order either way: a connection buffers live
 * frames while its resume is read, and drops what its replay already sent (by position).
 */
export interface Engine {
  /**
   * Starts hearing events (of every node on the same store); resolves once the engine is reached.
   * Returns the function that stops it.
   */
  subscribe(listener: (event: EngineEvent) => void): Awaitable<() => void>
  /**
   * Hears `stream` from now on: its frames and, for a user's stream, that user's room changes and
   * session end. Resolves once nothing appended to it from then on can be missed. Counted: each
   * call is undone by one `unlisten`. An engine without these two tells every node everything.
   */
  listen?(stream: string): Awaitable<void>
  unlisten?(stream: string): void
  /** Appends a frame to a stream and returns its position; its listeners hear it (a `frame` event). */
  append(stream: string, frame: Record<string, unknown>): Awaitable<Position>
  /** The position of the last frame of a stream (offset 0 before any). */
  tip(stream: string): Awaitable<Position>
  /** The frames after `from`, in order; undefined when the history no longer covers them (trimmed, another epoch). */
  since(stream: string, from: Position): Awaitable<Stored[] | undefined>
  /**
   * Records a message id for a user: true to handle it, false if it is already in the window (a
   * duplicate: ack it again), `'busy'` if it is being handled elsewhere (neither handle nor ack).
   */
  remember(user: string, id: string): Awaitable<boolean | 'busy'>
  /** Takes an id out of the window again (its handler failed: the resend must run it). */
  forget(user: string, id: string): Awaitable<void>
  /**
   * Marks a remembered id handled, before its ack leaves. An engine that has it keeps an id only
   * briefly until then (a claim), so that a node dying mid-handler does not leave it marked handled.
   */
  handled?(user: string, id: string): Awaitable<void>
  /** Adds a user to a room; the listeners of the user's stream hear it (a `join` event). */
  join(user: string, room: string): Awaitable<void>
  leave(user: string, room: string): Awaitable<void>
  rooms(user: string): Awaitable<string[]>
  /**
   * The user's rooms, each with its stream's position when the user joined (kept by `join`, with the
   * membership, in one step): a login with no position for a room's stream resumes from there.
   * Null for a membership the engine has no position of. Without this method, `rooms` is read and
   * such streams start at their tip.
   */
  joined?(user: string): Awaitable<Record<string, Position | null>>
  /**
   * What a login reads of its user, in one step where the engine can: `joined(user)`, and the
   * user's own stream (`userStream`): its tip, and the frames after `from` (undefined when the
   * history does not cover them, or when there is no `from`). Without it, a login calls `joined`
   * (or `rooms`), `since` and `tip`.
   */
  login?(
    user: string,
    from: Position | undefined,
  ): Awaitable<{
    joined: Record<string, Position | null>
    tip: Position
    missed: Stored[] | undefined
  }>
  members(room: string): Awaitable<string[]>
  /** Tells the nodes listening to the user's stream to end its sessions (an `end` event). */
  end(user: string, reason?: string): Awaitable<void>
  /** Releases what the engine holds (connections). `server.close()` calls it. */
  close?(): Awaitable<void>
}

/**
 * `mpbus/server`: the other end of an mpbus client, on `ws` (Node only). It speaks
 * docs/protocol.md: login first and nothing else before its answer, the heartbeat reply, an ack
 * for every message with an id, duplicates dropped by (user, id), the session end, and pushes that
 * carry their stream position so that a client resumes what it missed, even after a cold start.
 */
import type { Server as HttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { type RawData, type WebSocket, WebSocketServer } from 'ws'
import { MpbusError } from '../errors'
import { uncork } from '../task'
import { createAcks } from './acks'
import { memoryEngine } from './memory-engine'
import { outletOf } from './outlet'
import { batchOf, type Frame, OP, positioned, type Resumed, resume, roomStream, userStream } from './streams'
import type { Engine, EngineEvent, Position } from './types'

export type { ConformanceOptions, ConformanceResult } from './conformance'
export { checkConformance } from './conformance'
export type { MemoryEngine, MemoryEngineOptions } from './memory-engine'
export { memoryEngine } from './memory-engine'
export type { RedisEngine, RedisEngineOptions } from './redis-engine'
export { redisEngine } from './redis-engine'
export { roomStream, userStream } from './streams'
export type { Awaitable, Engine, EngineEvent, Position, Stored } from './types'

/** What `authenticate` decides: the user, with fields for the login answer; or a refusal. */
export type LoginDecision =
  | string
  | { user: string; fields?: Record<string, unknown> }
  | { refuse: string; reason?: string }
  | null
  | undefined

export interface HandlerContext {
  /** The connection's user, as `authenticate` named it. */
  user: string
  /** Sends a frame to this connection only (not stored: a reply, not a push). */
  reply(op: string, payload?: Record<string, unknown>): void
  /** Pushes to every connection of this user, through the user's stream. */
  push(op: string, payload?: Record<string, unknown>): Promise<Position>
}

/** Runs for a message; the ack leaves when it returns (or its Promise resolves). A throw withholds the ack: the client resends. */
export type ServerHandler = (frame: Frame, context: HandlerContext) => void | PromiseLike<void>

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
  /** A handler that threw, a frame refused, an engine failure: for logs. @default none */
  onError?: (error: Error, user: string | undefined) => void
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

/** The protocol's names (docs/protocol.md). */
const ID = 'MsgId'
const LOGIN = 'userLogin'

/** Close codes: the engine failed or a connection may have missed live frames; the client reconnects and resumes. */
const ENGINE_DOWN = 1013
const RESUME = 1012

/** A logged-in connection, as the fan-out sees it. */
interface Conn {
  ws: WebSocket
  user: string
  /** Live frames heard while the resume is read, sent after it; null once the resume is out. */
  pending: Array<{ stream: string; position: Position; out: string }> | null
  /** The last position sent per stream: a frame at or before it is a repeat. */
  at: Map<string, Position>
  streams: Set<string>
}

export async function createServer(options: ServerOptions): Promise<MpbusServer> {
  if (!options || typeof options.authenticate !== 'function')
    throw new MpbusError('BAD_OPTION', 'authenticate must be a function')
  const engine = options.engine || memoryEngine()
  const handlers = new Map(Object.entries(options.handlers || {}))
  const rate = options.rate || { frames: 1000, interval: 1000 }
  const maxPayload = options.maxFrameBytes === undefined ? 1 << 20 : options.maxFrameBytes
  if (!(rate.frames >= 1 && rate.interval >= 1 && maxPayload >= 1))
    throw new MpbusError('BAD_OPTION', 'rate.frames, rate.interval and maxFrameBytes must be >= 1')
  const onError = options.onError || (() => {})
  const closeTimeout = options.closeTimeout === undefined ? 5000 : options.closeTimeout
  /** The frame chains of every connection, until they settle: `close()` waits for them. */
  const running = new Set<Promise<void>>()
  /** Logged-in connections of this node, by user and by the streams they read. */
  const byUser = new Map<string, Set<Conn>>()
  const byStream = new Map<string, Set<Conn>>()

  function send(ws: WebSocket, frame: Frame): void {
    outletOf(ws).send(JSON.stringify(frame))
  }

  function frameOf(op: string, payload: Record<string, unknown> | undefined): Frame {
    return Object.assign({}, payload, { [OP]: op })
  }

  function add<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
    let set = map.get(key)
    if (!set) {
      set = new Set()
      map.set(key, set)
    }
    set.add(value)
  }

  function remove<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
    const set = map.get(key)
    if (set && set.delete(value) && !set.size) map.delete(key)
  }

  function listen(conn: Conn, stream: string): void {
    conn.streams.add(stream)
    add(byStream, stream, conn)
  }

  function drop(conn: Conn): void {
    remove(byUser, conn.user, conn)
    for (const stream of conn.streams) remove(byStream, stream, conn)
  }

  /** Sends a live frame unless the connection already has it; a gap (or another epoch) means it must resume. */
  function deliver(conn: Conn, stream: string, position: Position, out: string): void {
    if (conn.pending) {
      conn.pending.push({ stream, position, out })
      return
    }
    const last = conn.at.get(stream)
    if (last && last.epoch === position.epoch && position.offset <= last.offset) return
    if (last && (last.epoch !== position.epoch || position.offset !== last.offset + 1)) {
      onError(
        new Error(
          `${stream}: ${last.offset}@${last.epoch} then ${position.offset}@${position.epoch}: resume`,
        ),
        conn.user,
      )
      outletOf(conn.ws).close(RESUME, 'resume')
      return
    }
    conn.at.set(stream, position)
    outletOf(conn.ws).send(out)
  }

  /** What every node hears from the engine, in the engine's order. */
  function hear(event: EngineEvent): void {
    if (event.type === 'frame') {
      const set = byStream.get(event.stream)
      if (!set) return
      const out = JSON.stringify(positioned(event.frame, event.stream, event.position))
      for (const conn of Array.from(set)) deliver(conn, event.stream, event.position, out)
    } else if (event.type === 'join' || event.type === 'leave') {
      const stream = roomStream(event.room)
      for (const conn of Array.from(byUser.get(event.user) || [])) {
        if (event.type === 'join') listen(conn, stream)
        else {
          conn.streams.delete(stream)
          conn.at.delete(stream)
          remove(byStream, stream, conn)
        }
      }
    } else if (event.type === 'end') {
      for (const conn of Array.from(byUser.get(event.user) || [])) {
        send(conn.ws, { [OP]: 'SessionEnd', reason: event.reason })
        outletOf(conn.ws).close(4001, 'session ended')
      }
    } else if (event.type === 'error') onError(event.error, undefined)
    else if (event.type === 'reset')
      for (const set of Array.from(byUser.values()))
        for (const conn of Array.from(set)) outletOf(conn.ws).close(RESUME, 'engine reset')
  }

  // Before the first connection: a node hears everything appended after it accepts a login.
  const unsubscribe = await engine.subscribe(hear)
  const wss = new WebSocketServer(
    options.server
      ? { server: options.server, maxPayload }
      : { port: options.port || 0, host: options.host, maxPayload },
  )
  if (!options.server) await new Promise<void>((resolve) => wss.once('listening', resolve))
  const address = (options.server ? options.server.address() : wss.address()) as AddressInfo | null
  const port = address ? address.port : 0

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
        onError(e as Error, user)
        throw e
      }
    })()
    result.catch(() => {})
    return result
  }

  const push = (user: string, op: string, payload?: Record<string, unknown>) =>
    store(user, () => engine.append(userStream(user), frameOf(op, payload)))

  wss.on('connection', (ws) => {
    let conn: Conn | undefined
    /** `closed`: the connection is being refused; nothing queued behind runs (it would run out of order). */
    let phase: 'login' | 'authenticating' | 'ready' | 'closed' = 'login'
    let windowStart = Date.now()
    let count = 0
    /** Set while reading is paused for the rate: its gate opens when the interval ends (or at close). */
    let throttle: { open(): void; timer: ReturnType<typeof setTimeout> } | undefined
    const ack = createAcks((frame) => send(ws, frame), options.batchAcks !== false, 'Ack', ID)
    /** Frames run one after another, so acks leave in order and a handler sees order. */
    let chain: Promise<void> = Promise.resolve()

    const refuse = (code: number, reason: string, error: Error = new Error(`refused: ${reason}`)) => {
      phase = 'closed'
      onError(error, conn && conn.user)
      outletOf(ws).close(code, reason)
    }

    function context(me: string): HandlerContext {
      return {
        user: me,
        reply: (op, payload) => send(ws, frameOf(op, payload)),
        push: (op, payload) => push(me, op, payload),
      }
    }

    async function login(frame: Frame): Promise<void> {
      let decision: LoginDecision
      try {
        decision = await options.authenticate(frame)
      } catch (e) {
        onError(e as Error, undefined)
        decision = null
      }
      if (ws.readyState !== ws.OPEN) return
      const name = typeof decision === 'string' ? decision : decision && 'user' in decision && decision.user
      if (!name) {
        const refusal =
          decision && typeof decision === 'object' && 'refuse' in decision ? decision : undefined
        send(ws, { [OP]: refusal ? refusal.refuse : 'LoginError', reason: refusal && refusal.reason })
        ws.close(1008, 'login refused')
        return
      }
      const me: Conn = { ws, user: name, pending: [], at: new Map(), streams: new Set() }
      conn = me
      add(byUser, name, me)
      const fields =
        typeof decision === 'object' && decision && 'fields' in decision ? decision.fields : undefined
      let resumed: Resumed
      try {
        // Live frames heard meanwhile wait in `pending`: none overtakes the answer or the replay.
        resumed = await resume(engine, name, frame, fields, (streams) => {
          for (const stream of streams) listen(me, stream)
        })
      } catch (e) {
        // The client backs off and logs in again: a login the engine cannot serve is refused, not half served.
        return refuse(ENGINE_DOWN, 'engine unavailable', e as Error)
      }
      if (ws.readyState !== ws.OPEN) return
      // From the answer on, a client that takes batches gets the replay, and what follows, in few messages.
      outletOf(ws).batch(batchOf(frame))
      for (const out of resumed.frames) send(ws, out)
      for (const [stream, position] of resumed.at) me.at.set(stream, position)
      const pending = me.pending || []
      me.pending = null
      for (const p of pending) deliver(me, p.stream, p.position, p.out)
      phase = 'ready'
    }

    async function message(frame: Frame): Promise<void> {
      const me = (conn as Conn).user
      const op = frame[OP] as string
      const id = typeof frame[ID] === 'string' && frame[ID] ? (frame[ID] as string) : undefined
      if (id) {
        let fresh: boolean | 'busy'
        try {
          fresh = await engine.remember(me, id)
        } catch (e) {
          // Not handled, not acked: the client resends it, in order, on its next connection.
          return refuse(ENGINE_DOWN, 'engine unavailable', e as Error)
        }
        // Being handled elsewhere: acking could lose it (that handler may fail), handling it now
        // could run it twice, and skipping it would let the next message overtake it.
        if (fresh === 'busy') return refuse(ENGINE_DOWN, `message ${id} is being handled`)
        if (!fresh) {
          ack(id)
          return
        }
      }
      const handler = handlers.get(op)
      try {
        if (handler) await handler(frame, context(me))
      } catch (e) {
        onError(e as Error, me)
        if (id) await store(me, () => engine.forget(me, id)).catch(() => {})
        return
      }
      if (id && engine.handled) {
        const mark = engine.handled.bind(engine)
        try {
          await mark(me, id)
        } catch (e) {
          // Handled but not marked: no ack; the resend is handled again once the claim expires.
          return refuse(ENGINE_DOWN, 'engine unavailable', e as Error)
        }
      }
      if (id) ack(id)
    }

    ws.on('message', (data: RawData, binary: boolean) => {
      if (phase === 'closed') return
      const now = Date.now()
      if (now - windowStart >= rate.interval) {
        windowStart = now
        count = 0
      }
      if (++count > rate.frames && !throttle) {
        // Past the rate: stop reading, and hold the frames already read (one read's worth) behind
        // a gate that opens when the interval ends. TCP holds the client back; nothing is refused.
        ws.pause()
        const gate = new Promise<void>((open) => {
          throttle = { open, timer: setTimeout(open, windowStart + rate.interval - now) }
        })
        chain = chain.then(() =>
          gate.then(() => {
            throttle = undefined
            windowStart = Date.now()
            count = 0
            if (phase !== 'closed') ws.resume()
          }),
        )
      }
      let frame: Frame
      try {
        frame = binary ? undefined : JSON.parse(data.toString())
      } catch {
        return refuse(1007, 'not JSON')
      }
      if (
        !frame ||
        typeof frame !== 'object' ||
        Array.isArray(frame) ||
        typeof frame[OP] !== 'string' ||
        !frame[OP]
      )
        return refuse(1007, `no ${OP}`)
      const op = frame[OP] as string
      // A heartbeat is answered whenever it comes, and the answer says nothing of the session.
      // Answered at once, even behind a slow handler; before the login answer, it waits behind the login.
      if (op === 'Heart') {
        if (phase === 'ready') send(ws, { [OP]: 'HeartOK' })
        else if (phase === 'authenticating')
          chain = chain.then(() => (phase === 'ready' ? send(ws, { [OP]: 'HeartOK' }) : undefined))
        return
      }
      if (phase === 'login' && op === LOGIN) {
        phase = 'authenticating'
        chain = chain.then(() => login(frame))
        return
      }
      if (phase === 'login') return refuse(1008, 'login first')
      // Frames right behind the login wait for its answer: the chain runs them after it.
      chain = chain.then(() => (phase === 'ready' ? message(frame) : undefined))
      const current = chain.catch(() => {})
      running.add(current)
      current.then(() => running.delete(current))
    })
    ws.on('close', () => {
      phase = 'closed'
      if (throttle) {
        clearTimeout(throttle.timer)
        throttle.open()
      }
      if (conn) drop(conn)
    })
    ws.on('error', (e) => onError(e, conn && conn.user))
  })

  return {
    port,
    push,
    publish: (room, op, payload) =>
      store(undefined, () => engine.append(roomStream(room), frameOf(op, payload))),
    join: (user, room) => store(user, () => engine.join(user, room)),
    leave: (user, room) => store(user, () => engine.leave(user, room)),
    end: (user, reason) => store(user, () => engine.end(user, reason)),
    // A connection whose login is still being served (its resume read) is not logged in yet.
    connections: (user) => Array.from(byUser.get(user) || []).filter((c) => c.pending === null).length,
    async close() {
      unsubscribe()
      await new Promise<void>((resolve) => {
        for (const ws of wss.clients) {
          outletOf(ws).flush()
          uncork(ws)
          ws.terminate()
        }
        wss.close(() => resolve())
      })
      // Frames queued behind are skipped (their connections are closed); the one running finishes.
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.all(Array.from(running)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, closeTimeout)
        }),
      ])
      clearTimeout(timer)
      if (engine.close) await engine.close()
    },
  }
}

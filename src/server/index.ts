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
import { memoryEngine } from './memory-engine'
import { type Frame, OP, positioned, resume, roomStream, userStream } from './streams'
import type { Engine, Position } from './types'

export type { ConformanceOptions, ConformanceResult } from './conformance'
export { checkConformance } from './conformance'
export type { MemoryEngineOptions } from './memory-engine'
export { memoryEngine } from './memory-engine'
export { roomStream, userStream } from './streams'
export type { Engine, Position, Stored } from './types'

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
  push(op: string, payload?: Record<string, unknown>): Position
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
  /** @default memoryEngine() */
  engine?: Engine
  /** Handlers by operator. A message with no handler is acked and otherwise ignored. */
  handlers?: Record<string, ServerHandler>
  /** Frames larger than this close the connection with 1009 (by `ws`). @default 1048576 */
  maxFrameBytes?: number
  /** At most `frames` inbound frames per `interval` ms per connection; more close it with 1008. @default { frames: 200, interval: 1000 } */
  rate?: { frames: number; interval: number }
  /** A handler that threw, a frame refused: for logs. @default none */
  onError?: (error: Error, user: string | undefined) => void
}

export interface MpbusServer {
  /** The port listened on (that of `server` when attached, if it was listening). */
  readonly port: number
  /** Pushes to every connection of `user`; kept in the user's stream for those offline. */
  push(user: string, op: string, payload?: Record<string, unknown>): Position
  /** Pushes to every member of `room`, connected or not (kept in the room's stream). */
  publish(room: string, op: string, payload?: Record<string, unknown>): Position
  join(user: string, room: string): void
  leave(user: string, room: string): void
  /** Sends `SessionEnd` to every connection of `user` and closes them: their buses stop for good. */
  end(user: string, reason?: string): void
  /** Connections of `user` that are logged in. */
  connections(user: string): number
  close(): Promise<void>
}

/** The protocol's names (docs/protocol.md). */
const ID = 'MsgId'
const LOGIN = 'userLogin'

export async function createServer(options: ServerOptions): Promise<MpbusServer> {
  if (!options || typeof options.authenticate !== 'function')
    throw new MpbusError('BAD_OPTION', 'authenticate must be a function')
  const engine = options.engine || memoryEngine()
  const handlers = new Map(Object.entries(options.handlers || {}))
  const rate = options.rate || { frames: 200, interval: 1000 }
  const maxPayload = options.maxFrameBytes === undefined ? 1 << 20 : options.maxFrameBytes
  if (!(rate.frames >= 1 && rate.interval >= 1 && maxPayload >= 1))
    throw new MpbusError('BAD_OPTION', 'rate.frames, rate.interval and maxFrameBytes must be >= 1')
  const onError = options.onError || (() => {})
  const wss = new WebSocketServer(
    options.server
      ? { server: options.server, maxPayload }
      : { port: options.port || 0, host: options.host, maxPayload },
  )
  if (!options.server) await new Promise<void>((resolve) => wss.once('listening', resolve))
  const address = (options.server ? options.server.address() : wss.address()) as AddressInfo | null
  const port = address ? address.port : 0
  /** Logged-in connections by user. */
  const byUser = new Map<string, Set<WebSocket>>()

  function send(ws: WebSocket, frame: Frame): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(frame))
  }

  function frameOf(op: string, payload: Record<string, unknown> | undefined): Frame {
    return Object.assign({}, payload, { [OP]: op })
  }

  /** Appends to a stream and sends to the logged-in connections of `users`. */
  function deliver(stream: string, users: string[], op: string, payload?: Record<string, unknown>) {
    const frame = frameOf(op, payload)
    const position = engine.append(stream, frame)
    const out = JSON.stringify(positioned(frame, stream, position))
    for (const user of users)
      for (const ws of byUser.get(user) || []) if (ws.readyState === ws.OPEN) ws.send(out)
    return position
  }

  const push = (user: string, op: string, payload?: Record<string, unknown>) =>
    deliver(userStream(user), [user], op, payload)

  wss.on('connection', (ws) => {
    let user: string | undefined
    let phase: 'login' | 'authenticating' | 'ready' = 'login'
    let windowStart = Date.now()
    let count = 0
    /** Frames run one after another, so acks leave in order and a handler sees order. */
    let chain: Promise<void> = Promise.resolve()

    const refuse = (code: number, reason: string) => {
      onError(new Error(`refused: ${reason}`), user)
      ws.close(code, reason)
    }

    function context(): HandlerContext {
      const me = user as string
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
      user = name
      phase = 'ready'
      let set = byUser.get(name)
      if (!set) {
        set = new Set()
        byUser.set(name, set)
      }
      set.add(ws)
      const fields =
        typeof decision === 'object' && decision && 'fields' in decision ? decision.fields : undefined
      // All in one turn: no live frame can come between the answer, the resyncs and the replay.
      for (const out of resume(engine, name, frame, fields)) send(ws, out)
    }

    async function message(frame: Frame): Promise<void> {
      const me = user as string
      const op = frame[OP] as string
      const id = typeof frame[ID] === 'string' && frame[ID] ? (frame[ID] as string) : undefined
      if (id && !engine.remember(me, id)) {
        send(ws, { [OP]: 'Ack', [ID]: id })
        return
      }
      const handler = handlers.get(op)
      try {
        if (handler) await handler(frame, context())
      } catch (e) {
        if (id) engine.forget(me, id)
        onError(e as Error, me)
        return
      }
      if (id) send(ws, { [OP]: 'Ack', [ID]: id })
    }

    ws.on('message', (data: RawData, binary: boolean) => {
      const now = Date.now()
      if (now - windowStart >= rate.interval) {
        windowStart = now
        count = 0
      }
      if (++count > rate.frames) return refuse(1008, 'rate limit')
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
          chain = chain.then(() => (user ? send(ws, { [OP]: 'HeartOK' }) : undefined))
        return
      }
      if (phase === 'login' && op === LOGIN) {
        phase = 'authenticating'
        chain = chain.then(() => login(frame))
        return
      }
      if (phase === 'login') return refuse(1008, 'login first')
      // Frames right behind the login wait for its answer: the chain runs them after it.
      chain = chain.then(() => (user ? message(frame) : undefined))
    })
    ws.on('close', () => {
      if (!user) return
      const set = byUser.get(user)
      if (set) set.delete(ws)
      if (set && !set.size) byUser.delete(user)
    })
    ws.on('error', (e) => onError(e, user))
  })

  return {
    port,
    push,
    publish: (room, op, payload) => deliver(roomStream(room), engine.members(room), op, payload),
    join: (user, room) => engine.join(user, room),
    leave: (user, room) => engine.leave(user, room),
    end(user, reason) {
      for (const ws of byUser.get(user) || []) {
        send(ws, { [OP]: 'SessionEnd', reason })
        ws.close(4001, 'session ended')
      }
    },
    connections: (user) => (byUser.get(user) || new Set()).size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate()
        wss.close(() => resolve())
      }),
  }
}

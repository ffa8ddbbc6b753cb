/**
 * The state of one connection of `mpbus/server` (connection.ts takes its frames): one object and
 * one `phase`, and what its login path (login.ts) and its message path (message.ts) share: the
 * chain that runs its frames one after another, the read gate, and `refuse`.
 */
import type { RawData, WebSocket } from 'ws'
import { asMpbusError, type MpbusError } from '../errors'
import { CLOSE_INTERNAL, type Frame, type Position } from '../protocol'
import type { Fanout, Reader } from './fanout'
import type { Gate, Rate } from './rate'
import { close } from './send'
import type { Engine, LoginDecision, Phase, ServerHandler } from './types'

/** What every connection of a node shares: its options, resolved, and its parts (src/server/index.ts). */
export interface Node {
  authenticate(login: Frame, c: Connection): LoginDecision | PromiseLike<LoginDecision>
  /** The handler of an operator, if any. */
  handler(op: string, c: Connection): ServerHandler | undefined
  batchAcks: boolean
  /** The ack's operator and the id field (docs/protocol.md); `idKey: false`: no ids, no acks. */
  ackOp: string
  idKey: string | false
  rate: Rate
  /** Frames, and their bytes, read and waiting to run: past either, the socket is not read. */
  backlog: { frames: number; bytes: number }
  /** Longer message ids close the connection (1007), unhandled. */
  maxIdLength: number
  /** ms to complete the login (not a finite number: no limit). */
  loginTimeout: number
  /** Connections that answered the last ping or sent anything since (src/server/index.ts pings). */
  alive: WeakSet<WebSocket>
  engine: Engine
  fanout: Fanout
  /** The frame chains of every connection, until they settle: `close()` waits for them. */
  running: Set<Promise<void>>
  report(error: MpbusError, user: string | undefined): void
  /** Runs an engine call; a failure is reported (`ENGINE_DOWN`) and rethrown. */
  store<T>(user: string | undefined, call: () => T | PromiseLike<T>): Promise<T>
  push(user: string, op: string, payload?: Record<string, unknown>): Promise<Position>
  // The test kit's hooks around the protocol (src/testing/test-server.ts); mpbus/server sets none.
  /** Sees every inbound frame first, as it came; `true`: taken, the connection does nothing more with it. */
  tap?(c: Connection, data: RawData, binary: boolean): boolean
  /** The user of a connection whose first frame is no login, served without a login answer; without it, refused (1008). */
  anonymous?(c: Connection): string
  /** Whether this connection's acks are lost on the way (a fault to inject). */
  withholdAck?(c: Connection): boolean
}

export interface Connection extends Reader {
  readonly node: Node
  phase: Phase
  /** '' until `authenticate` names one. */
  user: string
  /** Frames run one after another, so acks leave in order and a handler sees order. */
  chain: Promise<void>
  ack(id: string): void
  gate: Gate
  /** Frames read and not yet run, and their bytes (`backlog`). */
  waiting: number
  waitingBytes: number
  /** Whether reading is paused (by the rate gate or the backlog). */
  paused: boolean
  /** Closes the connection if its login is not done within `loginTimeout`; cleared once ready or closed. */
  loginTimer: ReturnType<typeof setTimeout> | undefined
}

/** Reads the socket unless the rate gate or the backlog holds it. */
export function reading(c: Connection): void {
  if (c.phase === 'closed') return
  const { backlog } = c.node
  const hold = !!c.gate.held || c.waiting >= backlog.frames || c.waitingBytes >= backlog.bytes
  if (hold === c.paused) return
  c.paused = hold
  if (hold) c.ws.pause()
  else {
    // Its pongs were not read while paused: the liveness check counts from here.
    c.node.alive.add(c.ws)
    c.ws.resume()
  }
}

/**
 * Runs `step` after every frame before it (and after what `step` returns settles, the next).
 * `size` bytes wait meanwhile, counted against `backlog`. A failure nobody expected is reported
 * and closes the connection (1011): never an unhandled rejection.
 */
export function inTurn(c: Connection, size: number, step: () => unknown): void {
  c.waiting++
  c.waitingBytes += size
  reading(c)
  c.chain = c.chain
    .then(() => {
      c.waiting--
      c.waitingBytes -= size
      reading(c)
      return c.phase === 'closed' ? undefined : step()
    })
    .then(
      () => {},
      (e) => {
        if (c.phase !== 'closed') refuse(c, CLOSE_INTERNAL, asMpbusError('SOCKET_ERROR', e))
      },
    )
}

/** Closes the connection for a fault of its own or the engine's; nothing queued behind runs (it would run out of order). */
export function refuse(c: Connection, code: number, error: MpbusError): void {
  c.phase = 'closed'
  c.node.report(error, c.user || undefined)
  const reason = error.code === 'ENGINE_DOWN' ? 'engine unavailable' : error.message
  // A close reason is at most 123 bytes (RFC 6455, 5.5): a longer one would throw here.
  close(c.ws, code, Buffer.byteLength(reason) <= 123 ? reason : error.code)
}

/** Read through a call: TypeScript would narrow `phase` across the awaits that change it. */
export const isClosed = (c: Connection) => c.phase === 'closed'

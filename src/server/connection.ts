/**
 * One connection of `mpbus/server`, from its first frame to its close (docs/protocol.md): the
 * login first and nothing before its answer, the heartbeat's reply, the rate gate, the handlers
 * one frame after another, and the acks. Its state is one object and one `phase`:
 *
 *   login ─ userLogin ─▶ authenticating ─ accepted ─▶ resuming ─ replay sent ─▶ ready
 *     └─ anything else, a refusal, an engine failure, the socket's close: closed ◀─┘
 *
 * `authenticating` and `resuming` both hold what comes behind the login until the answer is out;
 * `resuming` also holds the live frames of its streams (src/server/fanout.ts).
 */
import type { RawData, WebSocket } from 'ws'
import { asMpbusError, MpbusError } from '../errors'
import {
  CLOSE_INTERNAL,
  CLOSE_LOGIN_TIMEOUT,
  CLOSE_NOT_A_FRAME,
  CLOSE_POLICY,
  CLOSE_TRY_LATER,
  type Frame,
  HEART,
  HEART_OK,
  isFrame,
  LOGIN,
  LOGIN_ERROR,
  OP,
  type Position,
} from '../protocol'
import { createAcks } from './acks'
import { add, deliver, drop, type Fanout, listen, type Reader } from './fanout'
import { admit, createGate, type Gate, type Rate, release } from './rate'
import { noHandler, Refusal, refusalFrame } from './refusal'
import { batch, close, send } from './send'
import { batchOf, frameOf, type Resumed, resume } from './streams'
import type { Engine, HandlerContext, LoginDecision, Phase, ServerHandler } from './types'

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

/** Takes a new socket: from here on its frames are this module's. */
export function accept(node: Node, ws: WebSocket): Connection {
  const c: Connection = {
    node,
    ws,
    phase: 'login',
    user: '',
    held: [],
    at: new Map(),
    streams: new Set(),
    chain: Promise.resolve(),
    ack: createAcks((frame) => send(ws, frame), node.batchAcks, node.ackOp, node.idKey || undefined),
    gate: createGate(),
    waiting: 0,
    waitingBytes: 0,
    paused: false,
    loginTimer: undefined,
  }
  if (Number.isFinite(node.loginTimeout))
    c.loginTimer = setTimeout(() => {
      if (c.phase === 'ready' || c.phase === 'closed') return
      refuse(c, CLOSE_LOGIN_TIMEOUT, new MpbusError('TIMEOUT', `no login within ${node.loginTimeout} ms`))
    }, node.loginTimeout)
  node.alive.add(ws)
  ws.on('pong', () => node.alive.add(ws))
  ws.on('message', (data: RawData, binary: boolean) => onMessage(c, data, binary))
  ws.on('close', () => onClose(c))
  ws.on('error', (e: Error & { code?: string }) => {
    const large = e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' // past maxFrameBytes: `ws` closes with 1009
    node.report(new MpbusError(large ? 'FRAME_TOO_LARGE' : 'SOCKET_ERROR', e.message, e), c.user || undefined)
  })
  return c
}

/** Reads the socket unless the rate gate or the backlog holds it. */
function reading(c: Connection): void {
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
function then(c: Connection, size: number, step: () => unknown): void {
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
function refuse(c: Connection, code: number, error: MpbusError): void {
  c.phase = 'closed'
  c.node.report(error, c.user || undefined)
  const reason = error.code === 'ENGINE_DOWN' ? 'engine unavailable' : error.message
  // A close reason is at most 123 bytes (RFC 6455, 5.5): a longer one would throw here.
  close(c.ws, code, Buffer.byteLength(reason) <= 123 ? reason : error.code)
}

function onMessage(c: Connection, data: RawData, binary: boolean) {
  if (c.phase === 'closed' || (c.node.tap && c.node.tap(c, data, binary))) return
  const size = (data as Buffer).length || 0
  const wait = admit(c.gate, c.node.rate)
  if (wait) {
    reading(c)
    c.chain = c.chain.then(() => wait.then(() => reading(c)))
  }
  let frame: unknown
  try {
    frame = binary ? undefined : JSON.parse(data.toString())
  } catch {
    return refuse(c, CLOSE_NOT_A_FRAME, new MpbusError('BAD_FRAME', 'not JSON'))
  }
  if (!isFrame(frame, OP) || !frame[OP])
    return refuse(c, CLOSE_NOT_A_FRAME, new MpbusError('BAD_FRAME', `no ${OP}`))
  const op: string = frame[OP]
  if (c.phase === 'login' && op !== LOGIN) {
    const user = c.node.anonymous ? c.node.anonymous(c) : ''
    // Before the login a heartbeat is ignored, not refused.
    if (!user)
      return op === HEART
        ? undefined
        : refuse(c, CLOSE_POLICY, new MpbusError('LOGIN_REQUIRED', 'login first'))
    c.phase = 'authenticating'
    then(c, 0, () => enter(c, user, { [OP]: LOGIN }, undefined, false))
  }
  // A heartbeat is answered whenever it comes, and the answer says nothing of the session: at
  // once, even behind a slow handler; before the login's answer, after it.
  if (op === HEART) {
    if (c.phase === 'ready') send(c.ws, { [OP]: HEART_OK })
    else then(c, 0, () => c.phase === 'ready' && send(c.ws, { [OP]: HEART_OK }))
    return
  }
  if (c.phase === 'login') {
    c.phase = 'authenticating'
    return then(c, size, () => login(c, frame))
  }
  // Frames right behind the login wait for its answer: the chain runs them after it.
  then(c, size, () => c.phase === 'ready' && message(c, frame))
  const current = c.chain.catch(() => {})
  c.node.running.add(current)
  current.then(() => c.node.running.delete(current))
}

function onClose(c: Connection): void {
  c.phase = 'closed'
  clearTimeout(c.loginTimer)
  release(c.gate)
  if (c.user) drop(c.node.fanout, c)
}

function context(c: Connection): HandlerContext {
  const { user } = c
  return {
    user,
    reply: (op, payload) => send(c.ws, frameOf(op, payload)),
    push: (op, payload) => c.node.push(user, op, payload),
  }
}

/**
 * A decision of `authenticate` in one of its documented shapes, or undefined: anything else (a
 * number, a user that is no string, fields that are no object) is refused and reported.
 */
function decided(
  decision: unknown,
):
  | { user: string; fields?: Record<string, unknown> }
  | { refuse: string; reason?: string }
  | null
  | undefined {
  if (decision === null || decision === undefined) return null
  if (typeof decision === 'string') return decision ? { user: decision } : undefined
  if (typeof decision !== 'object') return undefined
  const d = decision as Record<string, unknown>
  if ('refuse' in d)
    return typeof d.refuse === 'string' &&
      d.refuse &&
      (d.reason === undefined || typeof d.reason === 'string')
      ? (d as { refuse: string; reason?: string })
      : undefined
  if (typeof d.user !== 'string' || !d.user) return undefined
  const fields = d.fields
  if (fields !== undefined && (typeof fields !== 'object' || fields === null || Array.isArray(fields)))
    return undefined
  return d as { user: string; fields?: Record<string, unknown> }
}

/** Read through a call: TypeScript would narrow `phase` across the awaits that change it. */
const isClosed = (c: Connection) => c.phase === 'closed'

async function login(c: Connection, frame: Frame): Promise<void> {
  const { node, ws } = c
  let decision: ReturnType<typeof decided>
  try {
    const answer: LoginDecision = await node.authenticate(frame, c)
    decision = decided(answer)
    if (decision === undefined)
      node.report(new MpbusError('LOGIN_ERROR', `authenticate returned ${typeof answer}: refused`), undefined)
  } catch (e) {
    node.report(asMpbusError('LOGIN_ERROR', e), undefined)
    decision = null
  }
  // Closed while authenticate ran: nothing of it stays.
  if (isClosed(c)) return
  if (!decision || 'refuse' in decision) {
    c.phase = 'closed'
    send(ws, {
      [OP]: decision ? decision.refuse : LOGIN_ERROR,
      reason: decision ? decision.reason : undefined,
    })
    ws.close(CLOSE_POLICY, 'login refused')
    return
  }
  return enter(c, decision.user, frame, decision.fields, true)
}

/** Serves the connection as `user`: its resume first (after the login's answer, if it gets one), then the live frames. */
async function enter(c: Connection, user: string, frame: Frame, fields: object | undefined, answer: boolean) {
  const { node, ws } = c
  c.user = user
  c.phase = 'resuming'
  add(node.fanout, c)
  let resumed: Resumed
  try {
    resumed = await resume(node.engine, user, frame, fields, (streams) => {
      // Closed while the rooms were read: its close ran already, so it must not listen now.
      if (isClosed(c)) throw new MpbusError('CLOSED', 'closed during the login')
      for (const stream of streams) listen(node.fanout, c, stream)
    })
  } catch (e) {
    if (isClosed(c)) return
    // The client backs off and logs in again: a login the engine cannot serve is refused, not half served.
    return refuse(c, CLOSE_TRY_LATER, asMpbusError('ENGINE_DOWN', e))
  }
  if (isClosed(c)) return
  // From the answer on, a client that takes batches gets the replay, and what follows, in few messages.
  batch(ws, batchOf(frame))
  for (const out of answer ? resumed.frames : resumed.frames.slice(1)) send(ws, out)
  for (const [stream, position] of resumed.at) c.at.set(stream, position)
  c.phase = 'ready'
  clearTimeout(c.loginTimer)
  const held = c.held
  c.held = []
  for (const h of held) deliver(node.fanout, c, h.stream, h.position, h.out)
}

async function message(c: Connection, frame: Frame): Promise<void> {
  const { node, user } = c
  const { engine } = node
  const id =
    node.idKey && typeof frame[node.idKey] === 'string' && frame[node.idKey]
      ? (frame[node.idKey] as string)
      : undefined
  if (id && id.length > node.maxIdLength)
    return refuse(
      c,
      CLOSE_NOT_A_FRAME,
      new MpbusError('BAD_FRAME', `message id over ${node.maxIdLength} characters`),
    )
  if (id) {
    let fresh: boolean | 'busy'
    try {
      fresh = await engine.remember(user, id)
    } catch (e) {
      // Not handled, not acked: the client resends it, in order, on its next connection.
      return refuse(c, CLOSE_TRY_LATER, asMpbusError('ENGINE_DOWN', e))
    }
    // Being handled elsewhere: acking could lose it (that handler may fail), handling it now
    // could run it twice, and skipping it would let the next message overtake it.
    if (fresh === 'busy')
      return refuse(c, CLOSE_TRY_LATER, new MpbusError('IN_PROGRESS', `message ${id} is being handled`))
    if (!fresh) return acknowledge(c, id)
  }
  const handler = node.handler(frame[OP], c)
  let refusal: Refusal | undefined
  try {
    if (handler) await handler(frame, context(c))
    else {
      refusal = noHandler(frame[OP])
      node.report(new MpbusError('NO_HANDLER', refusal.message), user)
    }
  } catch (e) {
    if (e instanceof Refusal) refusal = e
    else {
      node.report(asMpbusError('HANDLER_ERROR', e), user)
      if (id) await node.store(user, () => engine.forget(user, id)).catch(() => {})
      return
    }
  }
  if (refusal) {
    // Not remembered: a resend (the refusal lost with its link) is refused again, not acked.
    if (id) {
      await node.store(user, () => engine.forget(user, id)).catch(() => {})
      send(c.ws, refusalFrame(id, refusal))
    }
    return
  }
  if (id && engine.handled) {
    const mark = engine.handled.bind(engine)
    try {
      await mark(user, id)
    } catch (e) {
      // Handled but not marked: no ack; the resend is handled again once the claim expires.
      return refuse(c, CLOSE_TRY_LATER, asMpbusError('ENGINE_DOWN', e))
    }
  }
  if (id) acknowledge(c, id)
}

function acknowledge(c: Connection, id: string): void {
  if (!(c.node.withholdAck && c.node.withholdAck(c))) c.ack(id)
}

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
  }
  ws.on('message', (data: RawData, binary: boolean) => onMessage(c, data, binary))
  ws.on('close', () => onClose(c))
  ws.on('error', (e: Error & { code?: string }) => {
    const large = e.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' // past maxFrameBytes: `ws` closes with 1009
    node.report(new MpbusError(large ? 'FRAME_TOO_LARGE' : 'SOCKET_ERROR', e.message, e), c.user || undefined)
  })
  return c
}

/** Runs `step` after every frame before it (and after what `step` returns settles, the next). */
function then(c: Connection, step: () => unknown): void {
  c.chain = c.chain.then(step) as Promise<void>
}

/** Closes the connection for a fault of its own or the engine's; nothing queued behind runs (it would run out of order). */
function refuse(c: Connection, code: number, error: MpbusError): void {
  c.phase = 'closed'
  c.node.report(error, c.user || undefined)
  close(c.ws, code, error.code === 'ENGINE_DOWN' ? 'engine unavailable' : error.message)
}

function onMessage(c: Connection, data: RawData, binary: boolean) {
  if (c.phase === 'closed' || (c.node.tap && c.node.tap(c, data, binary))) return
  const wait = admit(c.gate, c.node.rate)
  if (wait) {
    c.ws.pause()
    c.chain = c.chain.then(() => wait.then(() => void (c.phase !== 'closed' && c.ws.resume())))
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
    then(c, () => enter(c, user, { [OP]: LOGIN }, undefined, false))
  }
  // A heartbeat is answered whenever it comes, and the answer says nothing of the session: at
  // once, even behind a slow handler; before the login's answer, after it.
  if (op === HEART) {
    if (c.phase === 'ready') send(c.ws, { [OP]: HEART_OK })
    else then(c, () => c.phase === 'ready' && send(c.ws, { [OP]: HEART_OK }))
    return
  }
  if (c.phase === 'login') {
    c.phase = 'authenticating'
    return then(c, () => login(c, frame))
  }
  // Frames right behind the login wait for its answer: the chain runs them after it.
  then(c, () => c.phase === 'ready' && message(c, frame))
  const current = c.chain.catch(() => {})
  c.node.running.add(current)
  current.then(() => c.node.running.delete(current))
}

function onClose(c: Connection): void {
  c.phase = 'closed'
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

async function login(c: Connection, frame: Frame): Promise<void> {
  const { node, ws } = c
  let decision: LoginDecision
  try {
    decision = await node.authenticate(frame, c)
  } catch (e) {
    node.report(asMpbusError('LOGIN_ERROR', e), undefined)
    decision = null
  }
  if (ws.readyState !== ws.OPEN) return
  const user = typeof decision === 'string' ? decision : decision && 'user' in decision && decision.user
  if (!user) {
    const refusal = decision && typeof decision === 'object' && 'refuse' in decision ? decision : undefined
    c.phase = 'closed'
    send(ws, { [OP]: refusal ? refusal.refuse : LOGIN_ERROR, reason: refusal && refusal.reason })
    ws.close(CLOSE_POLICY, 'login refused')
    return
  }
  const fields =
    typeof decision === 'object' && decision && 'fields' in decision ? decision.fields : undefined
  return enter(c, user, frame, fields, true)
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
      for (const stream of streams) listen(node.fanout, c, stream)
    })
  } catch (e) {
    // The client backs off and logs in again: a login the engine cannot serve is refused, not half served.
    return refuse(c, CLOSE_TRY_LATER, asMpbusError('ENGINE_DOWN', e))
  }
  if (ws.readyState !== ws.OPEN) return
  // From the answer on, a client that takes batches gets the replay, and what follows, in few messages.
  batch(ws, batchOf(frame))
  for (const out of answer ? resumed.frames : resumed.frames.slice(1)) send(ws, out)
  for (const [stream, position] of resumed.at) c.at.set(stream, position)
  c.phase = 'ready'
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
  try {
    if (handler) await handler(frame, context(c))
  } catch (e) {
    node.report(asMpbusError('HANDLER_ERROR', e), user)
    if (id) await node.store(user, () => engine.forget(user, id)).catch(() => {})
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

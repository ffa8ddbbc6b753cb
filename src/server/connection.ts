/**
 * One connection of `mpbus/server`, from its first frame to its close (docs/protocol.md): each
 * frame by the phase it comes in. The login, and what comes behind it until its answer, go the
 * login path (login.ts); a heartbeat is answered; the rest runs through the rate gate and the
 * message path (message.ts), one frame after another. The state is one object and one `phase`
 * (connection-state.ts):
 *
 *   login ─ userLogin ─▶ authenticating ─ accepted ─▶ resuming ─ replay sent ─▶ ready
 *     └─ anything else, a refusal, an engine failure, the socket's close: closed ◀─┘
 *
 * `authenticating` and `resuming` both hold what comes behind the login until the answer is out;
 * `resuming` also holds the live frames of its streams (src/server/fanout.ts).
 */
import type { RawData, WebSocket } from 'ws'
import { MpbusError } from '../errors'
import { CLOSE_NOT_A_FRAME, CLOSE_POLICY, HEART, HEART_OK, isFrame, LOGIN, OP } from '../protocol'
import { createAcks } from './acks'
import { type Connection, inTurn, type Node, reading, refuse } from './connection-state'
import { drop } from './fanout'
import { awaitLogin, enter, login } from './login'
import { message } from './message'
import { admit, createGate, release } from './rate'
import { send } from './send'

export type { Connection, Node } from './connection-state'

/** Takes a new socket: from here on its frames are this module's. */
export function accept(node: Node, ws: WebSocket): Connection {
  const c: Connection = {
    node,
    ws,
    phase: 'login',
    user: '',
    held: [],
    stale: false,
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
  awaitLogin(c)
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
    inTurn(c, 0, () => enter(c, user, { [OP]: LOGIN }, undefined, false))
  }
  // A heartbeat is answered whenever it comes, and the answer says nothing of the session: at
  // once, even behind a slow handler; before the login's answer, after it.
  if (op === HEART) {
    if (c.phase === 'ready') send(c.ws, { [OP]: HEART_OK })
    else inTurn(c, 0, () => c.phase === 'ready' && send(c.ws, { [OP]: HEART_OK }))
    return
  }
  if (c.phase === 'login') {
    c.phase = 'authenticating'
    return inTurn(c, size, () => login(c, frame))
  }
  // Frames right behind the login wait for its answer: the chain runs them after it.
  inTurn(c, size, () => c.phase === 'ready' && message(c, frame))
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

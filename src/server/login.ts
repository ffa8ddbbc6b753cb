/**
 * The login path of a connection (docs/protocol.md, Login): the login first and nothing before
 * its answer, within `loginTimeout`; `authenticate`'s decision, checked; then its resume (the
 * login's answer and the replay), after which the connection is `ready`.
 *
 *   login ─ userLogin ─▶ authenticating ─ accepted ─▶ resuming ─ replay sent ─▶ ready
 */
import { asMpbusError, MpbusError } from '../errors'
import {
  CLOSE_LOGIN_TIMEOUT,
  CLOSE_POLICY,
  CLOSE_RESUME,
  CLOSE_TRY_LATER,
  type Frame,
  LOGIN_ERROR,
  OP,
} from '../protocol'
import { type Connection, isClosed, refuse } from './connection-state'
import { add, deliver, listen, shared } from './fanout'
import { batch, close, send } from './send'
import { batchOf, type Resumed, resume } from './streams'
import type { LoginDecision } from './types'

/** Closes the connection unless its login is done within `loginTimeout`; `enter` and the close clear it. */
export function awaitLogin(c: Connection): void {
  const { loginTimeout } = c.node
  if (Number.isFinite(loginTimeout))
    c.loginTimer = setTimeout(() => {
      if (c.phase === 'ready' || c.phase === 'closed') return
      refuse(c, CLOSE_LOGIN_TIMEOUT, new MpbusError('TIMEOUT', `no login within ${loginTimeout} ms`))
    }, loginTimeout)
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

export async function login(c: Connection, frame: Frame): Promise<void> {
  const { node, ws } = c
  let decision: ReturnType<typeof decided>
  try {
    const answer: LoginDecision = await node.authenticate(frame, c)
    decision = decided(answer)
    if (decision === undefined)
      node.report(new MpbusError('LOGIN_ERROR', `authenticate returned ${typeof answer}: refused`), undefined)
  } catch (e) {
    // The engine failed under it (a `server.join` while Redis is away): not the app's decision to
    // refuse, and the client must not stop for good: it backs off and logs in again.
    if (e instanceof MpbusError && e.code === 'ENGINE_DOWN') return refuse(c, CLOSE_TRY_LATER, e)
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
export async function enter(
  c: Connection,
  user: string,
  frame: Frame,
  fields: object | undefined,
  answer: boolean,
) {
  const { node, ws } = c
  c.user = user
  c.phase = 'resuming'
  add(node.fanout, c)
  let resumed: Resumed
  try {
    resumed = await resume(
      node.engine,
      user,
      frame,
      fields,
      (streams) => {
        // Closed while the rooms were read: its close ran already, so it must not listen now.
        if (isClosed(c)) throw new MpbusError('CLOSED', 'closed during the login')
        return Promise.all(streams.map((stream) => listen(node.fanout, c, stream)))
      },
      (stream, key, read) => shared(node.fanout, stream, key, read),
    )
  } catch (e) {
    if (isClosed(c)) return
    // The client backs off and logs in again: a login the engine cannot serve is refused, not half served.
    return refuse(c, CLOSE_TRY_LATER, asMpbusError('ENGINE_DOWN', e))
  }
  if (isClosed(c)) return
  if (c.stale) return close(ws, CLOSE_RESUME, 'engine reset')
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

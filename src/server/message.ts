/**
 * The message path of a `ready` connection (docs/protocol.md): a message id seen before is acked
 * again and not handled; otherwise its operator's handler runs, and the message is acked, refused
 * (a `Refusal`, or no handler), or, when the handler fails, forgotten so that its resend runs again.
 */
import { asMpbusError, MpbusError } from '../errors'
import { CLOSE_NOT_A_FRAME, CLOSE_TRY_LATER, type Frame, OP } from '../protocol'
import { type Connection, refuse } from './connection-state'
import { noHandler, Refusal, refusalFrame } from './refusal'
import { send } from './send'
import { frameOf } from './streams'
import type { HandlerContext } from './types'

function context(c: Connection): HandlerContext {
  const { user } = c
  return {
    user,
    reply: (op, payload) => send(c.ws, frameOf(op, payload)),
    push: (op, payload) => c.node.push(user, op, payload),
  }
}

export async function message(c: Connection, frame: Frame): Promise<void> {
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

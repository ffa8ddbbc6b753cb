/**
 * Volatile sends (`send(op, payload, { durable: false })`): straight to the socket, never stored.
 * Settled by the socket's result, or by `close()` (through `pending`); while the bus is not ready
 * the message is dropped at once (`DROPPED`, a `drop` event with reason `offline`). The payload
 * rule is the durable one (framing.ts).
 */
import { MpbusError } from '../errors'
import type { Link } from '../transport'
import { checkOperator, type Framing } from './framing'
import type { Pending } from './pending'
import type { BusEvents } from './types'

export function createVolatile(
  framing: Framing,
  pending: Pending,
  /** The link to send on, if the bus is ready; else why not (the bus's state). */
  readyLink: () => Link | string,
  drop: (event: BusEvents['drop']) => void,
): (op: string, payload: unknown) => Promise<void> {
  let count = 0
  return (op, payload) => {
    checkOperator(op)
    const data = framing.encode(op, payload)
    const id = `volatile:${++count}`
    const sent = pending.send(id)
    const link = readyLink()
    if (
      typeof link === 'string' ||
      !link.send(data, (error) => (error ? pending.failed(id, error) : pending.delivered(id)))
    ) {
      const error = new MpbusError('DROPPED', `${op}: bus ${typeof link === 'string' ? link : 'ready'}`)
      pending.failed(id, error)
      drop({ reason: 'offline', envelopes: [], error })
    }
    return sent
  }
}

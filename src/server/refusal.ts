/**
 * Refusals (docs/protocol.md, "Refusals"): the answer to a message the server will not take, an
 * ack that says why, as MQTT 5's PUBACK carries a reason code of 0x80 or above
 * (https://docs.oasis-open.org/mqtt/mqtt/v5.0/os/mqtt-v5.0-os.html#_Toc3901124). The client's
 * `send()` rejects with it, and the message is not resent.
 */
import { ACK, ID, NO_HANDLER, OP, REASON, REFUSED } from '../protocol'

/** What a handler throws to refuse a message: `refused` a code, the message the reason. */
export class Refusal extends Error {
  readonly refused: string

  constructor(refused: string, reason?: string) {
    super(reason === undefined ? refused : reason)
    this.name = 'Refusal'
    this.refused = refused
  }
}

/**
 * Refuses the message being handled, for good: `throw refuse('INVALID', 'text is empty')`. The
 * client's `send()` rejects with `REFUSED` and `'INVALID: text is empty'`; a resend is handled again.
 */
export function refuse(code: string, reason?: string): Refusal {
  return new Refusal(code, reason)
}

/** The frame of a refusal: the ack of `id`, with the code and the reason. */
export function refusalFrame(id: string, refusal: Refusal): Record<string, unknown> {
  return { [OP]: ACK, [ID]: id, [REFUSED]: refusal.refused, [REASON]: refusal.message }
}

/** The refusal of a message whose operator `op` has no handler. */
export const noHandler = (op: string) => new Refusal(NO_HANDLER, `no handler for ${op}`)

// The outbox and the transport apply no defaults of their own: the bus resolves every option once
// (src/bus/options.ts) and hands them what they read. Tests that drive them alone resolve here,
// through the same code.
import { type BusOptions, outboxSettings, resolveOptions } from '../../src/bus/options'
import type { MpbusError } from '../../src/errors'
import { type Envelope, createOutbox as makeOutbox, type Outbox, type OutboxOptions } from '../../src/outbox'
import { createTransport as makeTransport, type TransportOptions } from '../../src/transport'

/** An outbox with the bus's defaults under `options`. */
export const createOutbox = (options?: OutboxOptions): Outbox => makeOutbox(outboxSettings(options))

/** `createOutbox`, keeping every `error` it emits in `errors`. */
export function openOutbox(options: OutboxOptions = {}) {
  const outbox = createOutbox(options)
  const errors: MpbusError[] = []
  outbox.on('error', (e) => errors.push(e))
  return Object.assign(outbox, { errors })
}

/** `outbox.next()`, decoded: the envelope it hands out. */
export function nextOf(outbox: Outbox): Envelope | undefined {
  const next = outbox.next()
  return next && JSON.parse(next.json)
}

/** What a test gives the transport: the bus's options for it, which may leave out what has a default. */
export type TransportInput = Pick<TransportOptions, 'platform' | 'url' | 'shouldReconnect' | 'random'> &
  Pick<BusOptions, 'heartbeat' | 'reconnect' | 'connectTimeout' | 'stopCodes'>

/** A transport with its options resolved as a bus resolves them. */
export function createTransport(options: TransportInput) {
  const { random, ...rest } = options
  return makeTransport({ ...resolveOptions(rest), random })
}

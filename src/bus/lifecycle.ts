/**
 * The bus's lifecycle events (`state`, `open`, `ready`, `close`, `error`, `drop`, `reconnecting`,
 * `resync`, `unhandled`), apart from operators. They ride on a dispatcher, so a listener that
 * throws is reported (`HANDLER_ERROR`) and the listeners after it still run; a throwing `error`
 * listener is only logged, since reporting it would recurse.
 */
import type { MpbusError } from '../errors'
import { createDispatcher } from './dispatcher'
import type { BusEmitter, BusEvents } from './types'

export interface Lifecycle {
  /** What users listen on: after close, only errors and the change to `closed` reach them. */
  emitter: BusEmitter
  emit<K extends keyof BusEvents>(type: K, event: BusEvents[K]): void
  /**
   * Logs an error and tells the `error` listeners; with none and no log, `warn` says it, once
   * while the reason stays the same (a dead server fails every attempt alike).
   */
  report(error: MpbusError): void
}

export function createLifecycle(
  log: ((...args: unknown[]) => void) | undefined,
  warn: ((...args: unknown[]) => void) | undefined,
  isClosed: () => boolean,
): Lifecycle {
  const events = createDispatcher<any>((error) => report(error))
  let reporting = false
  let warned = ''
  function report(error: MpbusError): void {
    const reason = `${error.code}: ${error.message}`
    if (log) log(error.code, error.message)
    else if (warn && !events.has('error') && reason !== warned) {
      warned = reason
      warn(`${reason} (no error listener; warn: false quiets this)`)
    }
    if (reporting) return
    reporting = true
    try {
      events.dispatch('error', error, false)
    } finally {
      reporting = false
    }
  }
  return {
    report,
    emit: (type, event) => {
      events.dispatch(type, event, false)
    },
    emitter: {
      // Even an event that was being delivered when an earlier listener closed the bus.
      on: (type, listener) =>
        events.on(type, (event) => {
          if (!isClosed() || type === 'error' || (type === 'state' && event.to === 'closed')) listener(event)
        }),
    },
  }
}

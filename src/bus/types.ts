/** The public face of a bus: its states, its lifecycle events, and the `Bus` interface. */
import type { MpbusError } from '../errors'
import type { Envelope } from '../outbox'
import type { CloseInfo } from '../platform/types'
import type { OpMap } from '../protocol'
import type { TransportState } from '../transport'
import type { Frame, Handler } from './dispatcher'

export type { OpMap }

export type BusState = TransportState | 'authenticating' | 'ready' | 'unauthorized'

export interface SendOptions {
  /** `false` skips storage: for typing indicators and presence. Dropped, and reported, when not ready. @default true */
  durable?: boolean
  /** ms this message may wait in the outbox. @default the outbox's ttl (7 days) */
  ttl?: number
}

/** The lifecycle events, by name. No other name compiles: `bus.events.on('redy', …)` is an error. */
export type BusEvents = {
  state: { from: BusState; to: BusState }
  /** The socket opened (before login). */
  open: undefined
  /** Logged in (or no login needed), or back from the background with the session intact: the outbox is flushing. */
  ready: undefined
  close: CloseInfo
  error: MpbusError
  /** Messages that left the outbox without being delivered. */
  drop: { reason: 'expired' | 'overflow' | 'offline'; envelopes: Envelope[]; error: MpbusError }
  /** A reconnect is scheduled: the attempt number and the delay before it, in ms. */
  reconnecting: { attempt: number; delay: number }
  /**
   * The server's history no longer covers what this client missed on `stream` (trimmed, or the
   * server lost it: a new epoch). The app should reload that stream's data from its source of truth.
   */
  resync: { stream: string; offset: number; epoch: string }
  /** A valid frame no handler received. */
  unhandled: Frame
}

export interface BusEmitter {
  /**
   * Adds a listener; returns the function that removes it. A listener that throws is reported
   * (`HANDLER_ERROR`) and the listeners after it still run; a throwing `error` listener is only logged.
   */
  on<K extends keyof BusEvents>(type: K, listener: (event: BusEvents[K]) => void): () => void
}

/**
 * A bus. `Out` types what it sends (`send`, `request`), `In` what it receives (`on`, `once`, a
 * request's reply); each defaults to untyped, so `createBus<{ SendMessage: … }>()` still
 * lets `bus.on('LoginOK', …)` compile.
 */
export interface Bus<Out extends OpMap = OpMap, In extends OpMap = OpMap> {
  /** `idle`, `connecting`, `authenticating`, `ready`, `backoff`, `offline`, `suspended`, `failed`, `unauthorized`, `closed`. */
  readonly state: BusState
  /** Messages in the outbox, waiting or in flight. */
  readonly queued: number
  /** Lifecycle events (`state`, `open`, `ready`, `close`, `error`, `drop`, `reconnecting`, `resync`, `unhandled`), apart from operators. */
  readonly events: BusEmitter
  /**
   * Sends `{[opKey]: op, ...payload}`. Durable by default: queued and persisted while offline,
   * flushed in order after the next login. Settles when delivered (see `ack`), or rejects with
   * an `MpbusError`: `BAD_OPERATOR`, `BAD_PAYLOAD`, `TOO_LARGE`, `OUTBOX_FULL`, `EXPIRED`, `DROPPED`, `CLOSED`,
   * and, with `ack`, `NO_HANDLER` or `REFUSED` when the server refuses it (docs/protocol.md, Refusals).
   */
  send<K extends keyof Out & string>(
    op: K,
    // The payload may be left out only where its type allows `undefined`.
    ...rest: undefined extends Out[K]
      ? [payload?: Out[K], options?: SendOptions]
      : [payload: Out[K], options?: SendOptions]
  ): Promise<void>
  /**
   * Sends `op` and resolves with the first `reply` frame that echoes its id under `idKey`,
   * or, when the server echoes no ids, the first `reply` frame after the request was sent.
   * Offline, it waits in the outbox until `timeout` (@default 10000 ms), then leaves it unsent and rejects `TIMEOUT`.
   */
  request<K extends keyof Out & string, R extends keyof In & string>(
    op: K,
    payload: Out[K] | undefined,
    options: { reply: R; timeout?: number },
  ): Promise<Frame<In[R]>>
  /** Adds a handler for an operator (`'*'` for every frame). Returns the function that removes it. */
  on<K extends keyof In & string>(op: K | '*', handler: Handler<In[K]>): () => void
  /** Resolves with the next frame of `op`; rejects `CLOSED` if the bus closes first. */
  once<K extends keyof In & string>(op: K): Promise<Frame<In[K]>>
  /**
   * Calls `fn` at once with the current state and the one before it (a bus is `connecting` when
   * `createBus` returns: `fn('connecting', 'idle')`), then with every change; returns the unsubscribe.
   */
  onState(fn: (state: BusState, from: BusState) => void): () => void
  /** Reconnects now, from any state but closed (also out of `failed` and `unauthorized`). */
  reconnect(): void
  /**
   * Ends the bus, from anywhere (a listener, a handler): closes the socket, cancels every timer,
   * rejects what is pending with `CLOSED`, and changes nothing after. Queued messages stay in
   * storage for the next bus on the same storage.
   */
  close(): void
}

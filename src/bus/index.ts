import mitt from 'mitt'
import { MpbusError } from '../errors'
import type { HeartbeatOptions } from '../heartbeat'
import { createOutbox, type Envelope, type OutboxOptions } from '../outbox'
import { detectPlatform, toPlatform } from '../platform/detect'
import type { CloseInfo, Platform, SocketData, Storage } from '../platform/types'
import { createTransport, type ReconnectOptions, type TransportState } from '../transport'
import { byteLength } from '../utf8'
import { createDispatcher, type Frame, type Handler } from './dispatcher'

/** Operator names mapped to their payload types. The default leaves everything untyped. */
export type OpMap = Record<string, any>

export type BusState = TransportState | 'authenticating' | 'ready' | 'unauthorized'

/** A login frame: `op` becomes the operator field, `payload` the rest of the frame. */
export interface LoginFrame {
  op: string
  payload?: Record<string, unknown>
}

export interface Codec {
  /** Turns an outbound frame (operator and id fields included) into what the socket sends. @default JSON.stringify */
  encode(frame: Record<string, unknown>): SocketData
  /** Turns an inbound frame into an object; throw to refuse it (`BAD_FRAME`). @default JSON.parse of text; binary refused */
  decode(data: SocketData): unknown
}

export interface SendOptions {
  /** `false` skips storage: for typing indicators and presence. Dropped, and reported, when not ready. @default true */
  durable?: boolean
  /** ms this message may wait in the outbox. @default the outbox's ttl (7 days) */
  ttl?: number
}

export interface BusOptions {
  /** The server, or a function called for every connect (a fresh token in the query). */
  url: string | (() => string)
  /** A platform's API object (`wx`, `my`, `swan`, `tt`, `qq`, `uni`, `Taro`) or a `Platform`. @default detected */
  platform?: Platform | object
  /** Where the outbox persists. @default the platform's storage, else memory only */
  storage?: Storage
  /**
   * Sent first on every open (cold start, reconnect, app reopen), straight to the socket and never stored.
   * May return a Promise (for `wx.login`); return `null` to send nothing.
   */
  login?: () => LoginFrame | null | undefined | PromiseLike<LoginFrame | null | undefined>
  /** When set, the outbox flushes only after `ok`; `fail` makes the bus `unauthorized` (no reconnect loop). */
  ready?: {
    ok: string
    /** @default [] */
    fail?: string[]
    /** ms to wait for `ok`; a timeout counts as a failed connect and backs off. @default 10000 */
    timeout?: number
  }
  /**
   * At-least-once delivery: a message leaves the outbox only when the server answers `{[opKey]: op, [idKey]: id}`.
   * `true` means `{ op: 'Ack' }`. @default false: a message leaves when the socket reports its send succeeded
   */
  ack?: boolean | { op?: string }
  /** The field that carries every durable message's id (and a request's, for its reply). @default 'MsgId' */
  idKey?: string
  /** The field that names the operator of a frame. @default 'Operator' */
  opKey?: string
  /** Ping after `interval` ms of silence; dead when nothing arrives `timeout` ms later. `false` turns it off. */
  heartbeat?: Partial<HeartbeatOptions> | false
  reconnect?: Partial<ReconnectOptions>
  /** @default 10000 */
  connectTimeout?: number
  /** Whether a close from the server should be followed by a reconnect. @default not one of `stopCodes` */
  shouldReconnect?: (close: CloseInfo) => boolean
  /** Close codes that end the session under the default `shouldReconnect`. @default [4001] */
  stopCodes?: number[]
  /** Bounds and policies of the outbox: `prefix`, `maxMessages`, `maxBytes`, `ttl`, `overflow`, `window`. */
  outbox?: Omit<OutboxOptions, 'storage' | 'ack'>
  /** Inbound frames larger than this are refused with `FRAME_TOO_LARGE`. @default 1048576 (1 MB) */
  maxInboundBytes?: number
  codec?: Codec
  /** `true` logs to the console; a function receives the same lines. @default false */
  debug?: boolean | ((...args: unknown[]) => void)
}

export interface BusEvents {
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
  /** A valid frame no handler received. */
  unhandled: Frame
  // An index signature lets mitt accept this map; the keys above are the only ones emitted.
  [key: string]: unknown
  [key: symbol]: unknown
}

interface PendingRequest {
  reply: string
  resolve(frame: Frame): void
  reject(error: MpbusError): void
  /** The request's frame has been handed to the socket: a reply with no id may answer it. */
  sent: boolean
  timer: ReturnType<typeof setTimeout>
}

const DEFAULTS = {
  opKey: 'Operator',
  idKey: 'MsgId',
  ackOp: 'Ack',
  /** For `ready.timeout` and a request's `timeout`. */
  timeout: 10000,
  maxInboundBytes: 1024 * 1024,
}

const jsonCodec: Codec = {
  encode: (frame) => JSON.stringify(frame),
  decode: (data) => {
    if (typeof data !== 'string') throw new Error('binary frame where JSON is expected')
    return JSON.parse(data)
  },
}

/** Calls `next` with the value, or with what a thenable resolves to. */
function settle<T>(value: T | PromiseLike<T>, next: (v: T) => void, fail: (e: unknown) => void): void {
  if (value && typeof (value as PromiseLike<T>).then === 'function')
    (value as PromiseLike<T>).then(next, fail)
  else next(value as T)
}

/**
 * Creates a bus: one live socket (transport + heartbeat), a durable outbox, and operator dispatch.
 * It starts connecting at once.
 */
export function createBus<Ops extends OpMap = OpMap>(options: BusOptions) {
  if (!options || !options.url) throw new MpbusError('BAD_OPTION', 'url')
  const opKey = options.opKey || DEFAULTS.opKey
  const idKey = options.idKey || DEFAULTS.idKey
  const ackOp = options.ack
    ? (options.ack === true ? undefined : options.ack.op) || DEFAULTS.ackOp
    : undefined
  const ready = options.ready
  const maxInbound = options.maxInboundBytes || DEFAULTS.maxInboundBytes
  const codec = options.codec || jsonCodec
  const log =
    typeof options.debug === 'function'
      ? options.debug
      : options.debug
        ? (...args: unknown[]) => console.log('[mpbus]', ...args)
        : undefined

  const platform = options.platform ? toPlatform(options.platform) : detectPlatform()
  const events = mitt<BusEvents>()
  const report = (error: MpbusError) => {
    if (log) log(error.code, error.message)
    events.emit('error', error)
  }
  // A lifecycle listener that throws must not stop the bus half way through a transition (a
  // `ready` listener throwing would leave the outbox unflushed): it is reported, like a handler.
  const emit = events.emit
  events.emit = (type: keyof BusEvents, event?: unknown) => {
    try {
      emit(type, event)
    } catch (e) {
      if (type !== 'error')
        report(new MpbusError('HANDLER_ERROR', `a '${String(type)}' listener threw: ${String(e)}`, e))
    }
  }
  const dispatcher = createDispatcher(report)
  const outbox = createOutbox(
    Object.assign({}, options.outbox, { storage: options.storage || platform.storage, ack: !!ackOp }),
  )
  // outbox: commit at hide (the app or page may be killed before any timer or microtask runs)
  const unwatchHide = platform.watchHide && platform.watchHide(() => outbox.commit())
  const heartbeat =
    options.heartbeat !== false &&
    Object.assign({ message: JSON.stringify({ [opKey]: 'Heart' }) }, options.heartbeat)
  const transport = createTransport({
    platform,
    url: options.url,
    heartbeat,
    reconnect: options.reconnect,
    connectTimeout: options.connectTimeout,
    shouldReconnect: options.shouldReconnect,
    stopCodes: options.stopCodes,
  })

  let state: BusState = 'idle'
  /** Counts links, so a callback from an earlier one (a late login, a late send result) changes nothing. */
  let link = 0
  let unauthorized = false
  /** Where the current link's session stands, to return to when the app comes back with the link intact. */
  let session: 'authenticating' | 'ready' = 'authenticating'
  let readyTimer: ReturnType<typeof setTimeout> | undefined
  let pumpTimer: ReturnType<typeof setTimeout> | undefined
  const senders = new Map<string, { resolve(): void; reject(e: MpbusError): void }>()
  const requests = new Map<string, PendingRequest>()

  function setState(to: BusState): void {
    if (to === 'authenticating' || to === 'ready') session = to
    if (to === state) return
    const from = state
    state = to
    if (log) log('state', from, '->', to)
    events.emit('state', { from, to })
  }

  function frameOf(op: string, payload: unknown, id?: string): Record<string, unknown> {
    // A payload that is not a plain object travels under `data`. The operator goes first for
    // readable frames, and again last so a payload cannot override it.
    const fields =
      payload === undefined || (!!payload && typeof payload === 'object' && !Array.isArray(payload))
    const frame: Record<string, unknown> = Object.assign(
      { [opKey]: op },
      fields ? payload : { data: payload },
    )
    frame[opKey] = op
    if (id) frame[idKey] = id
    return frame
  }

  function clearReadyTimer(): void {
    clearTimeout(readyTimer)
    readyTimer = undefined
  }

  function becomeReady(): void {
    clearReadyTimer()
    session = 'ready'
    // Answered while the app is hidden (the socket kept): its return sets the state and flushes.
    if (state !== 'authenticating') return
    setState('ready')
    events.emit('ready', undefined)
    pump()
  }

  function schedulePump(): void {
    if (pumpTimer === undefined) pumpTimer = setTimeout(pump, 0)
  }

  /** True while `pump` runs: a send result reported synchronously (browsers, Node) must not recurse. */
  let pumping = false

  /**
   * Hands the outbox to the socket in seq order, as far as the outbox's window allows. A send
   * result that frees the window calls `pump` again: later, when it comes later (mini programs),
   * or by letting the running loop go on, when it comes synchronously (the browser WebSocket),
   * since one nested call per message would overflow the stack on a long replay.
   */
  function pump(): void {
    clearTimeout(pumpTimer)
    pumpTimer = undefined
    if (state !== 'ready' || pumping) return
    pumping = true
    const current = link
    try {
      for (let envelope = outbox.next(); envelope; envelope = outbox.next()) {
        const { id } = envelope
        const request = requests.get(id)
        if (request) request.sent = true
        const accepted = transport.send(codec.encode(frameOf(envelope.op, envelope.payload, id)), (error) => {
          if (current !== link) return
          if (error) {
            // The socket refused a send while we thought it open: the link is broken.
            outbox.rewind()
            transport.drop(error)
          } else {
            outbox.sent(id)
            pump()
          }
        })
        if (!accepted) break
      }
    } finally {
      pumping = false
    }
  }

  function decode(data: SocketData): Frame | undefined {
    const size = typeof data === 'string' ? byteLength(data) : data.byteLength
    if (size > maxInbound) {
      report(new MpbusError('FRAME_TOO_LARGE', `${size} bytes > ${maxInbound}`))
      return
    }
    let frame: any
    try {
      frame = codec.decode(data)
    } catch (e) {
      report(new MpbusError('BAD_FRAME', String(e), data))
      return
    }
    if (!frame || typeof frame !== 'object' || Array.isArray(frame) || typeof frame[opKey] !== 'string') {
      report(new MpbusError('BAD_FRAME', `no ${opKey}`, data))
      return
    }
    return frame
  }

  /** Settles a pending request: with its reply frame, or with an error. */
  function settleRequest(id: string, error?: MpbusError, frame?: Frame): void {
    const request = requests.get(id)
    if (!request) return
    clearTimeout(request.timer)
    requests.delete(id)
    if (error) request.reject(error)
    else request.resolve(frame!)
  }

  function answerRequests(op: string, frame: Frame): void {
    const id = frame[idKey]
    for (const [key, request] of requests) {
      if (request.reply === op && (id === key || (id === undefined && request.sent))) {
        settleRequest(key, undefined, frame)
        return
      }
    }
  }

  function onMessage(data: SocketData): void {
    const frame = decode(data)
    if (!frame) return
    const op = frame[opKey] as string
    if (ackOp !== undefined && op === ackOp) {
      if (outbox.ack(String(frame[idKey]))) pump()
      // Acknowledgements are bookkeeping: users see them only when they ask for them by name.
      dispatcher.dispatch(op, frame, false)
      return
    }
    // The session first, so the handlers of `ready.ok` find the bus ready. `session`, not `state`:
    // an answer that comes while the app is hidden counts too.
    if (session === 'authenticating' && ready) {
      if (op === ready.ok) becomeReady()
      else if (ready.fail && ready.fail.indexOf(op) >= 0) {
        clearReadyTimer()
        unauthorized = true
        transport.halt(new MpbusError('UNAUTHORIZED', op, frame))
      }
    }
    answerRequests(op, frame)
    if (!dispatcher.dispatch(op, frame)) events.emit('unhandled', frame)
  }

  function onOpen(): void {
    const current = ++link
    setState('authenticating')
    events.emit('open', undefined)
    const fail = (e: unknown) => {
      if (current !== link) return
      transport.drop(e instanceof MpbusError ? e : new MpbusError('LOGIN_ERROR', String(e), e))
    }
    let login: ReturnType<NonNullable<BusOptions['login']>>
    try {
      login = options.login ? options.login() : undefined
    } catch (e) {
      fail(e)
      return
    }
    settle(
      login,
      (frame) => {
        if (current !== link || session !== 'authenticating') return
        // Resolved while the app is hidden: the kept socket takes nothing, so the next link logs in again.
        if (frame && !transport.send(codec.encode(frameOf(frame.op, frame.payload))))
          return fail(new MpbusError('LOGIN_ERROR', 'hidden'))
        if (!ready) return becomeReady()
        readyTimer = setTimeout(() => {
          readyTimer = undefined
          transport.drop(new MpbusError('TIMEOUT', `no ${ready.ok}`))
        }, ready.timeout || DEFAULTS.timeout)
      },
      fail,
    )
  }

  transport.on('open', onOpen)
  transport.on('message', onMessage)
  transport.on('error', report)
  transport.on('reconnecting', (next) => events.emit('reconnecting', next))
  transport.on('close', (info) => {
    link++
    clearReadyTimer()
    outbox.rewind()
    events.emit('close', info)
  })
  transport.on('state', ({ from, to }) => {
    // 'open' is shown as 'authenticating' until the login is answered (see onOpen); back from
    // the background with the link intact, the session is where it was.
    if (to === 'open') {
      if (from === 'suspended') {
        setState(session)
        // Ready again without a new login: say so, as after one.
        if (session === 'ready') events.emit('ready', undefined)
        schedulePump()
      }
      return
    }
    setState(to === 'failed' && unauthorized ? 'unauthorized' : to)
  })
  outbox.on('error', report)
  outbox.on('delivered', (envelope) => {
    const sender = senders.get(envelope.id)
    senders.delete(envelope.id)
    if (sender) sender.resolve()
  })
  outbox.on('drop', (drop) => {
    for (const { id } of drop.envelopes) {
      rejectSender(id, drop.error)
      // A request dropped from the outbox will get no reply: it fails now, not at its timeout.
      settleRequest(id, drop.error)
    }
    report(drop.error)
    events.emit('drop', drop)
  })

  function rejectSender(id: string, error: MpbusError): void {
    const sender = senders.get(id)
    senders.delete(id)
    if (sender) sender.reject(error)
  }

  function enqueue(op: string, payload: unknown, ttl: number | undefined): Envelope {
    if (state === 'closed') throw new MpbusError('CLOSED', 'closed')
    const envelope = outbox.enqueue(op, payload, ttl === undefined ? undefined : { ttl })
    schedulePump()
    return envelope
  }

  /**
   * Sends `{[opKey]: op, ...payload}`. Durable by default: queued and persisted while offline,
   * flushed in order after the next login. Settles when delivered (see `ack`), or rejects with
   * an `MpbusError`: `BAD_PAYLOAD`, `TOO_LARGE`, `OUTBOX_FULL`, `EXPIRED`, `DROPPED`, `CLOSED`.
   */
  function send<K extends keyof Ops & string>(
    op: K,
    payload?: Ops[K],
    sendOptions?: SendOptions,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (sendOptions && sendOptions.durable === false) {
        if (state !== 'ready') {
          const error = new MpbusError('DROPPED', `${op}: bus ${state}`)
          events.emit('drop', { reason: 'offline', envelopes: [], error })
          return reject(error)
        }
        let frame: SocketData
        try {
          frame = codec.encode(frameOf(op, payload))
        } catch (e) {
          return reject(new MpbusError('BAD_PAYLOAD', String(e), e))
        }
        transport.send(frame, (error) => (error ? reject(error) : resolve()))
        return
      }
      const envelope = enqueue(op, payload, sendOptions && sendOptions.ttl)
      senders.set(envelope.id, { resolve, reject })
    })
  }

  /**
   * Sends `op` and resolves with the first `reply` frame that echoes its id under `idKey`,
   * or, when the server echoes no ids, the first `reply` frame after the request was sent.
   * Offline, it waits in the outbox until `timeout`, then leaves it unsent and rejects `TIMEOUT`.
   */
  function request<K extends keyof Ops & string, R extends keyof Ops & string>(
    op: K,
    payload: Ops[K] | undefined,
    requestOptions: { reply: R; timeout?: number },
  ): Promise<Frame<Ops[R]>> {
    return new Promise((resolve, reject) => {
      const timeout = requestOptions.timeout || DEFAULTS.timeout
      // The ttl keeps a request persisted before a kill from being sent after nobody waits for it.
      const { id } = enqueue(op, payload, timeout)
      requests.set(id, {
        reply: requestOptions.reply,
        resolve: resolve as (frame: Frame) => void,
        reject,
        sent: false,
        timer: setTimeout(() => {
          outbox.remove(id)
          settleRequest(id, new MpbusError('TIMEOUT', `no ${requestOptions.reply}`))
        }, timeout),
      })
    })
  }

  const waiters = new Set<(error: MpbusError) => void>()

  const bus = {
    /** `idle`, `connecting`, `authenticating`, `ready`, `backoff`, `offline`, `suspended`, `failed`, `unauthorized`, `closed`. */
    get state(): BusState {
      return state
    },
    /** Messages in the outbox, waiting or in flight. */
    get queued(): number {
      return outbox.size
    },
    /** Lifecycle events (`state`, `open`, `ready`, `close`, `error`, `drop`, `unhandled`), apart from operators. */
    events,
    send,
    request,
    /** Adds a handler for an operator (`'*'` for every frame). Returns the function that removes it. */
    on<K extends keyof Ops & string>(op: K | '*', handler: Handler<Ops[K]>): () => void {
      return dispatcher.on(op, handler as Handler)
    },
    /** Resolves with the next frame of `op`; rejects `CLOSED` if the bus closes first. */
    once<K extends keyof Ops & string>(op: K): Promise<Frame<Ops[K]>> {
      return new Promise((resolve, reject) => {
        if (state === 'closed') return reject(new MpbusError('CLOSED', 'closed'))
        const off = dispatcher.on(op, (frame) => {
          done()
          resolve(frame as Frame<Ops[K]>)
        })
        const fail = (error: MpbusError) => {
          done()
          reject(error)
        }
        const done = () => {
          off()
          waiters.delete(fail)
        }
        waiters.add(fail)
      })
    },
    /** Calls `fn` with every state change; returns the unsubscribe. */
    onState(fn: (state: BusState, from: BusState) => void): () => void {
      const handler = (change: BusEvents['state']) => fn(change.to, change.from)
      events.on('state', handler)
      return () => events.off('state', handler)
    },
    /** Reconnects now, from any state but closed (also out of `failed` and `unauthorized`). */
    reconnect(): void {
      unauthorized = false
      transport.reconnect()
    },
    /**
     * Ends the bus: closes the socket, cancels every timer, rejects what is pending with `CLOSED`.
     * Queued messages stay in storage for the next bus on the same storage.
     */
    close(): void {
      if (state === 'closed') return
      transport.close()
      setState('closed')
      clearReadyTimer()
      clearTimeout(pumpTimer)
      if (unwatchHide) unwatchHide() // outbox: commit at hide
      outbox.dispose()
      const closed = new MpbusError('CLOSED', 'closed')
      for (const id of Array.from(requests.keys())) settleRequest(id, closed)
      for (const id of Array.from(senders.keys())) rejectSender(id, closed)
      for (const fail of Array.from(waiters)) fail(closed)
    },
  }

  transport.start()
  return bus
}

export type Bus<Ops extends OpMap = OpMap> = ReturnType<typeof createBus<Ops>>

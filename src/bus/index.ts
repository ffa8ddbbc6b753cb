/**
 * `createBus` composes the parts, each readable alone: the options (options.ts), the transport
 * with its heartbeat (src/transport), the outbox (src/outbox), the session of each link
 * (session.ts), the flush (flush.ts), pending promises (pending.ts), framing (framing.ts) and
 * dispatch (dispatcher.ts). The bus's state is not kept but derived, from the transport's state,
 * the session's phase and whether the bus was closed, so the two machines cannot disagree.
 */
import { describe, MpbusError } from '../errors'
import { createOutbox } from '../outbox'
import type { SocketData } from '../platform/types'
import { NO_HANDLER, REASON, REFUSED } from '../protocol'
import { createTransport, type Link } from '../transport'
import { byteLength } from '../utf8'
import { createDispatcher, type Frame, type Handler } from './dispatcher'
import { createFlush } from './flush'
import { checkOperator, createFraming } from './framing'
import { createLifecycle } from './lifecycle'
import { type BusOptions, REQUEST_TIMEOUT, resolveOptions } from './options'
import { createPending } from './pending'
import { createSession } from './session'
import { createStreams } from './streams'
import type { Bus, BusState, OpMap, SendOptions } from './types'
import { createVolatile } from './volatile'

/** The outbox of a bus without storage is in memory only: said once per process. */
let memoryOnly = false
const ignore = () => {}

export type { BusOptions, Codec, LoginFrame } from './options'
export type { Bus, BusEmitter, BusEvents, BusState, OpMap, SendOptions } from './types'

/**
 * Creates a bus: one live socket (transport + heartbeat), a durable outbox, and operator dispatch.
 * It starts connecting at once. Throws `BAD_OPTION` (naming the option) or `NO_PLATFORM`.
 */
export function createBus<Out extends OpMap = OpMap, In extends OpMap = OpMap>(
  busOptions: BusOptions,
): Bus<Out, In> {
  const options = resolveOptions(busOptions)
  const { log, warn, opKey, idKey, ack, codec } = options
  let closed = false
  let state: BusState = 'idle'
  /** The state before `state`, for `onState`'s first call. */
  let previous: BusState = 'idle'
  let link: Link | undefined
  /** Some frame came on the current link. */
  let heard = false

  const { emitter, emit, report } = createLifecycle(log, warn, () => closed)
  if (!options.storage && warn && !memoryOnly) {
    memoryOnly = true
    warn(
      'no storage: the outbox is kept in memory only (in Node: storage: createFileStorage(dir) from mpbus/node)',
    )
  }

  /** `debug`: a frame in or out, by operator, id and size (and data, with `'payloads'`). */
  function logFrame(way: string, data: SocketData, frame?: any): void {
    if (!frame)
      try {
        frame = codec ? codec.decode(data) : JSON.parse(data as string)
      } catch {}
    log!(
      way,
      frame && frame[opKey],
      frame && frame[idKey],
      `${typeof data === 'string' ? byteLength(data) : data.byteLength} B`,
      ...(options.payloads ? [data] : []),
    )
  }

  const framing = createFraming(options, report)
  const dispatcher = createDispatcher(report)
  const pending = createPending()
  const outbox = createOutbox(options.outbox)
  // The app or page may be killed before any timer or microtask runs: persist what is queued now.
  const { platform } = options
  const unwatchHide = platform.watchHide && platform.watchHide(() => outbox.commit())
  const transport = createTransport(options)
  const flush = createFlush(outbox, framing, pending, ack && ack.timeout, () => state === 'ready', report)
  // Stream positions live beside the outbox, under its prefix.
  const streams = createStreams(
    options.storage,
    `${options.outbox.prefix}/streams`,
    opKey,
    options.ready && options.ready.ok,
    options.maxInboundBytes,
    (event) => emit('resync', event),
    report,
  )
  const session = createSession(options, framing, sync, streams.login)

  function derive(): BusState {
    if (closed) return 'closed'
    const to = transport.state
    if (to === 'open') return session.phase || 'authenticating'
    const failure = transport.failure
    return to === 'failed' && failure && failure.code === 'UNAUTHORIZED' ? 'unauthorized' : to
  }

  /** Brings `state` up to date and says so; becoming ready (after a login, or back from the background) flushes. */
  function sync(): void {
    const to = derive()
    if (to === state) return
    const from = state
    previous = from
    state = to
    if (log) log('state', from, '->', to)
    emit('state', { from, to })
    if (to === 'ready' && !closed) {
      emit('ready', undefined)
      flush.pump()
    }
  }

  function onMessage(data: SocketData): void {
    const frames = framing.decode(data)
    // A codec.decode (or an error listener) may have closed the bus.
    if (!frames || closed) return
    heard = true
    // One line a message: a batch is told by its count, and its payloads (when asked) once.
    if (log) logFrame('in', data, frames.length > 1 ? { [opKey]: `${frames.length} frames` } : frames[0])
    streams.accept(frames, onFrame, () => !closed)
  }

  function onFrame(frame: Frame): void {
    // A handler of an earlier frame of the same message may have closed the bus.
    if (closed) return
    const op = frame[opKey] as string
    // A refusal (docs/protocol.md): an ack that says the server will not take the message.
    const refused = frame[REFUSED]
    const refusal =
      typeof refused === 'string'
        ? new MpbusError(
            refused === NO_HANDLER ? refused : 'REFUSED',
            `${refused}: ${describe(frame[REASON] || '')}`,
            frame,
          )
        : undefined
    // Told even when nobody awaits the send (or, without ack, when it resolved already).
    if (refusal) report(refusal)
    if (ack && op === ack.op) {
      // One id (`MsgId`), or a batch (`MsgIds`: docs/protocol.md), settled in the order listed.
      const ids = frame[idKey + 's']
      flush.acked(Array.isArray(ids) ? ids : [frame[idKey]], refusal)
      // Acknowledgements are bookkeeping: users see them only when they ask for them by name.
      if (dispatcher.has(op)) dispatcher.dispatch(op, frame, false)
      return
    }
    // The session first, so the handlers of `ready.ok` find the bus ready.
    session.frame(op, frame)
    pending.answer(op, frame, frame[idKey])
    if (!dispatcher.dispatch(op, frame)) emit('unhandled', frame)
  }

  // Once closed, the bus hears nothing more from the transport.
  const live =
    <T>(fn: (event: T) => void) =>
    (event: T) => {
      if (!closed) fn(event)
    }
  transport.on(
    'open',
    live((opened: Link) => {
      // `debug`: every frame out is logged. The link is made for this open and handed to the
      // bus alone, so its send is wrapped in place.
      if (log) {
        const send = opened.send
        opened.send = (data, done) => {
          const sent = send(data, done)
          if (sent) logFrame('out', data)
          return sent
        }
      }
      link = opened
      heard = false
      flush.attach(opened)
      sync()
      emit('open', undefined)
      // An `open` listener may have closed the bus, or replaced the link.
      if (!closed && opened.current) session.start(opened)
    }),
  )
  transport.on('message', live(onMessage))
  transport.on('error', report)
  // A server that closes the link before the login's answer (or, without `ready`, before any
  // frame) refused the session: say so, with its code and reason, rather than only reconnect.
  transport.on(
    'lost',
    live((info) => {
      if (link && (session.phase === 'authenticating' || !heard))
        report(
          new MpbusError(
            'LOGIN_ERROR',
            `closed before the login's answer: ${info.code} ${info.reason}`,
            info,
          ),
        )
    }),
  )
  transport.on(
    'reconnecting',
    live((next) => emit('reconnecting', next)),
  )
  transport.on(
    'close',
    live((info) => {
      link = undefined
      session.end()
      flush.detach()
      emit('close', info)
      sync()
    }),
  )
  transport.on('state', live(sync))
  outbox.on('error', report)
  // The queue was read after a wait (another tab's lock, a failed read): send what it holds.
  outbox.on('load', () => flush.schedule())
  outbox.on('drop', (drop) => {
    for (const { id } of drop.envelopes) pending.failed(id, drop.error)
    report(drop.error)
    emit('drop', drop)
  })

  function enqueue(op: unknown, payload: unknown, ttl: number | undefined): string {
    if (closed) throw new MpbusError('CLOSED', 'closed')
    checkOperator(op)
    const { id } = outbox.enqueue(op, payload, ttl === undefined ? undefined : { ttl })
    flush.schedule()
    return id
  }

  /** Runs `fn`, turning a throw into the rejection of the Promise it would have returned. */
  function attempt<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return fn()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  const sendVolatile = createVolatile(
    framing,
    pending,
    () => (state === 'ready' && link ? link : state),
    (drop) => emit('drop', drop),
  )

  const bus: Bus<Out, In> = {
    get state() {
      return state
    },
    get queued() {
      return outbox.size
    },
    events: emitter,
    send: (op: string, payload?: unknown, sendOptions?: SendOptions) => {
      const sent = attempt(() =>
        closed
          ? Promise.reject(new MpbusError('CLOSED', 'closed'))
          : sendOptions && sendOptions.durable === false
            ? sendVolatile(op, payload)
            : pending.send(enqueue(op, payload, sendOptions && sendOptions.ttl)),
      )
      // A send nobody awaits must not end the process as an unhandled rejection at close();
      // whoever awaits or catches it still sees the rejection.
      sent.catch(ignore)
      return sent
    },
    request: (op, payload, requestOptions) =>
      attempt(() => {
        const timeout =
          requestOptions && requestOptions.timeout !== undefined ? requestOptions.timeout : REQUEST_TIMEOUT
        if (!requestOptions || typeof requestOptions.reply !== 'string' || !(timeout > 0))
          throw new MpbusError('BAD_OPTION', 'request needs a reply operator and a timeout > 0')
        // The ttl keeps a request persisted before a kill from being sent after nobody waits for it.
        const id = enqueue(op, payload, timeout)
        return pending.request(id, requestOptions.reply, timeout, () => outbox.remove(id)) as Promise<
          Frame<any>
        >
      }),
    on: (op, handler) => dispatcher.on(op, handler as Handler),
    once: (op) => pending.once((fn) => dispatcher.on(op, fn)) as Promise<Frame<any>>,
    onState(fn) {
      const off = bus.events.on('state', (change) => fn(change.to, change.from))
      // The last change, at once: createBus has already started connecting.
      fn(state, previous)
      return off
    },
    reconnect() {
      if (!closed) transport.reconnect()
    },
    close() {
      if (closed) return
      closed = true
      link = undefined
      session.end()
      flush.detach()
      transport.close()
      if (unwatchHide) unwatchHide()
      outbox.dispose()
      pending.close()
      sync()
    },
  }

  transport.start()
  return bus
}

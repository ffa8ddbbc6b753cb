/**
 * websocket-heartbeat-miniprogram's API on top of mpbus: switch by changing one import,
 *
 * ```js
 * import WebsocketHeartbeat from 'mpbus/compat' // was 'websocket-heartbeat-miniprogram'
 * ```
 *
 * and gain what it lacks: text sent while offline is queued in the outbox (persisted,
 * flushed in order), `close()` during a reconnect delay really stops, a frozen link is
 * replaced without waiting for its close event, and backoff has jitter.
 * Differences, on purpose: `repeatLimit` of 0 or null means unlimited, as in 1.0.3;
 * binary frames are sent at once and not queued; `socketTask` is a facade whose
 * listeners survive reconnects (the native task's do not).
 */
import { createBus, type MpbusError } from '../index'
import type { CloseInfo, SocketData } from '../platform/types'
import type { OP } from '../protocol'

export interface WebsocketHeartbeatOptions {
  /** The platform's API object: `wx`, `my`, `swan`, `tt`, `qq`, `uni`, `Taro`. */
  miniprogram: object
  /** What `connectSocket` gets; only `url` is used. */
  connectSocketParams: { url: string }
  /** ms of silence before a ping. @default 15000 */
  pingTimeout?: number
  /** ms to wait for any frame after the ping. @default 10000 */
  pongTimeout?: number
  /** The longest wait before a reconnect (mpbus adds jitter below it). @default 2000 */
  reconnectTimeout?: number
  /** @default 'heartbeat' */
  pingMsg?: string
  /** Reconnect attempts before giving up; 0 or null: never give up. @default null */
  repeatLimit?: number | null
}

interface SendParams {
  data: SocketData
  success?: (res: { errMsg: string }) => void
  fail?: (error: MpbusError) => void
  complete?: () => void
}

const RAW = 'message'

export function WebsocketHeartbeat(options: WebsocketHeartbeatOptions) {
  return new Promise<ReturnType<typeof createTask>>((resolve, reject) => {
    if (!options || !options.miniprogram)
      return reject(new Error('miniprogram (wx, my, swan, Taro...) is required'))
    if (!options.connectSocketParams || !options.connectSocketParams.url) {
      return reject(new Error('connectSocketParams.url is required'))
    }
    resolve(createTask(options))
  })
}

function createTask(options: WebsocketHeartbeatOptions) {
  const retry = options.reconnectTimeout || 2000
  const { url } = options.connectSocketParams
  const bus = createBus({
    url,
    platform: options.miniprogram,
    heartbeat: {
      interval: options.pingTimeout || 15000,
      timeout: options.pongTimeout || 10000,
      message: options.pingMsg || 'heartbeat',
    },
    reconnect: { minDelay: retry, maxDelay: retry, maxAttempts: options.repeatLimit || Infinity },
    // Any close from the server is followed by a reconnect, as in the original: only close() stops.
    stopCodes: [],
    // Frames are the user's raw text: nothing is added to them, and everything inbound is a 'message'.
    codec: {
      encode: (frame) => frame.data as SocketData,
      decode: (data): { [OP]: string; data: SocketData } => ({ Operator: RAW, data }),
    },
    // One queue per server, so two tasks in one app never send each other's text. The query is left
    // out: a token in it changes between launches, and the queue must outlive it.
    outbox: { prefix: `mpbus-compat:${url.split('?')[0]}` },
  })
  const onMessage = (listener: (event: { data: SocketData }) => void) =>
    bus.on(RAW, (frame) => listener({ data: frame.data as SocketData }))
  const task = {
    onOpen: () => {},
    onClose: (_event: CloseInfo) => {},
    onError: (_error: MpbusError) => {},
    onMessage: (_event: { data: SocketData }) => {},
    onReconnect: () => {},
    /** Listeners added here are kept across reconnects. */
    socketTask: {
      onOpen: (fn: () => void) => bus.events.on('open', () => fn()),
      onClose: (fn: (event: CloseInfo) => void) => bus.events.on('close', fn),
      onError: (fn: (error: MpbusError) => void) => bus.events.on('error', fn),
      onMessage,
      send: (params: SendParams) => task.send(params),
      close: () => task.close(),
    },
    send(params: SendParams) {
      const text = typeof params.data === 'string'
      bus.send(RAW, { data: params.data }, { durable: text }).then(
        () => {
          if (params.success) params.success({ errMsg: 'sendSocketMessage:ok' })
          if (params.complete) params.complete()
        },
        (error: MpbusError) => {
          if (params.fail) params.fail(error)
          if (params.complete) params.complete()
        },
      )
    },
    close() {
      bus.close()
    },
    bus,
  }
  bus.events.on('open', () => task.onOpen())
  bus.events.on('close', (event) => task.onClose(event))
  bus.events.on('error', (error) => task.onError(error))
  bus.events.on('reconnecting', () => task.onReconnect())
  onMessage((event) => task.onMessage(event))
  return task
}

export default WebsocketHeartbeat

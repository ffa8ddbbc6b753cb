/**
 * An Alipay-flavoured `my` object for Node, on the same machinery as the wx runtime
 * (runtime-core.ts), with Alipay's shapes (docs/platforms.md):
 * - `connectSocket({url, multiple: true})` returns a SocketTask that also has `off*`; without
 *   `multiple` it returns `undefined` and the single global socket is driven by `my.onSocket*`;
 * - errors are `{error: number, errorMessage: string}`;
 * - text arrives as a string, binary as base64 with `isBuffer: true`, and `onMessage` on a task gets
 *   the nested `{data: {data, isBuffer}}` of the @mini-types typings unless `messageShape: 'flat'`;
 * - storage takes objects and reports failures in its return value (200 KB a key, 10 MB in all).
 */
import {
  type CoreSocket,
  type CoreSocketEvents,
  createRuntimeCore,
  type FailReason,
  fanOut,
  lifecycleApi,
  type RuntimeControl,
  type RuntimeOptions,
  settle,
  storageInfo,
} from './runtime-core'

export interface MyRuntimeOptions extends RuntimeOptions {
  /**
   * The payload of a task's `onMessage`: `nested` is `{data: {data, isBuffer, socketTaskID}}` as the
   * @mini-types typings declare; `flat` is `{data, isBuffer}` as the docs say. Devices are unverified
   * (docs/platforms.md), so adapters must accept both. The global `onSocketMessage` is always flat.
   * @default 'nested'
   */
  messageShape?: 'nested' | 'flat'
  /**
   * The payload of a task's `onClose` and `onError`: `nested` is the typings' `{data: {socketTaskID}}`
   * (no close code at all; `onError` adds `error`), `flat` is `{code, reason}` / `{error, errorMessage}`
   * (docs/platforms.md). @default 'nested'
   */
  closeShape?: 'nested' | 'flat'
  /**
   * A refused `setStorageSync`: `android` is `{success: false, error, errorMessage}`, `ios` the same
   * without `success` (iOS and the IDE, docs/platforms.md). @default 'android'
   */
  storageResult?: 'android' | 'ios'
  /** Where `getStorageSync` puts the value: `data`, or the legacy `APDataStorage` of some clients. @default 'data' */
  storageField?: 'data' | 'APDataStorage'
  /**
   * Whether `send` takes an ArrayBuffer: the documents and typings say a string (base64 with
   * `isBuffer`); clients from 10.5.16 are reported to take one (docs/platforms.md). @default false
   */
  arrayBufferSend?: boolean
}

export interface MyError {
  error: number
  errorMessage: string
}

export interface MyCallbacks<T = Record<string, unknown>> {
  success?(res: T): void
  fail?(res: MyError): void
  complete?(res: T | MyError): void
}

export interface MySendOption extends MyCallbacks {
  /** A string, base64 when `isBuffer` is true; an ArrayBuffer only with the `arrayBufferSend` option. */
  data: string | ArrayBuffer
  isBuffer?: boolean
}

export interface MyCloseOption extends MyCallbacks {
  code?: number
  reason?: string
}

export interface MyMessage {
  data: string
  isBuffer: boolean
}

export interface MySocketTask {
  send(option: MySendOption): void
  close(option?: MyCloseOption): void
  onOpen(fn: (res: Record<string, unknown>) => void): void
  /** `{data: {socketTaskID}}`, or `{code, reason}` with `closeShape: 'flat'`. */
  onClose(fn: (res: any) => void): void
  /** `{data: {socketTaskID}, error, errorMessage}`, or without `data` with `closeShape: 'flat'`. */
  onError(fn: (res: any) => void): void
  onMessage(fn: (res: any) => void): void
  offOpen(fn?: Function): void
  offClose(fn?: Function): void
  offError(fn?: Function): void
  offMessage(fn?: Function): void
}

export interface MyConnectSocketOption extends MyCallbacks {
  url: string
  header?: Record<string, string>
  multiple?: boolean
  /** @default 30000 on Alipay (docs/platforms.md) */
  timeout?: number
}

export interface MyNetworkStatus {
  isConnected: boolean
  networkType: 'WIFI' | 'NOTREACHABLE'
}

export interface MyRuntime {
  connectSocket(option: MyConnectSocketOption & { multiple: true }): MySocketTask
  connectSocket(option: MyConnectSocketOption): MySocketTask | undefined
  onSocketOpen(fn: (res: Record<string, unknown>) => void): void
  onSocketMessage(fn: (res: MyMessage) => void): void
  onSocketError(fn: (res: MyError) => void): void
  onSocketClose(fn: (res: { code: number; reason: string }) => void): void
  /** Without a listener: removes them all. */
  offSocketOpen(fn?: Function): void
  offSocketMessage(fn?: Function): void
  offSocketError(fn?: Function): void
  offSocketClose(fn?: Function): void
  sendSocketMessage(option: MySendOption): void
  closeSocket(option?: MyCloseOption): void
  /** Never throws: `{success: false, error: 14}` over the per-key limit, `error: 12` over the total. */
  setStorageSync(option: { key: string; data: unknown }): { success: true } | ({ success: false } & MyError)
  /** `data` is `null` for a missing key. */
  getStorageSync(option: { key: string }): { data: any }
  removeStorageSync(option: { key: string }): { success: true }
  clearStorageSync(): { success: true }
  /** Sizes in KB. */
  getStorageInfoSync(): { keys: string[]; currentSize: number; limitSize: number }
  onNetworkStatusChange(fn: (res: MyNetworkStatus) => void): void
  offNetworkStatusChange(fn?: Function): void
  getNetworkType(
    option?: MyCallbacks<{ networkAvailable: boolean; networkType: MyNetworkStatus['networkType'] }>,
  ): void
  onAppShow(fn: (res: Record<string, unknown>) => void): void
  onAppHide(fn: (res: Record<string, unknown>) => void): void
  offAppShow(fn?: Function): void
  offAppHide(fn?: Function): void
  /** Test controls; not part of Alipay's API. */
  readonly control: RuntimeControl
}

/** Error codes and texts from the open-docs error tables of connectSocket, onSocketError, setStorageSync. */
const NOT_OPEN: MyError = { error: 10, errorMessage: '网络连接没有打开，无法发送消息' }
const SEND_FAILED = 11
const FAIL_CODES: Record<FailReason, number> = {
  limit: 1,
  offline: 50,
  suspended: 50,
  url: 4,
  timeout: 6,
  error: 1,
}

/** A platform listener list with Alipay's `off(fn?)`: no argument removes every listener. */
function listeners<T>() {
  const list: Array<(res: T) => void> = []
  return {
    list,
    on: (fn: (res: T) => void) => void list.push(fn),
    off(fn?: Function) {
      for (let i = list.length - 1; i >= 0; i--) if (!fn || list[i] === fn) list.splice(i, 1)
    },
  }
}

type SocketListeners = {
  open: ReturnType<typeof listeners<Record<string, unknown>>>
  message: ReturnType<typeof listeners<any>>
  error: ReturnType<typeof listeners<any>>
  close: ReturnType<typeof listeners<any>>
}

function socketListeners(): SocketListeners {
  return { open: listeners(), message: listeners(), error: listeners(), close: listeners() }
}

export function createMyRuntime(options: MyRuntimeOptions = {}): MyRuntime {
  const core = createRuntimeCore(options, {
    perKeyLimit: 200 * 1024,
    suspend: 'whileHidden',
    resumeFailMs: 0,
    closeWhileConnecting: 'effective',
  })
  const messageShape = options.messageShape ?? 'nested'
  const closeShape = options.closeShape ?? 'nested'
  const storageResult = options.storageResult ?? 'android'
  const storageField = options.storageField ?? 'data'
  const refuse = (error: number, errorMessage: string): any =>
    storageResult === 'ios' ? { error, errorMessage } : { success: false, error, errorMessage }
  const global = socketListeners()
  /** The single-instance socket behind `my.sendSocketMessage` and `my.closeSocket`. */
  let current: CoreSocket | undefined
  /** Bumped when a single-instance connect replaces the previous socket, which then goes silent. */
  let generation = 0

  function open(
    option: MyConnectSocketOption,
    to: SocketListeners,
    shape: 'nested' | 'flat',
    isCurrent: () => boolean,
    nestClose = false,
  ) {
    const id = { socketTaskID: 0 }
    const events: CoreSocketEvents = {
      open: () => isCurrent() && fanOut(to.open.list, { ...id }),
      message: (data) => {
        if (!isCurrent()) return
        const msg =
          typeof data === 'string'
            ? { data, isBuffer: false }
            : { data: Buffer.from(data).toString('base64'), isBuffer: true }
        fanOut(to.message.list, shape === 'nested' ? { data: { ...msg, ...id } } : msg)
      },
      error: (reason, detail) => {
        const e = { error: FAIL_CODES[reason], errorMessage: detail }
        if (isCurrent())
          fanOut(to.error.list, shape === 'nested' && nestClose ? { data: { ...id }, ...e } : e)
      },
      close: (code, reason) =>
        isCurrent() &&
        fanOut(to.close.list, shape === 'nested' && nestClose ? { data: { ...id } } : { code, reason }),
    }
    const socket = core.connect(
      option.url,
      { header: option.header, timeout: option.timeout ?? 30_000 },
      events,
    )
    id.socketTaskID = socket.id
    if (core.alive()) {
      if (socket.failed) {
        const error = { error: FAIL_CODES[socket.failed], errorMessage: socket.detail ?? socket.failed }
        settle(core, option, false, error)
        if (socket.failed === 'limit') {
          core.later(() => isCurrent() && fanOut(to.error.list, error))
        }
      } else {
        settle(core, option, true, { ...id })
      }
    }
    return socket
  }

  function send(socket: CoreSocket | undefined, option: MySendOption): void {
    if (!core.alive()) return
    if (!socket?.isOpen()) {
      settle(core, option, false, { ...NOT_OPEN })
      return
    }
    const data = option.data
    if (data instanceof ArrayBuffer && !options.arrayBufferSend) {
      settle(core, option, false, { error: 2, errorMessage: '参数错误：data 应为 String' })
      return
    }
    const frame =
      data instanceof ArrayBuffer
        ? new Uint8Array(data)
        : option.isBuffer
          ? new Uint8Array(Buffer.from(String(data), 'base64'))
          : String(data)
    socket.send(frame, (err) => {
      if (err) settle(core, option, false, { error: SEND_FAILED, errorMessage: err })
      else settle(core, option, true, {})
    })
  }

  function close(socket: CoreSocket | undefined, option: MyCloseOption | undefined): void {
    if (!core.alive()) return
    const err = socket?.close(option?.code ?? 1000, option?.reason ?? '')
    if (err) settle(core, option, false, { error: 1, errorMessage: err })
    else settle(core, option, true, {})
  }

  function connectSocket(option: MyConnectSocketOption): any {
    if (option.multiple) {
      const own = socketListeners()
      const socket = open(option, own, messageShape, () => true, closeShape === 'nested')
      return {
        send: (opt: MySendOption) => send(socket, opt),
        close: (opt?: MyCloseOption) => close(socket, opt),
        onOpen: own.open.on,
        onClose: own.close.on,
        onError: own.error.on,
        onMessage: own.message.on,
        offOpen: own.open.off,
        offClose: own.close.off,
        offError: own.error.off,
        offMessage: own.message.off,
      } satisfies MySocketTask
    }
    // The docs disagree on a second single-instance connect (docs/platforms.md: error 2 "already
    // exists" vs "the old one is closed and replaced"). We replace: the old socket is closed and says
    // nothing more, since the global listeners now belong to the new one.
    if (current) current.close(1000, '')
    const mine = ++generation
    current = open(option, global, 'flat', () => mine === generation)
    return undefined
  }

  const lifecycle = lifecycleApi(
    core,
    (online): MyNetworkStatus => ({ isConnected: online, networkType: online ? 'WIFI' : 'NOTREACHABLE' }),
  )

  return {
    connectSocket,
    onSocketOpen: global.open.on,
    onSocketMessage: global.message.on,
    onSocketError: global.error.on,
    onSocketClose: global.close.on,
    offSocketOpen: global.open.off,
    offSocketMessage: global.message.off,
    offSocketError: global.error.off,
    offSocketClose: global.close.off,
    sendSocketMessage: (opt) => send(current, opt),
    closeSocket: (opt) => close(current, opt),
    setStorageSync(opt) {
      if (!core.alive()) return { success: true }
      let json: string | undefined
      try {
        json = typeof opt?.key === 'string' ? JSON.stringify(opt.data) : undefined
      } catch {
        json = undefined
      }
      if (json === undefined) return refuse(11, '参数错误')
      // Over-quota writes fail and keep the old value; nothing is evicted (docs/platforms.md).
      const refused = core.storage.write(opt.key, json)
      if (refused === 'item') return refuse(14, 'data长度超限')
      if (refused === 'total') return refuse(12, '存储总大小达到上限')
      return { success: true }
    },
    getStorageSync(opt) {
      const json = core.alive() ? core.storage.read(opt.key) : undefined
      const value = json === undefined ? null : JSON.parse(json)
      return storageField === 'data' ? { data: value } : ({ data: null, APDataStorage: value } as any)
    },
    removeStorageSync(opt) {
      if (core.alive()) core.storage.remove(opt.key)
      return { success: true }
    },
    clearStorageSync() {
      if (core.alive()) core.storage.clear()
      return { success: true }
    },
    getStorageInfoSync: () => storageInfo(core),
    getNetworkType(opt) {
      if (!core.alive()) return
      const online = core.online()
      settle(core, opt, true, { networkAvailable: online, networkType: online ? 'WIFI' : 'NOTREACHABLE' })
    },
    ...lifecycle,
    control: core.control,
  }
}

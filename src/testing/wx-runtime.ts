/**
 * A `wx`-compatible object for Node, on real `ws` sockets, faithful to documented WeChat behaviour
 * (docs/platforms.md). Where the docs are silent, the choice is noted.
 *
 *   const wx = createWxRuntime()
 *   const task = wx.connectSocket({ url: server.url })
 *   task.onOpen(() => task.send({ data: 'hi' }))
 *   wx.control.hide()   // 5 s later: onClose {code: 1000, reason: 'interrupted'}
 */
import {
  type CoreSocket,
  type CoreSocketEvents,
  createRuntimeCore,
  fanOut,
  lifecycleApi,
  type RuntimeControl,
  type RuntimeOptions,
  settle,
  storageInfo,
} from './runtime-core'

export type WxRuntimeOptions = RuntimeOptions

/** What every wx callback receives at least. */
export interface WxResult {
  errMsg: string
}

export interface WxCallbacks<T = WxResult> {
  success?(res: T): void
  fail?(res: WxResult): void
  complete?(res: T | WxResult): void
}

export interface WxConnectSocketOption extends WxCallbacks {
  url: string
  header?: Record<string, string>
  protocols?: string[]
  /** Connect timeout in ms (since base library 2.10.0). @default 60000 */
  timeout?: number
}

/**
 * WeChat's SocketTask: no `off*` methods (listeners cannot be removed) and no `readyState`
 * (undocumented; docs/platforms.md). Several listeners per event are allowed.
 */
export interface WxSocketTask {
  send(option: { data: string | ArrayBuffer } & WxCallbacks): void
  close(option?: { code?: number; reason?: string } & WxCallbacks): void
  onOpen(listener: (res: { header: Record<string, string>; profile: Record<string, unknown> }) => void): void
  onClose(listener: (res: { code: number; reason: string }) => void): void
  onError(listener: (res: WxResult) => void): void
  onMessage(listener: (res: { data: string | ArrayBuffer }) => void): void
}

export interface WxNetworkStatus {
  isConnected: boolean
  networkType: 'wifi' | 'none'
}

export interface WxRuntime {
  connectSocket(option: WxConnectSocketOption): WxSocketTask
  /** Throws an Error whose message starts with `setStorageSync:fail` (quota, bad key, unserialisable data). */
  setStorageSync(key: string, data: unknown): void
  /** A fresh copy of the stored value, or `''` for a missing key (as WeChat returns). */
  getStorageSync(key: string): any
  removeStorageSync(key: string): void
  clearStorageSync(): void
  /** Sizes in KB. */
  getStorageInfoSync(): { keys: string[]; currentSize: number; limitSize: number }
  setStorage(option: { key: string; data: unknown } & WxCallbacks): void
  getStorage(option: { key: string } & WxCallbacks<WxResult & { data: any }>): void
  onNetworkStatusChange(listener: (res: WxNetworkStatus) => void): void
  offNetworkStatusChange(listener?: (res: WxNetworkStatus) => void): void
  getNetworkType(option?: WxCallbacks<WxResult & { networkType: 'wifi' | 'none' }>): void
  onAppShow(listener: (res: Record<string, unknown>) => void): void
  onAppHide(listener: (res: Record<string, unknown>) => void): void
  offAppShow(listener?: (res: Record<string, unknown>) => void): void
  offAppHide(listener?: (res: Record<string, unknown>) => void): void
  /** Test controls; not part of WeChat's API. */
  readonly control: RuntimeControl
}

export function createWxRuntime(options: WxRuntimeOptions = {}): WxRuntime {
  const core = createRuntimeCore(options, {
    perKeyLimit: 1024 * 1024,
    suspend: 'onShow',
    resumeFailMs: 300,
    closeWhileConnecting: 'ignored',
  })

  function connectSocket(option: WxConnectSocketOption): WxSocketTask {
    const open: Array<(res: any) => void> = []
    const close: Array<(res: any) => void> = []
    const error: Array<(res: any) => void> = []
    const message: Array<(res: any) => void> = []
    const events: CoreSocketEvents = {
      open: (header) => fanOut(open, { header, profile: {} }),
      message: (data) => fanOut(message, { data }),
      error: (_reason, detail, opening) =>
        fanOut(error, { errMsg: opening ? `connectSocket:fail ${detail}` : `SocketTask.onError ${detail}` }),
      close: (code, reason) => fanOut(close, { code, reason }),
    }
    const socket: CoreSocket = core.connect(
      option.url,
      { protocols: option.protocols, header: option.header, timeout: option.timeout },
      events,
    )
    if (core.alive()) {
      // The call's own callbacks only say whether the call was accepted (docs/platforms.md).
      // The limit is the one failure with its own text; the others also fail the call.
      if (socket.failed === 'limit') {
        const res = { errMsg: 'createSocketTask:fail exceed max concurrent count' }
        settle(core, option, false, res)
        core.later(() => {
          fanOut(error, res)
          fanOut(close, { code: 1006, reason: 'abnormal closure' })
        })
      } else if (socket.failed) {
        settle(core, option, false, { errMsg: `connectSocket:fail ${socket.detail}` })
      } else {
        settle(core, option, true, { errMsg: 'connectSocket:ok' })
      }
    }

    return {
      send(opt) {
        if (!core.alive()) return
        const data = opt?.data
        // WeChat accepts string or ArrayBuffer only; a typed array is a parameter error.
        if (typeof data !== 'string' && !(data instanceof ArrayBuffer)) {
          settle(core, opt, false, {
            errMsg: 'sendSocketMessage:fail parameter error: parameter.data should be String / ArrayBuffer',
          })
          return
        }
        if (!socket.isOpen()) {
          settle(core, opt, false, { errMsg: 'sendSocketMessage:fail WebSocket is not connected' })
          return
        }
        socket.send(typeof data === 'string' ? data : new Uint8Array(data), (err) => {
          if (err) settle(core, opt, false, { errMsg: `sendSocketMessage:fail ${err}` })
          else settle(core, opt, true, { errMsg: 'sendSocketMessage:ok' })
        })
      },
      close(opt) {
        if (!core.alive()) return
        // Default code 1000; reason at most 123 UTF-8 bytes (docs/platforms.md). Closing a task that is
        // already closed is accepted (undocumented; the benign choice).
        const err = socket.close(opt?.code ?? 1000, opt?.reason ?? '')
        if (err) settle(core, opt, false, { errMsg: `closeSocket:fail ${err}` })
        else settle(core, opt, true, { errMsg: 'closeSocket:ok' })
      },
      onOpen: (fn) => void open.push(fn),
      onClose: (fn) => void close.push(fn),
      onError: (fn) => void error.push(fn),
      onMessage: (fn) => void message.push(fn),
    }
  }

  function setStorageSync(key: string, data: unknown): void {
    if (!core.alive()) return
    if (typeof key !== 'string' || key === '') {
      throw new Error(`setStorageSync:fail parameter error: parameter.key should be a non-empty String`)
    }
    let json: string | undefined
    try {
      // WeChat serialises the value; a JSON round trip is the closest model (a Date comes back a string).
      json = JSON.stringify(data)
    } catch (e) {
      throw new Error(`setStorageSync:fail ${(e as Error).message}`)
    }
    if (json === undefined) throw new Error('setStorageSync:fail parameter error: data is not serialisable')
    // The exact texts are unverified (docs/platforms.md); the `setStorageSync:fail` prefix is WeChat's form.
    const refused = core.storage.write(key, json)
    if (refused === 'item') throw new Error('setStorageSync:fail exceed storage item max length')
    if (refused === 'total') throw new Error('setStorageSync:fail exceed storage max size')
  }

  function getStorageSync(key: string): any {
    if (!core.alive()) return ''
    const json = core.storage.read(key)
    return json === undefined ? '' : JSON.parse(json)
  }

  const lifecycle = lifecycleApi(
    core,
    (online): WxNetworkStatus => ({ isConnected: online, networkType: online ? 'wifi' : 'none' }),
  )

  return {
    connectSocket,
    setStorageSync,
    getStorageSync,
    removeStorageSync(key) {
      if (core.alive()) core.storage.remove(key)
    },
    clearStorageSync() {
      if (core.alive()) core.storage.clear()
    },
    getStorageInfoSync: () => storageInfo(core),
    setStorage(opt) {
      try {
        setStorageSync(opt.key, opt.data)
        settle(core, opt, true, { errMsg: 'setStorage:ok' })
      } catch (e) {
        settle(core, opt, false, { errMsg: (e as Error).message.replace('setStorageSync', 'setStorage') })
      }
    },
    getStorage(opt) {
      if (!core.alive()) return
      const json = core.storage.read(opt.key)
      if (json === undefined) settle(core, opt, false, { errMsg: 'getStorage:fail data not found' })
      else settle(core, opt, true, { errMsg: 'getStorage:ok', data: JSON.parse(json) })
    },
    getNetworkType(opt) {
      if (!core.alive()) return
      settle(core, opt, true, { errMsg: 'getNetworkType:ok', networkType: core.online() ? 'wifi' : 'none' })
    },
    ...lifecycle,
    control: core.control,
  }
}

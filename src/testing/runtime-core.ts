/**
 * The machinery both fake runtimes share: real `ws` sockets with the 5-socket limit, quota-checked
 * storage, network and app lifecycle, and the `control` object tests drive them with.
 * `wx-runtime.ts` and `my-runtime.ts` only dress it in each platform's call and event shapes.
 *
 * Platform behaviour modelled here is in docs/platforms.md, with its public sources.
 */
import { clearImmediate as realClearImmediate, setImmediate as realSetImmediate } from 'node:timers'
import WebSocket from 'ws'

/** Both WeChat and Alipay document at most 5 live sockets (docs/platforms.md). */
export const MAX_SOCKETS = 5
/** WeChat's default connect timeout (app.json `networkTimeout.connectSocket`, docs/platforms.md). */
const CONNECT_TIMEOUT = 60_000
/**
 * How long a socket the app closed may wait for the server's close frame before its TCP
 * connection is dropped. Not a platform figure: it only keeps half-dead links from lingering.
 */
const CLOSE_HANDSHAKE_TIMEOUT = 1000

/**
 * The stored data of one mini program: key -> JSON text, as the platform serialises it.
 * Share one area between two runtimes to model a cold start after the app was killed.
 */
export class StorageArea {
  private readonly entries = new Map<string, { json: string; bytes: number }>()
  private used = 0

  /** Bytes in use: UTF-8 of every key plus the JSON of its value (the size the quotas count). */
  bytes(): number {
    return this.used
  }
  keys(): string[] {
    return Array.from(this.entries.keys())
  }
  /** The JSON text stored under `key`, or `undefined`. */
  raw(key: string): string | undefined {
    return this.entries.get(key)?.json
  }
  /** A fresh copy of the stored value, or `undefined`. */
  get(key: string): unknown {
    const json = this.raw(key)
    return json === undefined ? undefined : JSON.parse(json)
  }
  /** Writes without any quota check: for seeding fixtures. Runtimes check quotas before calling it. */
  set(key: string, json: string): void {
    this.delete(key)
    const bytes = entryBytes(key, json)
    this.entries.set(key, { json, bytes })
    this.used += bytes
  }
  delete(key: string): void {
    const old = this.entries.get(key)
    if (!old) return
    this.entries.delete(key)
    this.used -= old.bytes
  }
  clear(): void {
    this.entries.clear()
    this.used = 0
  }
}

export function createStorageArea(): StorageArea {
  return new StorageArea()
}

export function entryBytes(key: string, json: string): number {
  return Buffer.byteLength(key) + Buffer.byteLength(json)
}

export interface RuntimeOptions {
  /** Where stored data lives. Pass the area of a killed runtime to model a cold start. @default a new area */
  storage?: StorageArea
  /** Largest entry (key + JSON bytes). @default 1024 * 1024 on wx, 200 * 1024 on my (docs/platforms.md) */
  perKeyLimit?: number
  /** Largest total of all entries. @default 10 * 1024 * 1024 (docs/platforms.md) */
  totalLimit?: number
  /** How long after `hide()` the app is suspended and its live sockets closed. @default 5000 (docs/platforms.md) */
  suspendDelay?: number
  /** The close code the suspension gives each socket: Douyin documents 1001. @default 1000 */
  suspendCloseCode?: number
  /**
   * When the callbacks and events of a suspended app run: `onShow`, held until `show()` (WeChat: "events
   * and API callbacks fire when the app comes back to the foreground", docs/platforms.md), or
   * `whileHidden`, as they happen. @default 'onShow' on wx, 'whileHidden' on my
   */
  suspend?: 'onShow' | 'whileHidden'
  /** With `suspend: 'onShow'`: whether `onAppShow` fires before the held events, or after them. @default 'showFirst' */
  showOrder?: 'showFirst' | 'eventsFirst'
  /**
   * For how long after `show()` connects fail with `network api interrupted in suspend state`, as field
   * reports of WeChat describe (docs/platforms.md). @default 300 on wx, 0 on my
   */
  resumeFailMs?: number
  /**
   * A close called while the socket is still connecting: `ignored` (WeChat and Baidu document that it
   * does not close; the socket opens later) or `effective`. @default 'ignored' on wx, 'effective' on my
   */
  closeWhileConnecting?: 'ignored' | 'effective'
  /**
   * The close code the app sees: `faithful`, or always 1005 (WeChat has delivered server codes as 1005)
   * or 1006 (Taro H5 reports every close as 1006): docs/platforms.md. @default 'faithful'
   */
  closeCode?: 'faithful' | 1005 | 1006
  /** How many sockets may be live at once: 5 documented, field reports of 2 on WeChat. @default 5 */
  maxSockets?: number
}

/** The defaults that differ per runtime. */
export type RuntimeDefaults = Required<
  Pick<RuntimeOptions, 'suspend' | 'resumeFailMs' | 'closeWhileConnecting'>
> & {
  perKeyLimit: number
}

export interface RuntimeCounters {
  /** Successful storage writes. */
  setStorageSync: number
  /** Bytes (key + JSON) of those writes. */
  bytesWritten: number
  getStorageSync: number
  removeStorageSync: number
}

/** Test-only controls; not part of any platform's API. */
export interface RuntimeControl {
  /**
   * The network goes down: network listeners get `{isConnected: false}`, every live socket's TCP
   * connection is destroyed and the app sees close 1006 `abnormal closure`; new connects fail.
   */
  offline(): void
  /** The network comes back: network listeners get `{isConnected: true}`; connects work again. */
  online(): void
  /**
   * The app goes to the background: `onAppHide` listeners fire, and `suspendDelay` ms later every live
   * socket is closed with 1000 `interrupted` and connects fail until `show()` (docs/platforms.md).
   */
  hide(): void
  /**
   * The app comes back: `onAppShow` listeners fire; a pending suspend is cancelled; held events run
   * (in `showOrder`), and connects fail for `resumeFailMs`.
   */
  show(): void
  /**
   * The process dies: every socket is destroyed without any event, timers are cancelled, and no
   * callback of this runtime fires again. Storage calls made afterwards are dropped (a dead process
   * writes nothing). Start a new runtime on `control.storage` for the cold start.
   */
  kill(): void
  /** Sockets counting against the limit (`maxSockets`): not yet closed, and not closed by the app. */
  liveSockets(): number
  /** Resolves after every callback this runtime has already scheduled has run (real timers, never faked). */
  flush(): Promise<void>
  readonly storage: StorageArea
  readonly counters: RuntimeCounters
}

/** Why a connect failed. `limit`, `offline`, `suspended` and `url` are known when connect is called. */
export type FailReason = 'limit' | 'offline' | 'suspended' | 'url' | 'timeout' | 'error'

/** What a core socket tells its adapter. Nothing is delivered after `close`, nor after `kill()`. */
export interface CoreSocketEvents {
  open(header: Record<string, string>): void
  message(data: string | ArrayBuffer): void
  /** `opening` is true when the socket never opened (a failed connect). */
  error(reason: FailReason, detail: string, opening: boolean): void
  close(code: number, reason: string): void
}

export interface CoreSocket {
  readonly id: number
  /** Set when the connect failed at call time; the failure events follow asynchronously. */
  readonly failed?: FailReason
  /** What went wrong, when `failed` is set. */
  readonly detail?: string
  isOpen(): boolean
  /** Sends a frame; `done` gets an error text when the socket is not open or the send failed. */
  send(data: string | Uint8Array, done: (error?: string) => void): void
  /** Starts a client close; returns an error text when `code`/`reason` are invalid. */
  close(code: number, reason: string): string | undefined
}

export interface ConnectOptions {
  protocols?: string | string[]
  header?: Record<string, string>
  timeout?: number
}

/** Network and lifecycle listeners keep insertion order; a Set makes a second `on` of one function a no-op. */
type Listener<T> = (value: T) => void

export interface RuntimeCore {
  readonly control: RuntimeControl
  /** False once the runtime was killed: adapters then do nothing at all. */
  alive(): boolean
  /** Runs `fn` in a later macrotask, unless the runtime is killed first. */
  later(fn: () => void): void
  connect(url: string, options: ConnectOptions, events: CoreSocketEvents): CoreSocket
  readonly storage: {
    perKeyLimit: number
    totalLimit: number
    /** Checks the quotas and writes; returns what refused the write, or nothing. */
    write(key: string, json: string): 'item' | 'total' | undefined
    read(key: string): string | undefined
    remove(key: string): void
    clear(): void
  }
  online(): boolean
  readonly network: Set<Listener<boolean>>
  readonly appShow: Set<Listener<void>>
  readonly appHide: Set<Listener<void>>
}

export function createRuntimeCore(options: RuntimeOptions, defaults: RuntimeDefaults): RuntimeCore {
  const area = options.storage ?? createStorageArea()
  const perKeyLimit = options.perKeyLimit ?? defaults.perKeyLimit
  const totalLimit = options.totalLimit ?? 10 * 1024 * 1024
  const suspendDelay = options.suspendDelay ?? 5000
  const suspendCloseCode = options.suspendCloseCode ?? 1000
  const holdWhileSuspended = (options.suspend ?? defaults.suspend) === 'onShow'
  const showOrder = options.showOrder ?? 'showFirst'
  const resumeFailMs = options.resumeFailMs ?? defaults.resumeFailMs
  const ignoreEarlyClose = (options.closeWhileConnecting ?? defaults.closeWhileConnecting) === 'ignored'
  const closeCode = options.closeCode ?? 'faithful'
  const maxSockets = options.maxSockets ?? MAX_SOCKETS
  /** Callbacks due while the app was suspended, run on `show()` (with `suspend: 'onShow'`). */
  let held: Array<() => void> = []
  /** Until when (Date.now()) connects fail after a return. */
  let resumingUntil = 0

  let killed = false
  let isOnline = true
  let suspended = false
  let suspendTimer: ReturnType<typeof setTimeout> | undefined
  let nextId = 1
  const immediates = new Set<ReturnType<typeof realSetImmediate>>()
  /** Every socket whose connection is not yet gone, including those the app is closing. */
  const sockets = new Set<SocketEntry>()
  const network = new Set<Listener<boolean>>()
  const appShow = new Set<Listener<void>>()
  const appHide = new Set<Listener<void>>()
  const counters: RuntimeCounters = {
    setStorageSync: 0,
    bytesWritten: 0,
    getStorageSync: 0,
    removeStorageSync: 0,
  }

  interface SocketEntry {
    /** Counts against the limit: not closed, and not being closed by the app. */
    counted: boolean
    /** The network went down: the TCP connection is destroyed; the app sees close 1006. */
    drop(): void
    /** The app was suspended in the background: the app sees close 1000 `interrupted`. */
    suspend(): void
    /** The process died: the connection is destroyed and the app sees nothing. */
    destroy(): void
  }

  function connect(url: string, opts: ConnectOptions, events: CoreSocketEvents): CoreSocket {
    const id = nextId++
    let state: 'connecting' | 'open' | 'closing' | 'closed' = 'connecting'
    let ws: WebSocket | undefined
    let header: Record<string, string> = {}
    // Set once the runtime (offline, suspend, kill) or an early app close ended the socket:
    // ws events from then on are not the app's business.
    let detached = false
    const deliverClose = (code: number, reason: string) =>
      events.close(closeCode === 'faithful' ? code : closeCode, reason)

    /** Ends the socket now; `deliver` runs later with whether it had opened. */
    const end = (terminate: boolean, deliver?: (opening: boolean) => void) => {
      const opening = state === 'connecting'
      detached = true
      finish()
      if (terminate) ws?.terminate()
      if (deliver) later(() => deliver(opening))
    }
    const entry: SocketEntry = {
      counted: true,
      drop: () =>
        end(true, (opening) => {
          if (opening) events.error('offline', 'network is down', true)
          deliverClose(1006, 'abnormal closure')
        }),
      suspend() {
        // The platform closes the socket itself, so the server gets a close frame (docs/platforms.md, WeChat and Douyin).
        const open = state === 'open'
        if (open) {
          try {
            ws?.close(suspendCloseCode, 'interrupted')
          } catch {
            ws?.terminate()
          }
        }
        end(!open, (opening) => {
          if (opening) events.error('suspended', 'interrupted', true)
          deliverClose(suspendCloseCode, 'interrupted')
        })
      },
      destroy: () => end(true),
    }
    const finish = () => {
      state = 'closed'
      entry.counted = false
      sockets.delete(entry)
    }
    const failNow = (reason: FailReason, detail: string): CoreSocket => {
      finish()
      if (reason !== 'limit') {
        later(() => {
          events.error(reason, detail, true)
          deliverClose(1006, 'abnormal closure')
        })
      }
      return {
        id,
        failed: reason,
        detail,
        isOpen: () => false,
        send: (_data, done) => later(() => done('not connected')),
        close: () => undefined,
      }
    }

    if (killed) return { id, isOpen: () => false, send() {}, close: () => undefined }
    if (liveCount() >= maxSockets) return failNow('limit', 'exceed max concurrent count')
    if (!isOnline) return failNow('offline', 'network is down')
    if (suspended || Date.now() < resumingUntil) {
      return failNow('suspended', 'network api interrupted in suspend state')
    }
    try {
      ws = new WebSocket(url, opts.protocols, {
        headers: opts.header,
        handshakeTimeout: opts.timeout ?? CONNECT_TIMEOUT,
        closeTimeout: CLOSE_HANDSHAKE_TIMEOUT,
      } as WebSocket.ClientOptions)
    } catch (e) {
      return failNow('url', (e as Error).message)
    }
    sockets.add(entry)
    const live = () => !killed && !detached
    ws.on('upgrade', (res) => {
      header = {}
      for (const k of Object.keys(res.headers)) header[k] = String(res.headers[k])
    })
    ws.on('open', () => {
      if (!live()) return
      state = 'open'
      events.open(header)
    })
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!live()) return
      events.message(isBinary ? toArrayBuffer(data) : data.toString('utf8'))
    })
    // Always listened to: an 'error' without a listener would crash the test process.
    ws.on('error', (err) => {
      if (!live()) return
      const timeout = /timed out/i.test(err.message)
      events.error(timeout ? 'timeout' : 'error', err.message, state === 'connecting')
    })
    ws.on('close', (code: number, reason: Buffer) => {
      sockets.delete(entry)
      if (!live()) return
      finish()
      // WeChat reports an abnormal close as 1006 "abnormal closure" (docs/platforms.md).
      deliverClose(code, reason.toString() || (code === 1006 ? 'abnormal closure' : ''))
    })

    return {
      id,
      isOpen: () => state === 'open' && !killed,
      send(data, done) {
        if (killed) return
        if (state !== 'open' || !ws) {
          later(() => done('not connected'))
          return
        }
        ws.send(data, { binary: typeof data !== 'string' }, (err) => later(() => done(err?.message)))
      },
      close(code, reason) {
        if (killed || state === 'closed' || state === 'closing' || !ws) return undefined
        if (state === 'connecting') {
          // WeChat: a close before open does not close; the socket opens later and holds its slot.
          if (ignoreEarlyClose) return undefined
          // Closing before open: the app gets the close it asked for, not ws's "closed before established".
          end(true, () => deliverClose(code, reason))
          return undefined
        }
        try {
          ws.close(code, reason)
        } catch (e) {
          return (e as Error).message
        }
        // The slot is freed when the app lets go; the close event follows the handshake.
        state = 'closing'
        entry.counted = false
        return undefined
      },
    }
  }

  // Deliveries use the real setImmediate captured at import, so they are macrotasks (as the
  // platforms' native callbacks are) and still run when a test fakes timers.
  function later(fn: () => void): void {
    if (killed) return
    if (suspended && holdWhileSuspended) {
      held.push(fn)
      return
    }
    const handle = realSetImmediate(() => {
      immediates.delete(handle)
      if (!killed) fn()
    })
    immediates.add(handle)
  }

  function each<T>(set: Set<Listener<T>>, value: T): void {
    later(() => fanOut(Array.from(set), value))
  }

  function liveCount(): number {
    let n = 0
    for (const s of sockets) if (s.counted) n++
    return n
  }

  const control: RuntimeControl = {
    offline() {
      if (killed || !isOnline) return
      isOnline = false
      each(network, false)
      for (const s of Array.from(sockets)) s.drop()
    },
    online() {
      if (killed || isOnline) return
      isOnline = true
      each(network, true)
    },
    hide() {
      if (killed) return
      each(appHide, undefined)
      if (suspendTimer !== undefined || suspended) return
      suspendTimer = setTimeout(() => {
        suspendTimer = undefined
        if (killed) return
        suspended = true
        for (const s of Array.from(sockets)) s.suspend()
      }, suspendDelay)
    },
    show() {
      if (killed) return
      if (suspendTimer !== undefined) clearTimeout(suspendTimer)
      suspendTimer = undefined
      const wasSuspended = suspended
      suspended = false
      const due = held
      held = []
      if (wasSuspended) resumingUntil = Date.now() + resumeFailMs
      if (showOrder === 'showFirst') each(appShow, undefined)
      for (const fn of due) later(fn)
      if (showOrder !== 'showFirst') each(appShow, undefined)
    },
    kill() {
      if (killed) return
      killed = true
      if (suspendTimer !== undefined) clearTimeout(suspendTimer)
      suspendTimer = undefined
      for (const h of immediates) realClearImmediate(h)
      immediates.clear()
      held = []
      for (const s of Array.from(sockets)) s.destroy()
      network.clear()
      appShow.clear()
      appHide.clear()
    },
    liveSockets: liveCount,
    flush: () => new Promise((resolve) => realSetImmediate(resolve)),
    storage: area,
    counters,
  }

  return {
    control,
    alive: () => !killed,
    later,
    connect,
    storage: {
      perKeyLimit,
      totalLimit,
      write(key, json) {
        const bytes = entryBytes(key, json)
        if (bytes > perKeyLimit) return 'item'
        const old = area.raw(key)
        const after = area.bytes() - (old === undefined ? 0 : entryBytes(key, old)) + bytes
        if (after > totalLimit) return 'total'
        area.set(key, json)
        counters.setStorageSync++
        counters.bytesWritten += bytes
        return undefined
      },
      read(key) {
        counters.getStorageSync++
        return area.raw(key)
      },
      remove(key) {
        counters.removeStorageSync++
        area.delete(key)
      },
      clear: () => area.clear(),
    },
    online: () => isOnline,
    network,
    appShow,
    appHide,
  }
}

/** The `success`/`fail`/`complete` trio both platforms use (result shapes differ). */
export interface Callbacks {
  success?(res: any): void
  fail?(res: any): void
  complete?(res: any): void
}

/** Calls an option's `success` or `fail`, then `complete`, in a later macrotask as WeChat does. */
export function settle<T extends object>(
  core: RuntimeCore,
  option: Callbacks | undefined,
  ok: boolean,
  res: T,
): void {
  core.later(() => {
    if (ok) option?.success?.(res)
    else option?.fail?.(res as any)
    option?.complete?.(res)
  })
}

/**
 * Fans an event out to its listeners. A listener that throws does not stop the others; its error
 * is rethrown afterwards so the test run reports it (a bug in the code under test).
 */
export function fanOut<T>(listeners: Array<(res: T) => void>, res: T): void {
  let failure: unknown
  for (const fn of listeners.slice()) {
    try {
      fn(res)
    } catch (e) {
      failure ??= e
    }
  }
  if (failure !== undefined) {
    realSetImmediate(() => {
      throw failure
    })
  }
}

/**
 * `on`/`off` for a platform listener kept in one of the core's sets: `adapt` shapes the core's value
 * into the platform's result. `off()` with no listener removes them all (Alipay's convention).
 */
export function adaptedListeners<T, R>(
  set: Set<(value: T) => void>,
  adapt: (fn: (res: R) => void) => (value: T) => void,
) {
  const wrappers = new Map<Function, (value: T) => void>()
  return {
    on(fn: (res: R) => void): void {
      if (wrappers.has(fn)) return
      const w = adapt(fn)
      wrappers.set(fn, w)
      set.add(w)
    },
    off(fn?: (res: R) => void): void {
      for (const [f, w] of Array.from(wrappers)) {
        if (fn && f !== fn) continue
        set.delete(w)
        wrappers.delete(f)
      }
    },
  }
}

/** `getStorageInfoSync()`'s answer, the same on every runtime: sizes in KB, as WeChat gives them. */
export function storageInfo(core: RuntimeCore) {
  const area = core.control.storage
  return {
    keys: area.keys(),
    currentSize: Math.ceil(area.bytes() / 1024),
    limitSize: Math.floor(core.storage.totalLimit / 1024),
  }
}

/**
 * The network and app lifecycle calls, as every runtime exposes them (`on*` / `off*`);
 * `status` shapes a network event in the platform's words.
 */
export function lifecycleApi<S>(core: RuntimeCore, status: (online: boolean) => S) {
  const network = adaptedListeners(
    core.network,
    (fn: (res: S) => void) => (online: boolean) => fn(status(online)),
  )
  // App.onShow gets the launch options; the runtime has none to give.
  const show = adaptedListeners(core.appShow, (fn: (res: Record<string, unknown>) => void) => () => fn({}))
  const hide = adaptedListeners(core.appHide, (fn: (res: Record<string, unknown>) => void) => () => fn({}))
  return {
    onNetworkStatusChange: network.on,
    offNetworkStatusChange: network.off,
    onAppShow: show.on,
    onAppHide: hide.on,
    offAppShow: show.off,
    offAppHide: hide.off,
  }
}

function toArrayBuffer(buf: Buffer): ArrayBuffer {
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer
}

/**
 * Pieces every adapter shares: the per-socket guard (which also normalises what platforms report),
 * the SocketTask calls, Alipay's message shapes, the storage wrapper, and the on/off subscriptions
 * of the mini program APIs.
 */
import { describe, MpbusError, type MpbusErrorCode } from '../errors'
import type { CloseInfo, SocketData, SocketListeners, Storage } from './types'

/** `e` itself when it is an `MpbusError`, else one with `code`, the platform's text and `e` as the cause. */
export function toError(code: MpbusErrorCode, e: unknown): MpbusError {
  return e instanceof MpbusError ? e : new MpbusError(code, describe(e), e)
}

/** The listeners an adapter hands the platform: they take the platform's raw values. */
export interface Guard {
  open(): void
  message(data: SocketData): void
  /** A close event as the platform gives it (see `closeInfo`). */
  close(raw?: unknown): void
  /** `{errMsg}` (wx family), `{error, errorMessage}` (Alipay), an Event, an Error or a string: a `SOCKET_ERROR`. */
  error(raw: unknown): void
  /** Stops every later callback: the caller closed the socket, or a newer one replaced it. */
  detach(): void
  /** True once the socket closed, failed or was detached. */
  done(): boolean
}

/**
 * Wraps listeners so they keep the contract in types.ts whatever the platform does:
 * wx tasks have no `off*` (platform-facts §1), so a task we gave up on keeps calling
 * its listeners; after `close`, `error` or `detach()` those calls land here and stop.
 */
export function guard(l: SocketListeners): Guard {
  // 0 connecting, 1 open, 2 finished
  let s = 0
  const g: Guard = {
    open: () => {
      if (!s) {
        s = 1
        l.open()
      }
    },
    // A frame can only come through an open socket: when its `onOpen` was missed
    // (Taro attaches late, platform-facts §3), the first frame stands in for it.
    message: (data) => {
      g.open()
      if (s === 1) l.message(data)
    },
    close: (raw) => {
      if (s < 2) {
        s = 2
        l.close(closeInfo(raw))
      }
    },
    error: (raw) => {
      if (s < 2) {
        s = 2
        l.error(toError('SOCKET_ERROR', raw))
      }
    },
    detach: () => {
      s = 2
    },
    done: () => s > 1,
  }
  return g
}

/**
 * Douyin reports the close code as a string (platform-facts §3, tt row), and before 1.81.0
 * no code at all: a missing code becomes 1005, the RFC 6455 "no status received".
 */
export function closeInfo(r: any): CloseInfo {
  r = r || {}
  return { code: +r.code || 1005, reason: String(r.reason || '') }
}

/** Wraps `done` so it runs at most once, whatever mix of success, fail and throw the platform produces. */
export function once(done?: (error?: MpbusError) => void): (error?: MpbusError) => void {
  return (e) => {
    const f = done
    done = undefined
    if (f) f(e)
  }
}

/** Sends through a SocketTask-style `send({data, success, fail})`; `task` is undefined until the platform gives one. */
export function sendTask(task: any, data: SocketData, done?: (error?: MpbusError) => void): void {
  const d = once(done)
  const fail = (e: unknown) => d(toError('SOCKET_ERROR', e))
  try {
    if (!task) throw 'not connected'
    task.send({ data, success: () => d(), fail })
  } catch (e) {
    fail(e)
  }
}

/**
 * Detaches, then closes a SocketTask. `task.close` may throw: the platform already dropped the task,
 * or there is none yet (Taro's is still pending: it is closed when it arrives). Nobody listens any more.
 */
export function closeTask(task: any, g: Guard, code = 1000, reason?: string): void {
  g.detach()
  try {
    task.close({ code, reason })
  } catch {}
}

/** Attaches the four SocketTask listeners at once. */
export function attach(task: any, g: Guard): void {
  task.onOpen(g.open)
  task.onMessage((r: any) => g.message(unwrap(r)))
  task.onClose(g.close)
  task.onError(g.error)
}

/**
 * A message event's data: `{data}` (wx family, and Alipay as its docs say) or `{data: {data, isBuffer}}`
 * (Alipay as its typings say: platform-facts §2, unverified on devices, so both); `isBuffer` data is base64.
 */
export function unwrap(r: any): SocketData {
  let d = r.data
  if (d && d.data != null) {
    r = d
    d = d.data
  }
  return r.isBuffer && typeof d === 'string' ? decodeBase64(d) : d
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Base64 (padded or not, whitespace ignored) to bytes: mini programs have no `atob` or `Buffer`. */
export function decodeBase64(s: string): ArrayBuffer {
  const bytes: number[] = []
  let bits = 0
  let n = 0
  for (const c of s) {
    const v = B64.indexOf(c)
    // Padding and whitespace are not in the alphabet.
    if (v >= 0) {
      // Only the low n + 6 bits matter; `<<` drops the rest, and Uint8Array keeps the low 8 of each byte.
      bits = (bits << 6) | v
      n += 6
      if (n >= 8) {
        n -= 8
        bytes.push(bits >> n)
      }
    }
  }
  return new Uint8Array(bytes).buffer
}

/**
 * The quota error texts are undocumented on every platform (platform-facts §4, open questions);
 * these words cover what WeChat-style runtimes and browsers (`QuotaExceededError`) say.
 */
const QUOTA = /exceed|quota|limit|max|size|full/i

/**
 * Builds a `Storage` from four raw calls, so no failure escapes untyped: a write that failed for
 * quota is `STORAGE_FULL`, anything else `STORAGE_ERROR`. A write fails when `set` throws (wx,
 * browsers) or returns `{success: false}` or `{error}` (Alipay, where 12 is the 10 MB total and
 * 14 the 200 KB key: platform-facts §4). Only strings are ours (we store nothing else): anything
 * else under a key, and `''` (what wx returns for a missing key), reads as `undefined`.
 */
export function makeStorage(
  get: (key: string) => unknown,
  set: (key: string, value: string) => unknown,
  del: (key: string) => void,
  keys: () => string[] | undefined,
): Storage {
  const run = <T>(f: () => T, write?: boolean): T => {
    try {
      return f()
    } catch (e: any) {
      const o = e || {}
      throw toError(
        write && (QUOTA.test(describe(e) + o.name) || o.error === 12 || o.error === 14)
          ? 'STORAGE_FULL'
          : 'STORAGE_ERROR',
        e,
      )
    }
  }
  return {
    get: (key) =>
      run(() => {
        const v = get(key)
        return (typeof v === 'string' && v) || undefined
      }),
    set: (key, value) =>
      run(() => {
        const r: any = set(key, value)
        if (r && (r.success === false || r.error)) throw r
      }, true),
    del: (key) => run(() => del(key)),
    keys: () => run(() => (keys() || []).slice()),
  }
}

/**
 * `fn` is told of every `api.on<name>` event for each of `names` (the value `value` reads from it)
 * until the returned unsubscribe: that calls `api.off<name>` where the API has it (wx's
 * `offNetworkStatusChange` needs base library 2.9.3, `offAppShow` 2.1.2: platform-facts §5) and
 * silences the handlers where it does not. Undefined when the API lacks one of the events.
 */
function watcher(
  api: any,
  names: string[],
  value: (name: string, r: any) => boolean,
  initial?: (report: (value: boolean) => void) => void,
): ((fn: (value: boolean) => void) => () => void) | undefined {
  return names.every((n) => api['on' + n])
    ? (fn) => {
        // 0 waiting for the first event, 1 an event came (an initial answer is stale), 2 stopped
        let s = 0
        const handlers = names.map((n) => {
          const h = (r: any) => {
            if (s < 2) {
              s = 1
              fn(value(n, r))
            }
          }
          api['on' + n](h)
          return () => api['off' + n] && api['off' + n](h)
        })
        if (initial) initial((v) => !s && fn(v))
        return () => {
          s = 2
          for (const off of handlers) off()
        }
      }
    : undefined
}

/** `watchNetwork` for the mini program APIs, or undefined when the API has no network events. */
export const miniNetwork = (api: any) =>
  watcher(
    api,
    ['NetworkStatusChange'],
    (_, r) => !!r.isConnected,
    // The initial state: wx says `networkType: 'none'`, Alipay `networkAvailable: false`
    // (https://www.cnblogs.com/yangyukeke/p/17417378.html). Online needs no report.
    (report) =>
      api.getNetworkType &&
      api.getNetworkType({
        success: (r: any) => (r.networkType === 'none' || r.networkAvailable === false) && report(false),
      }),
  )

/** `watchApp` for the mini program APIs (`onAppShow`/`onAppHide`), or undefined without them. */
export const miniApp = (api: any) => watcher(api, ['AppShow', 'AppHide'], (n) => n === 'AppShow')

/**
 * `watchHide` for the mini program APIs (`onAppHide`), or undefined without it. The unsubscribe
 * silences the handler, and removes it with `offAppHide(handler)` except on Baidu, whose
 * `swan.offAppHide()` takes no argument and removes every listener of the app
 * (smartprogram.baidu.com, swan.offAppHide, base library 3.60.2: "方法参数：无", no parameters).
 */
export const miniHide = (api: any, name: string) =>
  api.onAppHide
    ? (fn: () => void) => {
        let on = true
        const h = () => on && fn()
        api.onAppHide(h)
        return () => {
          on = false
          if (name !== 'swan' && api.offAppHide) api.offAppHide(h)
        }
      }
    : undefined

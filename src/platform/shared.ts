/**
 * Pieces every adapter shares: the per-socket guard (which also normalises what platforms report),
 * the SocketTask send, the storage wrapper, and the on/off subscriptions of the mini program APIs.
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
 * wx tasks have no `off*` (docs/platforms.md), so a task we gave up on keeps calling
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
    // (Taro attaches late, docs/platforms.md), the first frame stands in for it.
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
 * Douyin reports the close code as a string (docs/platforms.md), and before 1.81.0
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

/**
 * Sends through a SocketTask-style `send({data, success, fail})`; `task` is undefined until the platform
 * gives one. `base64`: binary goes as a base64 string with `isBuffer` (Alipay's `send` takes strings only:
 * docs/platforms.md).
 */
export function sendTask(
  task: any,
  data: SocketData,
  done?: (error?: MpbusError) => void,
  base64?: (data: ArrayBuffer) => string,
): void {
  const d = once(done)
  const fail = (e: unknown) => d(toError('SOCKET_ERROR', e))
  try {
    if (!task) throw 'not connected'
    const binary = base64 && typeof data !== 'string'
    task.send({
      data: binary ? base64(data as ArrayBuffer) : data,
      isBuffer: binary || undefined,
      success: () => d(),
      fail,
    })
  } catch (e) {
    fail(e)
  }
}

/**
 * The quota error texts are undocumented on every platform (docs/platforms.md);
 * these words cover what WeChat-style runtimes and browsers (`QuotaExceededError`) say.
 */
const QUOTA = /exceed|quota|limit|max|size|full/i

/**
 * Builds a `Storage` from four raw calls, so no failure escapes untyped: a write that failed for
 * quota is `STORAGE_FULL`, anything else `STORAGE_ERROR`. A write fails when `set` throws (wx,
 * browsers) or returns `{success: false}` or `{error}` (Alipay, where 12 is the 10 MB total and
 * 14 the 200 KB key: docs/platforms.md). Only strings are ours (we store nothing else): anything
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
 * `offNetworkStatusChange` needs base library 2.9.3, `offAppShow` 2.1.2: docs/platforms.md) and
 * silences the handlers where it does not. Undefined when the API lacks one of the events.
 */
function watcher(
  api: any,
  names: string[],
  value: (name: string, r: any) => boolean,
  initial?: (report: (value: boolean) => void) => void,
  keepListeners?: boolean,
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
          return () => !keepListeners && api['off' + n] && api['off' + n](h)
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

/**
 * `watchApp` for the mini program APIs (`onAppShow`/`onAppHide`), or undefined without them.
 * Baidu's `offAppShow()`/`offAppHide()` take no argument and remove every listener, the host app's
 * too (docs/platforms.md): on swan they are never called, the handlers only go silent.
 */
export const miniApp = (api: any, name?: string) =>
  watcher(api, ['AppShow', 'AppHide'], (n) => n === 'AppShow', undefined, name === 'swan')

/** `watchHide` for the mini program APIs (`onAppHide`), or undefined without it; swan as in `miniApp`. */
export const miniHide = (api: any, name?: string) => {
  const watch = watcher(api, ['AppHide'], () => false, undefined, name === 'swan')
  return watch && ((fn: () => void) => watch(() => fn()))
}

/**
 * Pieces every adapter shares: the per-socket guard, error and close normalisation,
 * the storage wrapper, and the on/off subscriptions of the mini program APIs.
 */
import { describe, MpbusError } from '../errors'
import type { CloseInfo, SocketData, SocketListeners, Storage } from './types'

export interface Guard extends SocketListeners {
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
  const end = () => {
    const was = s < 2
    s = 2
    return was
  }
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
    close: (info) => {
      if (end()) l.close(info)
    },
    error: (e) => {
      if (end()) l.error(e)
    },
    detach: () => {
      s = 2
    },
    done: () => s > 1,
  }
  return g
}

/** `{errMsg}` (wx family), `{error, errorMessage}` (Alipay), an Event or an Error, as `SOCKET_ERROR`. */
export function socketError(e: unknown): MpbusError {
  return e instanceof MpbusError ? e : new MpbusError('SOCKET_ERROR', describe(e), e)
}

/**
 * Douyin reports the close code as a string (platform-facts §3, tt row), and before 1.81.0
 * no code at all: a missing code becomes 1005, the RFC 6455 "no status received".
 */
export function closeInfo(r: any): CloseInfo {
  return { code: +r?.code || 1005, reason: String(r?.reason || '') }
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
  try {
    if (!task) throw new MpbusError('SOCKET_ERROR', 'not connected')
    task.send({ data, success: () => d(), fail: (e: unknown) => d(socketError(e)) })
  } catch (e) {
    d(socketError(e))
  }
}

/** Detaches, then closes a SocketTask; a task the platform already dropped may throw, and nobody listens any more. */
export function closeTask(task: any, g: Guard, code = 1000, reason?: string): void {
  g.detach()
  try {
    if (task) task.close({ code, reason })
  } catch {}
}

/** Attaches the four SocketTask listeners at once. `data` unwraps a message event. */
export function attach(task: any, g: Guard, data: (r: any) => SocketData): void {
  task.onOpen(() => g.open())
  task.onMessage((r: any) => g.message(data(r)))
  task.onClose((r: any) => g.close(closeInfo(r)))
  task.onError((e: unknown) => g.error(socketError(e)))
}

/**
 * The quota error texts are undocumented on every platform (platform-facts §4, open questions);
 * these words cover what WeChat-style runtimes and browsers (`QuotaExceededError`) say.
 */
const QUOTA = /exceed|quota|limit|max|size|full/i

/** Turns anything a storage call threw into `STORAGE_FULL` (quota) or `STORAGE_ERROR`. */
export function storageError(e: any, full?: boolean): MpbusError {
  return e instanceof MpbusError ? e : new MpbusError(full ? 'STORAGE_FULL' : 'STORAGE_ERROR', describe(e), e)
}

/**
 * Builds a `Storage` from four raw calls, so no failure escapes untyped. Only strings are
 * ours (we store nothing else): anything else under a key, and `''` (what wx returns for a
 * missing key), reads as `undefined`.
 */
export function makeStorage(
  get: (key: string) => unknown,
  set: (key: string, value: string) => void,
  del: (key: string) => void,
  keys: () => string[] | undefined,
): Storage {
  const run = <T>(f: () => T, quota?: boolean): T => {
    try {
      return f()
    } catch (e: any) {
      throw storageError(e, quota && QUOTA.test(describe(e) + e?.name))
    }
  }
  return {
    get: (key) =>
      run(() => {
        const v = get(key)
        return typeof v === 'string' && v !== '' ? v : undefined
      }),
    set: (key, value) => run(() => set(key, value), true),
    del: (key) => run(() => del(key)),
    keys: () => run(() => (keys() || []).slice()),
  }
}

/**
 * `api.onX(h)` now, `api.offX(h)` later when the API has `offX` (wx's `offNetworkStatusChange`
 * needs base library 2.9.3, `offAppShow` 2.1.2: platform-facts §5); `h` itself checks `live`
 * so an unsubscribed handler stays silent where `off*` is missing.
 */
function sub(api: any, name: string, h: (r: any) => void): () => void {
  api['on' + name](h)
  return () => {
    if (api['off' + name]) api['off' + name](h)
  }
}

/** `watchNetwork` for the mini program APIs, or undefined when the API has no network events. */
export function miniNetwork(api: any): ((fn: (online: boolean) => void) => () => void) | undefined {
  return api.onNetworkStatusChange
    ? (fn) => {
        // 0 waiting for the first report, 1 a change came first (the initial check is stale), 2 stopped
        let s = 0
        const off = sub(api, 'NetworkStatusChange', (r) => {
          if (s < 2) {
            s = 1
            fn(!!r.isConnected)
          }
        })
        // The initial state: wx says `networkType: 'none'`, Alipay `networkAvailable: false`
        // (https://www.cnblogs.com/yangyukeke/p/17417378.html). Online needs no report.
        if (api.getNetworkType)
          api.getNetworkType({
            success: (r: any) => {
              if (!s && (r.networkType === 'none' || r.networkAvailable === false)) fn(false)
            },
          })
        return () => {
          s = 2
          off()
        }
      }
    : undefined
}

/** `watchApp` for the mini program APIs (`onAppShow`/`onAppHide`), or undefined without them. */
export function miniApp(api: any): ((fn: (visible: boolean) => void) => () => void) | undefined {
  return api.onAppShow && api.onAppHide
    ? (fn) => {
        let live = true
        const a = sub(api, 'AppShow', () => live && fn(true))
        const b = sub(api, 'AppHide', () => live && fn(false))
        return () => {
          live = false
          a()
          b()
        }
      }
    : undefined
}

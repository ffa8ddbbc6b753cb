import { MpbusError } from '../errors'
import { corkTask } from '../task'
import { guard, makeStorage, once, storageOf, toError } from './shared'
import type { Lock, Platform, Socket, SocketListeners, Storage } from './types'
import { lockedOwner } from './web-locks'

declare const WebSocket: unknown

/**
 * Taro's and uni-app's web (H5) builds are browsers: their H5 `connectSocket` wraps `WebSocket`,
 * and their `onNetworkStatusChange` watches `navigator.connection`, which says connected while the
 * browser is offline, so the browser platform (its own `online`/`offline`) replaces them. A compiled
 * Taro H5 app's default `Taro` has no `connectSocket` (its babel plugin imports each API by name)
 * but says `getEnv() === 'WEB'` (https://docs.taro.zone/docs/apis/about/env); a tree-shaken uni-app
 * H5 build leaves the global `uni` (passed as `uni`) an empty object.
 */
export function isWebBuild(value: any, uni: any): boolean {
  return (
    typeof WebSocket !== 'undefined' &&
    (value === uni || (typeof value.getEnv === 'function' && value.getEnv() === 'WEB'))
  )
}

/** The global object, looked up when needed (never at import): `globalThis` is missing on old mini program clients. */
function root(): any {
  return typeof globalThis !== 'undefined' ? globalThis : {}
}

/**
 * Browsers (the global `WebSocket`) and Node (pass `ws`'s class: Node 20 has no global one).
 * Storage is `localStorage` when there is one, unless `storage` is given.
 */
export function webSocketPlatform(WebSocketCtor?: any, storage?: Storage): Platform {
  const g = root()
  const doc = g.document
  return {
    name: 'websocket',
    connect(url: string, listeners: SocketListeners): Socket {
      const C = WebSocketCtor || g.WebSocket
      if (!C) throw new MpbusError('NO_PLATFORM', 'no WebSocket')
      const gl = guard(listeners)
      const ws = new C(url)
      ws.binaryType = 'arraybuffer'
      // Never removed: with `ws` an 'error' with no listener would crash Node. The guard silences them.
      ws.onopen = gl.open
      ws.onmessage = (e: any) => gl.message(e.data)
      ws.onclose = gl.close
      // A browser's error event says nothing (`{"isTrusted":true}`): say where and in which state; `ws` gives a message.
      ws.onerror = (e: any) =>
        gl.error(
          e.message ||
            `WebSocket error on ${url}, readyState ${ws.readyState} (${['connecting', 'open', 'closing', 'closed'][ws.readyState]})`,
        )
      return {
        send(data, done) {
          const d = once(done)
          try {
            // A browser drops frames sent after close without a word: only OPEN (1) may claim success.
            if (ws.readyState !== 1) throw 'WebSocket is not open'
            corkTask(ws)
            ws.send(data)
            d()
          } catch (e) {
            d(toError('SOCKET_ERROR', e))
          }
        },
        close(code = 1000, reason) {
          gl.detach()
          try {
            ws.close(code, reason)
          } catch {
            // Browsers refuse codes other than 1000 and 3000-4999 and reasons over 123 bytes: close plainly.
            try {
              ws.close()
            } catch {}
          }
        },
      }
    },
    storage: storage || (hasLocalStorage(g) ? localStorageStorage(g.localStorage) : undefined),
    watchNetwork: g.addEventListener
      ? (fn) => {
          const off = listen(g, 'online', () => fn(true))
          const off2 = listen(g, 'offline', () => fn(false))
          if (g.navigator && g.navigator.onLine === false) fn(false)
          return () => {
            off()
            off2()
          }
        }
      : undefined,
    // A hidden tab keeps running (its timers throttled), so it keeps sending, pinging and
    // reconnecting; only a frozen page stops, and Page Lifecycle says so with `freeze`/`resume`
    // (https://developer.chrome.com/docs/web-platform/page-lifecycle-api).
    watchApp: doc?.addEventListener
      ? (fn) => {
          const off = listen(doc, 'freeze', () => fn(false))
          const off2 = listen(doc, 'resume', () => fn(true))
          return () => {
            off()
            off2()
          }
        }
      : undefined,
    watchHide: g.addEventListener || doc?.addEventListener ? (fn) => watchPageHide(g, doc, fn) : undefined,
    // Web Locks are per origin, as localStorage is; another storage given is not theirs to guard.
    share: !storage && g.navigator && g.navigator.locks ? lockedOwner(webLock(g)) : undefined,
  }
}

/**
 * Web Locks (https://developer.mozilla.org/docs/Web/API/Web_Locks_API): released by the browser
 * when the page goes, crashed or closed. A waiting request is cancelled by its AbortSignal.
 */
function webLock(g: any): Lock {
  return (name, wait, granted) => {
    let release: (() => void) | undefined
    let done = false
    const abort = wait && g.AbortController ? new g.AbortController() : undefined
    g.navigator.locks
      .request(
        name,
        wait ? (abort ? { signal: abort.signal } : {}) : { ifAvailable: true },
        (lock: unknown) => {
          if (done) return
          granted(!!lock)
          // Held until the Promise settles.
          if (lock) return new Promise<void>((r) => (release = r))
        },
      )
      .catch(noop)
    return () => {
      done = true
      if (release) release()
      else if (abort) abort.abort()
    }
  }
}

const noop = () => {}

/**
 * The moments a page may be discarded without another event: hidden (the last one a mobile browser
 * reliably fires), `pagehide` (unload or the back/forward cache), `freeze` (Page Lifecycle API):
 * https://developer.chrome.com/docs/web-platform/page-lifecycle-api#advice-hidden
 */
function watchPageHide(g: any, doc: any, fn: () => void): () => void {
  const offs: (() => void)[] = []
  if (g.addEventListener) offs.push(listen(g, 'pagehide', fn))
  if (doc && doc.addEventListener)
    offs.push(
      listen(doc, 'visibilitychange', () => doc.visibilityState === 'hidden' && fn()),
      listen(doc, 'freeze', fn),
    )
  return () => {
    for (const off of offs) off()
  }
}

function listen(target: any, type: string, h: () => void): () => void {
  target.addEventListener(type, h)
  return () => target.removeEventListener(type, h)
}

/** Reading `localStorage` throws where it is blocked (sandboxed frames, storage disabled). */
function hasLocalStorage(g: any): boolean {
  try {
    return !!g.localStorage
  } catch {
    return false
  }
}

/**
 * Taro H5 stores `{"data": value}` (https://github.com/NervJS/taro/blob/main/packages/taro-h5/src/api/storage/index.ts):
 * an origin that ran `platform: Taro` before reads the same records. Ours never start that way.
 */
function unwrap(v: any): any {
  if (typeof v === 'string' && v.slice(0, 8) === '{"data":') {
    try {
      const d = JSON.parse(v).data
      if (typeof d === 'string') return d
    } catch {}
  }
  return v
}

/**
 * A Web Storage (`localStorage` by default) as a `Storage`; `QuotaExceededError` becomes `STORAGE_FULL`.
 * The same object for the same Web Storage.
 */
export function localStorageStorage(ls: any = root().localStorage): Storage {
  return storageOf(ls, () => wrap(ls))
}

function wrap(ls: any): Storage {
  return makeStorage(
    (k) => unwrap(ls.getItem(k)),
    (k, v) => ls.setItem(k, v),
    (k) => ls.removeItem(k),
    () => {
      const keys: string[] = []
      for (let i = 0; i < ls.length; i++) keys.push(ls.key(i))
      return keys
    },
  )
}

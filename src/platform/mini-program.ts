import { MpbusError } from '../errors'
// The mini program build (miniprogram_dist) swaps alipay.ts for alipay.stub.ts: no dialect, `unwrap` reads `data`.
import { alipayDialect, unwrap } from './alipay'
import type { Guard } from './shared'
import { guard, makeStorage, miniApp, miniHide, miniNetwork, sendTask } from './shared'
import type { ConnectOptions, Platform, Socket, SocketListeners } from './types'

/**
 * The SocketTask-style adapter: `wx`, `qq`, `swan`, `tt`, `uni` and `Taro` (docs/platforms.md).
 * Pass the API object itself: `miniProgramPlatform(wx)`, `miniProgramPlatform(Taro, 'taro')`.
 *
 * The name `'my'` selects Alipay's dialect (what `alipayPlatform(my)` does, alipay.ts): `connectSocket({multiple:
 * true})` gives a SocketTask; an old base library, or app.json's `connectSocketDefaultMultiple` off,
 * gives nothing and only the one global socket (docs/platforms.md). Storage takes objects and
 * reports failures in its return value (docs/platforms.md, Alipay).
 */
export function miniProgramPlatform(api: any, name = 'wx'): Platform {
  const alipay = name === 'my' ? alipayDialect(api) : undefined
  // Storage calls: `(key, data)`, or Alipay's `({key, data})`.
  const store = alipay ? alipay.store : (method: string, key: string, data?: string) => api[method](key, data)
  return {
    name,
    connect(url: string, listeners: SocketListeners, options?: ConnectOptions): Socket {
      const g = guard(listeners)
      if (alipay) alipay.reset()
      let task: any
      // uni-app returns a task only when a callback is passed (docs/platforms.md), and a refused
      // connect (wx: domain not allowed, suspended app) may report only through `fail`.
      // `multiple` is left out (undefined) for the others: uni-app passes it through to Alipay.
      const res = api.connectSocket({
        url,
        multiple: alipay && true,
        // Documented on wx ≥ 2.10.0 (ignored before), Alipay and tt (docs/platforms.md).
        timeout: /^(wx|my|tt)$/.test(name) && options ? options.timeout : undefined,
        fail: g.error,
      })
      if (res && typeof res.then === 'function') {
        // Taro: a Promise that resolves after the native `success` (docs/platforms.md),
        // so `onOpen` may already have fired. Taro's typings declare `readyState` (unlike wx,
        // where it is internal: docs/platforms.md, WeChat), so only here it tells whether the open (1) or close (3) was missed.
        // Without it the first frame stands in for `onOpen` (see `guard`), and the caller's
        // connect timeout covers the rest. No task at all (Taro on Alipay, docs/platforms.md) is an error at once.
        res
          .then((t: any) => {
            task = t
            attach(t, g)
            if (g.done()) closeTask(t, g)
            else if (t.readyState === 1) g.open()
            else if (t.readyState === 3) g.close({ code: 1006 })
          })
          .catch(g.error)
      } else if (res) {
        task = res
        // Synchronously, before returning: WeChat may miss `onOpen` otherwise (docs/platforms.md).
        attach(task, g)
      } else if (alipay) {
        return alipay.fallback(g)
      } else {
        throw new MpbusError('SOCKET_ERROR', 'no SocketTask')
      }
      return {
        send: (d, done) => sendTask(task, d, done, alipay && alipay.base64),
        close: (code, reason) => closeTask(task, g, code, reason),
      }
    },
    storage: api.setStorageSync
      ? makeStorage(
          (key) => store('getStorageSync', key),
          // wx throws when full, Alipay returns its failures (docs/platforms.md): `makeStorage` reads both.
          (key, value) => store('setStorageSync', key, value),
          (key) => store('removeStorageSync', key),
          () => api.getStorageInfoSync().keys,
        )
      : undefined,
    watchNetwork: miniNetwork(api),
    watchApp: miniApp(api, name),
    watchHide: miniHide(api, name),
  }
}

/**
 * Alipay (`my`): the SocketTask adapter in Alipay's dialect (`multiple: true`, the global socket
 * when no task comes, object-form storage: see `miniProgramPlatform` and alipay.ts).
 */
export function alipayPlatform(my: any): Platform {
  return miniProgramPlatform(my, 'my')
}

/**
 * Detaches, then closes a SocketTask. `task.close` may throw: the platform already dropped the task,
 * or there is none yet (Taro's is still pending: it is closed when it arrives). Nobody listens any more.
 */
function closeTask(task: any, g: Guard, code = 1000, reason?: string): void {
  g.detach()
  try {
    task.close({ code, reason })
  } catch {}
}

/**
 * Attaches the four SocketTask listeners at once. A task given up on while connecting that opens
 * later is closed again: WeChat and Baidu document that a close before open does not close
 * (docs/platforms.md), and such a task would hold one of the few sockets the platform allows.
 */
function attach(task: any, g: Guard): void {
  task.onOpen(() => (g.done() ? closeTask(task, g) : g.open()))
  task.onMessage((r: any) => g.message(unwrap(r)))
  task.onClose(g.close)
  task.onError(g.error)
}

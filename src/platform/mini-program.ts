import { MpbusError } from '../errors'
import type { Guard } from './shared'
import {
  attach,
  closeTask,
  guard,
  makeStorage,
  miniApp,
  miniHide,
  miniNetwork,
  sendTask,
  unwrap,
} from './shared'
import type { ConnectOptions, Platform, Socket, SocketListeners } from './types'

/**
 * The SocketTask-style adapter: `wx`, `qq`, `swan`, `tt`, `uni` and `Taro` (docs/platforms.md).
 * Pass the API object itself: `miniProgramPlatform(wx)`, `miniProgramPlatform(Taro, 'taro')`.
 *
 * The name `'my'` selects Alipay's dialect (what `alipayPlatform(my)` does): `connectSocket({multiple:
 * true})` gives a SocketTask; an old base library, or app.json's `connectSocketDefaultMultiple` off,
 * gives nothing and only the one global socket (docs/platforms.md). Storage takes objects and
 * reports failures in its return value (docs/platforms.md, Alipay).
 */
export function miniProgramPlatform(api: any, name = 'wx'): Platform {
  const alipay = name === 'my'
  // Alipay's global socket: its guard, once the fallback is in use, whether the platform reported
  // its close, and how many close events the global sockets we closed still owe: those must not
  // reach the next socket's handlers. One that failed is closed too, and owes its close: a WebSocket
  // reports its close after its error.
  let cur: Guard | undefined
  let ended = false
  let owed = 0
  const release = () => {
    if (cur && !ended) {
      cur.detach()
      ended = true
      owed++
      try {
        api.closeSocket()
      } catch {}
    }
  }
  // Storage calls: `(key, data)`, or Alipay's `({key, data})`.
  const store = (method: string, key: string, data?: string) =>
    alipay ? api[method]({ key, data }) : api[method](key, data)
  return {
    name,
    connect(url: string, listeners: SocketListeners, options?: ConnectOptions): Socket {
      const g = guard(listeners)
      if (cur) {
        // One global socket only: close the previous one and drop its handlers first, as
        // websocket-heartbeat-miniprogram does
        // (https://github.com/zimv/websocket-heartbeat-miniprogram).
        release()
        for (const n of ['Open', 'Message', 'Error', 'Close']) api['offSocket' + n]()
      }
      let task: any
      // uni-app returns a task only when a callback is passed (docs/platforms.md), and a refused
      // connect (wx: domain not allowed, suspended app) may report only through `fail`.
      // `multiple` is left out (undefined) for the others: uni-app passes it through to Alipay.
      const res = api.connectSocket({
        url,
        multiple: alipay || undefined,
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
        // The fallback. Handlers go on synchronously, before any event can come.
        cur = g
        ended = false
        api.onSocketOpen(() => {
          // Whether a closed global socket reports its close at all is undocumented (docs/platforms.md):
          // one still owed when the new socket opens is not coming, and must not eat the new one's.
          owed = 0
          g.open()
        })
        api.onSocketMessage((r: any) => g.message(unwrap(r)))
        api.onSocketError(g.error)
        api.onSocketClose((r: any) => {
          if (owed) owed--
          else {
            ended = true
            g.close(r)
          }
        })
        return {
          send: (d, done) => sendTask({ send: (o: any) => api.sendSocketMessage(o) }, d, done, true),
          // A socket replaced by a newer connect is already released.
          close: () => g === cur && release(),
        }
      } else {
        throw new MpbusError('SOCKET_ERROR', 'no SocketTask')
      }
      return {
        send: (d, done) => sendTask(task, d, done, alipay),
        close: (code, reason) => closeTask(task, g, code, reason),
      }
    },
    storage: api.setStorageSync
      ? makeStorage(
          (key) => {
            const v = store('getStorageSync', key)
            // Some Alipay clients put the value under `APDataStorage` (Taro reads both: docs/platforms.md).
            return alipay ? (v.data == null ? v.APDataStorage : v.data) : v
          },
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

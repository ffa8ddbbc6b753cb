import { MpbusError } from '../errors'
import { attach, closeTask, guard, makeStorage, miniApp, miniNetwork, sendTask, socketError } from './shared'
import type { Platform, Socket, SocketListeners } from './types'

/**
 * The SocketTask-style adapter: `wx`, `qq`, `swan`, `tt`, `uni` and `Taro` (platform-facts §1, §3).
 * Pass the API object itself: `miniProgramPlatform(wx)`, `miniProgramPlatform(Taro, 'taro')`.
 */
export function miniProgramPlatform(api: any, name = 'wx'): Platform {
  return {
    name,
    connect(url: string, listeners: SocketListeners): Socket {
      const g = guard(listeners)
      let task: any
      // uni-app returns a task only when a callback is passed (platform-facts §3), and a
      // refused connect (wx: domain not allowed, suspended app) may report only through `fail`.
      const res = api.connectSocket({ url, fail: (e: unknown) => g.error(socketError(e)) })
      if (res && typeof res.then === 'function') {
        // Taro: a Promise that resolves after the native `success` (platform-facts §3, Taro row),
        // so `onOpen` may already have fired. Taro's typings declare `readyState` (unlike wx,
        // where it is internal: §1), so only here it tells whether the open (1) or close (3) was missed.
        // Without it the first frame stands in for `onOpen` (see `guard`), and the caller's
        // connect timeout covers the rest.
        res.then(
          (t: any) => {
            task = t
            attach(t, g, data)
            if (g.done()) closeTask(t, g)
            else if (t.readyState === 1) g.open()
            else if (t.readyState === 3) g.close({ code: 1006, reason: '' })
          },
          (e: unknown) => g.error(socketError(e)),
        )
      } else {
        if (!res) throw new MpbusError('SOCKET_ERROR', 'no SocketTask')
        task = res
        // Synchronously, before returning: WeChat may miss `onOpen` otherwise (platform-facts §1).
        attach(task, g, data)
      }
      return {
        send: (d, done) => sendTask(task, d, done),
        // A Taro task still pending is closed by the `then` above when it arrives.
        close: (code, reason) => closeTask(task, g, code, reason),
      }
    },
    storage: api.setStorageSync
      ? makeStorage(
          (k) => api.getStorageSync(k),
          // Throws when full (platform-facts §4): `makeStorage` maps it to STORAGE_FULL.
          (k, v) => api.setStorageSync(k, v),
          (k) => api.removeStorageSync(k),
          () => api.getStorageInfoSync().keys,
        )
      : undefined,
    watchNetwork: miniNetwork(api),
    watchApp: miniApp(api),
  }
}

const data = (r: any) => r.data

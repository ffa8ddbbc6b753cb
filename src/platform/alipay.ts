import type { Guard } from './shared'
import {
  attach,
  closeInfo,
  closeTask,
  guard,
  makeStorage,
  miniApp,
  miniNetwork,
  sendTask,
  socketError,
  storageError,
} from './shared'
import type { Platform, Socket, SocketData, SocketListeners } from './types'

/**
 * Alipay (`my`): `connectSocket({multiple: true})` gives a SocketTask; an old base library, or
 * app.json's `connectSocketDefaultMultiple` off, gives nothing and only the one global socket
 * (platform-facts §2). Storage takes objects and reports failures in its return value.
 */
export function alipayPlatform(my: any): Platform {
  // The global socket's guard, once the fallback is in use, and how many close events the
  // global sockets we closed still owe: those must not reach the next socket's handlers.
  let cur: Guard | undefined
  let owed = 0
  const release = () => {
    if (cur && !cur.done()) {
      cur.detach()
      owed++
      try {
        my.closeSocket()
      } catch {}
    }
  }
  return {
    name: 'my',
    connect(url: string, listeners: SocketListeners): Socket {
      const g = guard(listeners)
      if (cur) {
        // One global socket only: close the previous one and drop its handlers first, as
        // websocket-heartbeat-miniprogram does (anchors-heartbeat §2).
        release()
        for (const n of ['Open', 'Message', 'Error', 'Close']) my['offSocket' + n]()
      }
      const task = my.connectSocket({ url, multiple: true, fail: (e: unknown) => g.error(socketError(e)) })
      if (task) {
        attach(task, g, unwrap)
        return {
          send: (d, done) => sendTask(task, d, done),
          close: (code, reason) => closeTask(task, g, code, reason),
        }
      }
      // The fallback. Handlers go on synchronously, before any event can come.
      cur = g
      my.onSocketOpen(() => {
        // Whether a closed global socket reports its close at all is undocumented (platform-facts §2):
        // one still owed when the new socket opens is not coming, and must not eat the new one's.
        owed = 0
        g.open()
      })
      my.onSocketMessage((r: any) => g.message(unwrap(r)))
      my.onSocketError((e: unknown) => g.error(socketError(e)))
      my.onSocketClose((r: any) => {
        if (owed) owed--
        else g.close(closeInfo(r))
      })
      return {
        send: (d, done) => sendTask({ send: (o: any) => my.sendSocketMessage(o) }, d, done),
        // A socket replaced by a newer connect is already released.
        close: () => (g === cur ? release() : g.detach()),
      }
    },
    storage: makeStorage(
      (key) => my.getStorageSync({ key }).data,
      (key, data) => {
        const r = my.setStorageSync({ key, data })
        // Failures come back in the result: 12 is the 10 MB total, 14 the 200 KB key (platform-facts §4).
        if (r && (r.success === false || r.error)) throw storageError(r, r.error === 12 || r.error === 14)
      },
      (key) => my.removeStorageSync({ key }),
      () => my.getStorageInfoSync().keys,
    ),
    watchNetwork: miniNetwork(my),
    watchApp: miniApp(my),
  }
}

/**
 * `{data, isBuffer}` as the docs say, or `{data: {data, isBuffer}}` as the typings say
 * (platform-facts §2: unverified on devices, so both); `isBuffer` data is base64.
 */
export function unwrap(r: any): SocketData {
  let d = r?.data
  if (d != null && d.data != null) {
    r = d
    d = d.data
  }
  return r.isBuffer && typeof d === 'string' ? decodeBase64(d) : d
}

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** Base64 (padded or not, whitespace ignored) to bytes: mini programs have no `atob` or `Buffer`. */
export function decodeBase64(s: string): ArrayBuffer {
  s = s.replace(/[^A-Za-z0-9+/]/g, '')
  const out = new Uint8Array((s.length * 3) >> 2)
  let bits = 0
  let n = 0
  let j = 0
  for (let i = 0; i < s.length; i++) {
    // Only the low n + 6 bits matter; `<<` drops the rest.
    bits = (bits << 6) | B64.indexOf(s.charAt(i))
    n += 6
    if (n >= 8) {
      n -= 8
      out[j++] = bits >> n
    }
  }
  return out.buffer
}

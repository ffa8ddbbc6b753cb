/**
 * What Alipay (`my`) does differently from the wx family, in one place (docs/platforms.md): its
 * message shapes (nested data, base64 binary), its single global socket when `connectSocket` gives
 * no task, and its object-form storage. `miniProgramPlatform(my, 'my')` (and `alipayPlatform(my)`)
 * plug this dialect into the SocketTask adapter.
 *
 * The mini program build (miniprogram_dist, read by WeChat, QQ and the other platforms whose tools
 * copy the `miniprogram` folder) swaps this module for alipay.stub.ts: Alipay itself reads mpbus
 * from node_modules through `main`, so none of this is shipped where it can never run.
 */
import type { Guard } from './shared'
import { sendTask } from './shared'
import type { SocketData } from './types'

/** The parts of the SocketTask adapter that Alipay replaces (see mini-program.ts). */
export interface Dialect {
  /** Before every connect: releases the global socket of the previous one, if it used it. */
  reset(): void
  /** `connectSocket` gave no task: the global socket, its handlers on before any event can come. */
  fallback(g: Guard): { send(data: SocketData, done?: (e?: any) => void): void; close(): void }
  /** A storage call: `({key, data})`, the value read from `data` or `APDataStorage`. */
  store(method: string, key: string, data?: string): any
  /** Binary frames go as base64 strings with `isBuffer`: Alipay's `send` takes strings only. */
  base64(data: ArrayBuffer): string
}

/** The Alipay dialect for the API object `api` (one per platform: it holds the global socket's state). */
export function alipayDialect(api: any): Dialect {
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
  return {
    reset() {
      if (cur) {
        // One global socket only: close the previous one and drop its handlers first, as
        // websocket-heartbeat-miniprogram does
        // (https://github.com/zimv/websocket-heartbeat-miniprogram).
        release()
        for (const n of ['Open', 'Message', 'Error', 'Close']) api['offSocket' + n]()
      }
    },
    fallback(g) {
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
        send: (d, done) => sendTask({ send: (o: any) => api.sendSocketMessage(o) }, d, done, encodeBase64),
        // A socket replaced by a newer connect is already released.
        close: () => g === cur && release(),
      }
    },
    store(method, key, data) {
      const v = api[method]({ key, data })
      // Some Alipay clients put the value under `APDataStorage` (Taro reads both: docs/platforms.md).
      // Writes return their failures (`{success: false}`, `{error}`): `makeStorage` reads them.
      return method === 'getStorageSync' ? (v.data == null ? v.APDataStorage : v.data) : v
    },
    base64: encodeBase64,
  }
}

/**
 * A message event's data: `{data}` (wx family, and Alipay as its docs say) or `{data: {data, isBuffer}}`
 * (Alipay as its typings say: docs/platforms.md, unverified on devices, so both); `isBuffer` data is base64.
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

/** Bytes to padded base64 (the inverse of `decodeBase64`). */
export function encodeBase64(data: ArrayBuffer): string {
  let s = ''
  let bits = 0
  let n = 0
  for (const b of new Uint8Array(data)) {
    // As in `decodeBase64`: only the low n + 8 bits matter.
    bits = (bits << 8) | b
    n += 8
    while (n >= 6) {
      n -= 6
      s += B64[(bits >> n) & 63]
    }
  }
  if (n) s += B64[(bits << (6 - n)) & 63]
  return s + '=='.slice(0, -s.length & 3)
}

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

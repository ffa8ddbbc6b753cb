import { MpbusError } from '../errors'
import { alipayPlatform } from './alipay'
import { miniProgramPlatform } from './mini-program'
import type { Platform } from './types'
import { root, webSocketPlatform } from './websocket'

declare const my: any
declare const tt: any
declare const swan: any
declare const qq: any
declare const wx: any
declare const uni: any
declare const Taro: any

/**
 * The mini program globals in the order they are tried, each read through `typeof` so an
 * undeclared one never throws (in a mini program they are variables, not always on `globalThis`).
 * The native APIs come first and `wx` last of them: other platforms and transpilers define a
 * `wx` shim for WeChat code (QQ aliases it; antmove-style converters shim it on Alipay), and the
 * native object is the faithful one. The framework wrappers `uni` and `Taro` come after every
 * native global because they wrap it: on WeChat, `wx` attaches listeners synchronously where
 * Taro's Promise attaches them late (platform-facts §3).
 */
function globals(): [string, any][] {
  return [
    ['my', typeof my !== 'undefined' && my],
    ['tt', typeof tt !== 'undefined' && tt],
    ['swan', typeof swan !== 'undefined' && swan],
    ['qq', typeof qq !== 'undefined' && qq],
    ['wx', typeof wx !== 'undefined' && wx],
    ['uni', typeof uni !== 'undefined' && uni],
    ['taro', typeof Taro !== 'undefined' && Taro],
  ]
}

/**
 * A `Platform` as it is, or the adapter for a platform's API object (`wx`, `my`, ...).
 * Alipay is told by identity with the global `my`, else by `offSocketClose`, which only the Alipay
 * family has among the raw APIs (websocket-heartbeat-miniprogram's test, anchors-heartbeat §2);
 * uni (`$on`) and Taro (`getEnv`) may forward it on Alipay but speak the wx dialect themselves.
 */
export function toPlatform(value: any): Platform {
  if (value && typeof value.connect === 'function') return value
  if (!value || typeof value.connectSocket !== 'function') {
    throw new MpbusError('NO_PLATFORM', 'not a platform')
  }
  let name = 'wx'
  for (const [n, api] of globals()) if (api === value) name = n
  return name === 'my' || (name === 'wx' && value.offSocketClose && !value.$on && !value.getEnv)
    ? alipayPlatform(value)
    : miniProgramPlatform(value, name)
}

/** The first mini program global with `connectSocket`, else the browser's `WebSocket`. */
export function detectPlatform(): Platform {
  for (const [, api] of globals()) if (api && typeof api.connectSocket === 'function') return toPlatform(api)
  if (root().WebSocket) return webSocketPlatform()
  throw new MpbusError('NO_PLATFORM', 'no platform found')
}

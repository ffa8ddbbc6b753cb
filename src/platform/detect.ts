import { MpbusError } from '../errors'
import { miniProgramPlatform } from './mini-program'
import type { Platform } from './types'
// The mini program build (miniprogram_dist) swaps this for websocket.stub.ts.
import { isWebBuild, webSocketPlatform } from './websocket'

declare const my: any
declare const tt: any
declare const swan: any
declare const qq: any
declare const wx: any
declare const uni: any
declare const Taro: any
declare const WebSocket: unknown

/**
 * The mini program globals in the order they are tried, each read only when asked: in a mini
 * program they are variables, not always on `globalThis`, and reading an undeclared one throws.
 * The native APIs come first and `wx` last of them: other platforms and transpilers define a
 * `wx` shim for WeChat code (QQ aliases it; antmove-style converters shim it on Alipay), and the
 * native object is the faithful one. The framework wrappers `uni` and `Taro` come after every
 * native global because they wrap it: on WeChat, `wx` attaches listeners synchronously where
 * Taro's Promise attaches them late (docs/platforms.md).
 */
const GLOBALS: Record<string, () => any> = {
  my: () => my,
  tt: () => tt,
  swan: () => swan,
  qq: () => qq,
  wx: () => wx,
  uni: () => uni,
  taro: () => Taro,
}

/** The global called `name`, or undefined where it is not declared. */
function read(name: string): any {
  try {
    return GLOBALS[name]!()
  } catch {}
}

/**
 * A `Platform` as it is, or the adapter for a platform's API object (`wx`, `my`, ...).
 * Alipay is told by identity with the global `my`, else by `offSocketClose`, which only the Alipay
 * family has among the raw APIs (the test in https://github.com/zimv/websocket-heartbeat-miniprogram);
 * uni (`$on`) and Taro (`getEnv`) may forward it on Alipay but speak the wx dialect themselves.
 */
export function toPlatform(value: any): Platform {
  if (value && typeof value.connect === 'function') return value
  if (value && isWebBuild(value, read('uni'))) return webSocketPlatform()
  if (!value || typeof value.connectSocket !== 'function') {
    throw new MpbusError('NO_PLATFORM', 'not a platform')
  }
  let name = ''
  for (const n in GLOBALS) if (read(n) === value) name = n
  // uni-app and Taro compiled to Alipay: without `multiple: true` uni's connect gives no task, and
  // Taro rebinds the task onto the global `my.onSocket*` (docs/platforms.md). The native `my` is sound.
  const my = read('my')
  if (/^(uni|taro)$/.test(name) && my && my.connectSocket) {
    value = my
    name = 'my'
  }
  // The name 'my' selects Alipay's dialect; the heuristic only for an object no global is.
  return miniProgramPlatform(
    value,
    name || (value.offSocketClose && !value.$on && !value.getEnv ? 'my' : 'wx'),
  )
}

/** The first mini program global with `connectSocket`, else the browser's `WebSocket`. */
export function detectPlatform(): Platform {
  for (const n in GLOBALS) {
    const api = read(n)
    if (api && typeof api.connectSocket === 'function') return toPlatform(api)
  }
  if (typeof WebSocket !== 'undefined') return webSocketPlatform()
  throw new MpbusError(
    'NO_PLATFORM',
    'no platform: pass platform: wx (my, tt, swan, qq, uni, Taro), or webSocketPlatform(WebSocket) of ws in Node',
  )
}

/**
 * Stands in for websocket.ts in the mini program build (miniprogram_dist): mini programs reach
 * sockets and storage through their own API (`wx`, `my`, ...), never through a browser `WebSocket`
 * or `localStorage`, so the build swaps this module in and ships neither adapter, nor the check for
 * Taro's and uni-app's web builds (no mini program is one).
 * Same exports and signatures as websocket.ts.
 */
import { MpbusError } from '../errors'
import type { Platform, Storage } from './types'

const missing = (): never => {
  throw new MpbusError('NO_PLATFORM', 'no WebSocket in mini programs: pass platform')
}

export function webSocketPlatform(_WebSocketCtor?: any, _storage?: Storage): Platform {
  return missing()
}

export function localStorageStorage(_ls?: any): Storage {
  return missing()
}

export function isWebBuild(_value: any, _uni: any): boolean {
  return false
}

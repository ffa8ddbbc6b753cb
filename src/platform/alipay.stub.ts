/**
 * Stands in for alipay.ts in the mini program build (miniprogram_dist). That folder is read by the
 * platforms whose tools copy the `miniprogram` folder (WeChat's and QQ's "Build npm", Douyin's npm
 * build), all of the wx family; Alipay reads mpbus from node_modules through `main` and gets the
 * whole of alipay.ts there. So the wx family ships no Alipay code: a message is `{data}`, binary
 * is never base64, and asking for the Alipay dialect here says where it is.
 * Same exports and signatures as alipay.ts.
 */
import { MpbusError } from '../errors'
import type { Dialect } from './alipay'
import type { SocketData } from './types'

export type { Dialect }

const missing = (): never => {
  throw new MpbusError('NO_PLATFORM', 'Alipay: use mpbus from node_modules, not miniprogram_dist')
}

export function alipayDialect(_api: any): Dialect {
  return missing()
}

export const unwrap = (r: any): SocketData => r.data

export const encodeBase64 = (_data: ArrayBuffer): string => missing()

export const decodeBase64 = (_s: string): ArrayBuffer => missing()

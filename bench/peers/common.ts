// What every part of the peers bench shares: the root's `ws` (the one mpbus and the raw baseline
// run on, not the copy socket.io brings into bench/peers/node_modules), the message, medians.
import { createRequire } from 'node:module'
import type * as WsModule from 'ws'

const rootRequire = createRequire(new URL('../../package.json', import.meta.url))
const ws = rootRequire('ws') as typeof WsModule
export const WebSocket = ws.WebSocket
export const WebSocketServer = ws.WebSocketServer
export const createWebSocketStream = ws.createWebSocketStream
export type WebSocket = WsModule.WebSocket

/** The payload every client sends: 100 bytes of JSON with a channel tag and a sequence number. */
export const TEXT = 'x'.repeat(73)
export const payload = (c: string, n: number) => ({ c, n, text: TEXT })
/** What the raw clients send: the frame mpbus sends for the same payload, with an id of the same length. */
export const frame = (c: string, n: number) =>
  JSON.stringify({ Operator: 'Chat', ...payload(c, n), MsgId: `${c}-${n}`.padEnd(21, '_') })

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export async function waitFor(check: () => boolean, timeoutMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) return false
    await sleep(1)
  }
  return true
}

export function median(values: number[]): number {
  const sorted = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (!sorted.length) return Number.NaN
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

export const round = (value: number, digits = 2) => +value.toFixed(digits)

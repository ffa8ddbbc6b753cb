/**
 * How a frame leaves a `ws` socket of the server. For a client whose login said it takes several
 * frames in one message (`Batch`, docs/protocol.md), the frames of one macrotask (a replay, a
 * burst of pushes, acks and replies among them) leave as one message, a JSON array, of at most
 * the bytes it named: the client stores its positions once per message, not once per frame.
 * Otherwise each frame is its own message, as for every client that names no `Batch`.
 */
import type { WebSocket } from 'ws'
import type { Frame } from '../protocol'
import { corked, corkTask } from '../task'

/** A batch is never larger than this, whatever the client takes: one JSON.parse on a slow phone. */
const MOST = 256 * 1024

/** A batching socket's frames waiting for the end of the macrotask, with their bytes and limit. */
interface Waiting {
  max: number
  frames: string[]
  bytes: number
  timer: ReturnType<typeof setImmediate> | undefined
}

const batching = new WeakMap<WebSocket, Waiting>()

/** What a socket may hold unsent (`maxBufferedBytes`), and what happens to it past that. */
const limits = new WeakMap<WebSocket, { bytes: number; over: (unsent: number) => void }>()

/**
 * From now on, a frame of any kind (a push, an ack, a reply) that finds more than `bytes` unsent
 * on `ws` from earlier tasks is not sent: `over` runs instead, once.
 */
export function limit(ws: WebSocket, bytes: number, over: (unsent: number) => void): void {
  if (bytes < Number.POSITIVE_INFINITY) limits.set(ws, { bytes, over })
}

function write(ws: WebSocket, data: string): void {
  if (ws.readyState !== ws.OPEN) return
  const bound = limits.get(ws)
  // Measured before this task corks the socket: a burst of one task is not a slow reader.
  if (bound && !corked(ws) && ws.bufferedAmount > bound.bytes) {
    limits.delete(ws)
    bound.over(ws.bufferedAmount)
    return
  }
  corkTask(ws)
  ws.send(data)
}

/**
 * Sends a frame (or its JSON, already made) if the socket is open; the frames of one task go out
 * in one write (src/task.ts), and to a batching client in one message. A socket that closed
 * meanwhile gets nothing: its client resumes.
 */
export function send(ws: WebSocket, frame: Frame | string): void {
  const json = typeof frame === 'string' ? frame : JSON.stringify(frame)
  const w = batching.get(ws)
  if (!w) {
    write(ws, json)
    return
  }
  // Bytes as the client counts them (UTF-8), with a comma each and the brackets.
  const size = Buffer.byteLength(json) + 1
  if (w.frames.length && w.bytes + size > w.max) flush(ws)
  w.frames.push(json)
  w.bytes += size
  if (!w.timer) w.timer = setImmediate(flush, ws)
}

/** From now on, the frames of one macrotask go to `ws` as one message of at most `bytes` (0: one frame each). */
export function batch(ws: WebSocket, bytes: number): void {
  flush(ws)
  if (bytes > 0) batching.set(ws, { max: Math.min(bytes, MOST), frames: [], bytes: 2, timer: undefined })
  else batching.delete(ws)
}

/** Sends what waits for the end of the macrotask, now (before a close, which would drop it). */
export function flush(ws: WebSocket): void {
  const w = batching.get(ws)
  if (!w) return
  clearImmediate(w.timer)
  w.timer = undefined
  const frames = w.frames
  w.frames = []
  w.bytes = 2
  if (frames.length) write(ws, frames.length === 1 ? frames[0]! : `[${frames.join(',')}]`)
}

/** Sends what waits, then closes. */
export function close(ws: WebSocket, code: number, reason: string): void {
  flush(ws)
  ws.close(code, reason)
}

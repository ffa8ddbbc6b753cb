/**
 * What a connection sends, in order. For a client whose login said it takes several frames in
 * one message (`Batch`, docs/protocol.md), the frames of one macrotask (a replay, a burst of
 * pushes, acks and replies among them) leave as one message, a JSON array, of at most the bytes
 * it named: the client stores its positions once per message, not once per frame. Otherwise
 * each frame is its own message, as for every client that names no `Batch`.
 */
import type { WebSocket } from 'ws'
import { corkTask } from '../task'

/** A batch is never larger than this, whatever the client takes: one JSON.parse on a slow phone. */
const MOST = 256 * 1024

export interface Outlet {
  /** Sends a frame (its JSON), now or at the end of the macrotask with the others of a batch. */
  send(json: string): void
  /** From now on, frames of one macrotask go as one message of at most `bytes` (0: one frame each). */
  batch(bytes: number): void
  /** Sends what waits, now (before a close, which would drop it). */
  flush(): void
  /** Sends what waits, then closes. */
  close(code: number, reason: string): void
}

const outlets = new WeakMap<WebSocket, Outlet>()

/** The outlet of a server socket, made at its first frame: every frame to it goes through it. */
export function outletOf(ws: WebSocket): Outlet {
  let outlet = outlets.get(ws)
  if (!outlet) outlets.set(ws, (outlet = createOutlet(ws)))
  return outlet
}

function createOutlet(ws: WebSocket): Outlet {
  let max = 0
  let waiting: string[] = []
  let bytes = 2
  let timer: ReturnType<typeof setImmediate> | undefined

  function write(data: string): void {
    if (ws.readyState !== ws.OPEN) return
    corkTask(ws)
    ws.send(data)
  }

  function flush(): void {
    if (timer) clearImmediate(timer)
    timer = undefined
    const frames = waiting
    waiting = []
    bytes = 2
    if (frames.length) write(frames.length === 1 ? frames[0]! : `[${frames.join(',')}]`)
  }

  return {
    send(json) {
      if (!max) return write(json)
      // Bytes as the client counts them (UTF-8), with a comma each and the brackets.
      const size = Buffer.byteLength(json) + 1
      if (waiting.length && bytes + size > max) flush()
      waiting.push(json)
      bytes += size
      if (!timer) timer = setImmediate(flush)
    },
    batch(limit) {
      flush()
      max = Math.min(limit, MOST)
    },
    flush,
    close(code, reason) {
      flush()
      ws.close(code, reason)
    },
  }
}

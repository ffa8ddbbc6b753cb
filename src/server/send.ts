/** How a frame leaves a `ws` socket of the server. */
import type { WebSocket } from 'ws'
import type { Frame } from '../protocol'
import { corkTask } from '../task'

/**
 * Sends a frame (or its JSON, already made) if the socket is open; the frames of one task go out
 * in one write (src/task.ts). A socket that closed meanwhile gets nothing: its client resumes.
 */
export function send(ws: WebSocket, frame: Frame | string): void {
  if (ws.readyState !== ws.OPEN) return
  corkTask(ws)
  ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
}

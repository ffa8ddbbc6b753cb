/**
 * Runs `fn` at the end of the current task, before the platform runs anything else (a timer, the
 * next event, the page going away): a microtask where there is one. Looked up at call time (fake
 * clocks replace it): old mini program clients have Promise but not queueMicrotask, nor globalThis.
 */
export function atTaskEnd(fn: () => void): void {
  const g: any = typeof globalThis !== 'undefined' ? globalThis : {}
  if (typeof g.queueMicrotask === 'function') g.queueMicrotask(fn)
  else if (typeof Promise !== 'undefined') Promise.resolve().then(fn)
  else setTimeout(fn, 0)
}

/**
 * Corks the TCP socket of a Node `ws` WebSocket until the end of the task, when it is not corked
 * already: `ws` writes each frame with a system call of its own, most of the cost of a send, and
 * the frames of one task then go in one (https://nodejs.org/api/stream.html#writablecork).
 * Browsers and mini programs (no `_socket`) buffer frames themselves: nothing to do.
 */
export function corkTask(ws: any): void {
  const tcp = ws._socket
  if (tcp && typeof tcp.cork === 'function' && !tcp.writableCorked) {
    tcp.cork()
    // A Promise, not `atTaskEnd`: a fake clock that takes over `queueMicrotask` (tests) must not
    // hold frames back. Node has Promises, and only Node's `ws` has a `_socket`.
    Promise.resolve().then(() => uncork(ws))
  }
}

/** Whether this task has corked the socket already (what it sent since is still held back). */
export const corked = (ws: any): boolean => !!(ws._socket && ws._socket.writableCorked)

/** Writes what `corkTask` holds back, now: before a `terminate()`, which would discard it. */
export function uncork(ws: any): void {
  const tcp = ws._socket
  while (tcp && tcp.writableCorked) tcp.uncork()
}

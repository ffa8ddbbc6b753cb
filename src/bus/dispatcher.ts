import { MpbusError } from '../errors'
import type { FrameOf } from '../protocol'

/** An inbound frame: the decoded JSON object, operator field included. */
export type Frame<P = Record<string, unknown>> = FrameOf<P>
export type Handler<P = any> = (frame: Frame<P>) => void

interface Entry<T> {
  fn: (event: T) => void
  live: boolean
}

/**
 * Routes frames by operator to handlers kept in a `Map`, so an operator named
 * `__proto__`, `constructor` or `toString` is an ordinary key, never a path into
 * an object (a plain object of handlers loses exactly those).
 *
 * Handlers of one operator run in the order they were added, then the `'*'` ones.
 * While a frame is dispatched, a handler added meanwhile waits for the next frame,
 * and a handler removed meanwhile is not called any more, even for this frame:
 * a page unloaded by an earlier handler must not receive it.
 * A handler that throws is reported through `report` and the others still run.
 * The bus's lifecycle events ride on one too, so their listeners are isolated alike.
 */
export function createDispatcher<T = Frame>(report: (error: MpbusError) => void) {
  const handlers = new Map<string, Entry<T>[]>()

  function on(op: string, fn: (event: T) => void): () => void {
    const entry: Entry<T> = { fn, live: true }
    // Copy on write: a dispatch in progress keeps iterating its own snapshot.
    handlers.set(op, (handlers.get(op) || []).concat(entry))
    return () => {
      if (!entry.live) return
      entry.live = false
      const rest = handlers.get(op)!.filter((e) => e !== entry)
      if (rest.length) handlers.set(op, rest)
      else handlers.delete(op)
    }
  }

  function call(entries: Entry<T>[] | undefined, op: string, frame: T): void {
    if (!entries) return
    for (const entry of entries) {
      if (!entry.live) continue
      try {
        entry.fn(frame)
      } catch (e) {
        report(new MpbusError('HANDLER_ERROR', `a listener of '${op}' threw: ${String(e)}`, e))
      }
    }
  }

  /** Returns whether any handler (named or `'*'`) received the frame; an operator `*` reaches them once. */
  function dispatch(op: string, frame: T, wildcard = true): boolean {
    const named = handlers.get(op)
    const any = wildcard && op !== '*' ? handlers.get('*') : undefined
    call(named, op, frame)
    call(any, op, frame)
    return !!(named || any)
  }

  return { on, dispatch, has: (op: string) => handlers.has(op) }
}

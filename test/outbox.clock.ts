import { vi } from 'vitest'

/**
 * Fake timers that fake `queueMicrotask` too: the outbox commits at the end of the task in a
 * microtask, and `vi.runOnlyPendingTimers()` then runs that commit as it runs a timer.
 */
export function useOutboxClock(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'queueMicrotask'],
  })
}

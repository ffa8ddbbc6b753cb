// Waiting in tests, in one place. `until` polls on real time even while a test fakes timers: the
// node:timers exports and a `now` captured at import are not touched by vi.useFakeTimers. `tick`
// and `useOutboxClock` are for tests that run on the fake clock.
import { setImmediate as realSetImmediate, setTimeout as realSetTimeout } from 'node:timers'
import { vi } from 'vitest'

const now = performance.now.bind(performance)

/**
 * Waits real milliseconds. Not a stand-in for an event: a caller uses it only where real time must
 * pass (a real socket given time NOT to deliver something) and says why beside the call.
 */
export const sleep = (ms: number) => new Promise<void>((resolve) => realSetTimeout(resolve, ms))

/**
 * Polls `check` until it returns (or resolves to) something truthy, and returns that. Bytes on
 * loopback, a browser page or a Redis restart take real time; `timeout` only bounds a failure.
 * A check that returns a Promise (a page.evaluate) is polled every 25 ms, others every few ms.
 */
export async function until<T>(
  check: () => T | PromiseLike<T>,
  what = 'condition',
  timeout = 10_000,
  diagnose?: () => unknown,
): Promise<T> {
  const start = now()
  for (;;) {
    const result = check()
    const slow = typeof (result as PromiseLike<T> | undefined)?.then === 'function'
    const value = await result
    if (value) return value
    if (now() - start > timeout)
      throw new Error(`timed out waiting for ${what}${diagnose ? `: ${await diagnose()}` : ''}`)
    await new Promise((resolve) => realSetImmediate(resolve))
    await sleep(slow ? 25 : 2)
  }
}

/**
 * A fake clock that follows real time, so sockets, servers and timeouts keep working as they do,
 * and that a test can also move forward at once with `skip(ms)`: whatever a wrong rule would do in
 * that time (an attempt, a ping) is done now, so a check that nothing happened needs no real wait.
 * Call it before the code under test arms its timers; vi.useRealTimers() ends it.
 */
export function useSteppedClock(): void {
  vi.useFakeTimers({
    shouldAdvanceTime: true,
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'],
  })
}

/** Lets the event loop turn once (I/O, then timers due): a yield in a load loop, not a wait. */
export const nextTurn = () => new Promise<void>((resolve) => realSetImmediate(resolve))

/** On the stepped clock: moves it `ms` forward at once, running every timer due on the way. */
export const skip = (ms: number) => vi.advanceTimersByTimeAsync(ms)

/** On the fake clock: runs what is due now (timers at 0 ms, then the microtasks they queue). */
export const tick = () => vi.advanceTimersByTimeAsync(0)

/**
 * Fake timers that fake `queueMicrotask` too: the outbox commits at the end of the task in a
 * microtask, and `vi.runOnlyPendingTimers()` then runs that commit as it runs a timer.
 */
export function useOutboxClock(): void {
  vi.useFakeTimers({
    toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date', 'queueMicrotask'],
  })
}

/** Waiting in bench/nodes.ts: for a time, or until a count the bench watches is reached. */

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Resolves once `check()` holds (looked at every 5 ms); throws with `what()` past `ms`. */
export async function until(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what()}`)
    await sleep(5)
  }
}

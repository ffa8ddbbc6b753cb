/**
 * Outboxes in several contexts on one storage (browser tabs on one `localStorage`), told apart by
 * locks the contexts share (Web Locks: held until released or the page goes, closed or crashed,
 * with no lease to expire). Only the browser adapter imports this, so mini programs never ship it.
 * - Each outbox holds the lock of its own namespace for its whole life.
 * - The main namespace's lock is asked for without waiting: the answer decides where the outbox
 *   writes (src/outbox/owner.ts). Until it comes, `ns()` is undefined and the outbox stores what is sent in
 *   its scratch key.
 * - An orphan is a namespace whose lock is free: the adopter holds that lock until the orphan's
 *   keys are gone, so no two outboxes adopt it.
 * - An outbox that did not get the main lock waits for it, and adopts what the owner leaves as
 *   soon as it goes.
 */
import { dirOf, found, newId } from './namespaces'
import type { Claim, Lock, Storage } from './types'

const noop = () => {}

export function lockedOwner(lock: Lock): Claim {
  return (store: Storage, prefix: string, wake: () => void) => {
    let ns: string | undefined
    let closed = false
    const own = newId()
    const name = (n: string) => `mpbus:${dirOf(prefix, n)}`
    /** Locks held until close (our namespace, the main one once it came). */
    const held: (() => void)[] = []
    /** Orphans' locks, held until their keys are gone. */
    const adopting: Record<string, () => void> = {}
    /** Orphans whose locks we hold, not yet handed to the outbox. */
    let ready: string[] = []

    /** Asks for the lock of every namespace in storage we might adopt (`mine`: held already); `done` once all answered. */
    function collect(mine: string[], done: () => void): void {
      let names: string[] = []
      try {
        names = found(store.keys(), prefix)
      } catch {}
      names = names.filter((n) => n !== ns && n !== own)
      let count = names.length + 1
      const step = () => {
        if (!--count && !closed) done()
      }
      for (const n of names) {
        if (mine.indexOf(n) >= 0) {
          ready.push(n)
          step()
          continue
        }
        const slot = { release: noop }
        slot.release = lock(name(n), false, (got) => {
          if (got && !closed) {
            adopting[n] = slot.release
            ready.push(n)
          } else slot.release()
          step()
        })
      }
      step()
    }

    held.push(lock(name(own), true, noop))
    held.push(
      lock(name(''), false, (got) => {
        if (closed) return
        ns = got ? '' : own
        collect([], () => {
          wake()
          // The owner's namespace is ours to adopt once it goes.
          if (!got)
            held.push(
              lock(name(''), true, (now) => {
                if (now && !closed) collect([''], wake)
              }),
            )
        })
      }),
    )

    return {
      ns: () => ns,
      scratch: `${dirOf(prefix, own)}w`,
      orphans() {
        const out = ready
        ready = []
        return out
      },
      swept(n) {
        const release = adopting[n]
        delete adopting[n]
        if (release) release()
      },
      close() {
        closed = true
        for (const n in adopting) adopting[n]!()
        for (const release of held) release()
      },
    }
  }
}

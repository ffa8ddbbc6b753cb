/**
 * Several outboxes on one storage and prefix: two tabs on one `localStorage`, an H5 page opened
 * twice, two `createBus` in one mini program. No namespace is ever written by two outboxes:
 * - one outbox at a time owns the main namespace `${prefix}/`; any other writes its own,
 *   `${prefix}/@${id}/` (ids sort by creation time);
 * - a namespace whose outbox is gone (closed, killed, the tab closed) is an orphan: an outbox
 *   adopts it when it loads (index.ts: its envelopes are queued after the outbox's own, in their
 *   order, stored under the adopter's namespace, and only then are the orphan's keys deleted), so
 *   a cold start sends what any earlier bus left, at once.
 *
 * Who is alive:
 * - Within one JS context (a mini program has one per app; Node; one tab) a module-level registry
 *   of (storage object, prefix, namespace) answers at once. The storage must be the same object:
 *   the platforms' own storages are (one per API object).
 * - Across contexts (browser tabs), the platform's `lock` (Web Locks: held until released or the
 *   page goes, with no lease to expire): each outbox holds the lock of its namespace; the main one
 *   is asked for without waiting and the answer decides where the outbox writes; an orphan is one
 *   whose lock is free, and the adopter holds it until the orphan's keys are gone, so no two adopt
 *   it. An outbox that did not get the main lock waits for it, and adopts what the owner leaves
 *   when it goes. Until the first answer (a few ms), messages are stored in a scratch key of the
 *   outbox's own namespace and nothing is handed out: what is stored goes first, in order.
 */
import { nanoid } from 'nanoid/non-secure'
import type { Lock, Storage } from '../platform/types'
import { unpack } from './record'
import type { Envelope } from './types'

interface Entry {
  store: Storage
  prefix: string
  /** Its namespace, and the orphans it is adopting (theirs until their keys are gone). */
  ns: string[]
}

/** The outboxes open in this JS context. */
const live: Entry[] = []

const noop = () => {}

/** The namespaces with keys under `prefix/`: '' (the main one) first, then the others oldest first. */
export function found(keys: string[], prefix: string): string[] {
  const out: string[] = []
  const dir = prefix + '/'
  for (const key of keys) {
    if (key.slice(0, dir.length) !== dir) continue
    const m = /^(?:(@[\w-]+)\/(?:\d+|seq|w)|\d+|seq)$/.exec(key.slice(dir.length))
    const ns = m ? m[1] || '' : undefined
    if (ns !== undefined && out.indexOf(ns) < 0) out.push(ns)
  }
  return out.sort()
}

/** The key prefix of namespace `ns`. */
export const dirOf = (prefix: string, ns: string) => `${prefix}/${ns ? ns + '/' : ''}`

export interface Owner {
  /** Where this outbox writes: '' (main) or '@id'; undefined while the lock is being asked for. */
  ns(): string | undefined
  /** Where messages queued before that answer are stored (the lock path only). */
  readonly scratch?: string
  /** The orphans to adopt now, given the keys in storage; each is returned once. */
  orphans(keys: string[]): string[]
  /** An adopted namespace's keys are gone (or it could not be read): its lock is released. */
  swept(ns: string): void
  close(): void
}

/**
 * Decides the namespace of one outbox and finds the orphans it adopts. `wake` runs when the lock's
 * answer came (load now) and when orphans turn up later (adopt them).
 */
export function createOwner(store: Storage, prefix: string, lock: Lock | undefined, wake: () => void): Owner {
  let ns: string | undefined
  let closed = false
  const own = '@' + Date.now().toString(36) + nanoid(6)
  const name = (n: string) => `mpbus:${dirOf(prefix, n)}`
  const peers = () => live.filter((e) => e.store === store && e.prefix === prefix)
  const entry: Entry = { store, prefix, ns: [] }
  /** Locks held until close (our namespace, the main one once it came) and orphans' locks until swept. */
  const held: (() => void)[] = []
  const adopting: Record<string, () => void> = {}
  /** Orphans whose locks we hold, not yet handed to the outbox. */
  let ready: string[] = []

  /** Asks for the lock of every namespace in storage we might adopt; `done` once all answered. */
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
      slot.release = lock!(name(n), false, (got) => {
        if (got && !closed) {
          adopting[n] = slot.release
          ready.push(n)
        } else slot.release()
        step()
      })
    }
    step()
  }

  if (lock) {
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
  }

  return {
    ns() {
      if (ns === undefined && !lock) {
        ns = peers().some((e) => e.ns[0] === '') ? own : ''
        entry.ns = [ns]
        live.push(entry)
      }
      return ns
    },
    scratch: lock ? `${dirOf(prefix, own)}w` : undefined,
    orphans(keys) {
      if (!lock) {
        const open = ([] as string[]).concat(...peers().map((e) => e.ns))
        const out = found(keys, prefix).filter((n) => open.indexOf(n) < 0)
        entry.ns.push(...out)
        return out
      }
      const out = ready
      ready = []
      return out
    },
    swept(n) {
      if (n !== ns && entry.ns.indexOf(n) > 0) entry.ns.splice(entry.ns.indexOf(n), 1)
      const release = adopting[n]
      delete adopting[n]
      if (release) release()
    },
    close() {
      closed = true
      const i = live.indexOf(entry)
      if (i >= 0) live.splice(i, 1)
      for (const n in adopting) adopting[n]!()
      for (const release of held) release()
    },
  }
}

/**
 * An orphan's envelopes in order and its keys to delete: records from the last, then the mark (so
 * a kill during the deletes brings back nothing that had left). The scratch record goes first: it holds what was
 * queued before anything else. Envelopes below the mark's low have left; repeats (by id) are
 * skipped. A record of a newer format is reported and kept, and so is the mark then. Throws when a
 * read fails: the orphan is tried again at a later load.
 */
export function gather(
  keys: string[],
  dir: string,
  get: (key: string) => string | undefined,
  bad: (key: string, raw: unknown) => void,
): { m: Envelope[]; keys: string[] } {
  const names = keys.filter((k) => k.slice(0, dir.length) === dir).map((k) => k.slice(dir.length))
  const records = names.filter((n) => /^\d+$/.test(n)).sort((a, b) => +a - +b)
  if (names.indexOf('w') >= 0) records.unshift('w')
  let low = 0
  try {
    const mark = JSON.parse(get(dir + 'seq') as string)
    if (Number.isSafeInteger(mark[0])) low = mark[0]
  } catch {}
  const m: Envelope[] = []
  const out: string[] = []
  const ids: Record<string, 1> = {}
  let keep = false
  for (const n of records) {
    const raw = get(dir + n)
    const record = unpack(raw)
    if (typeof record === 'number') {
      bad(dir + n, record)
      keep = true
      continue
    }
    if (!record || record.bad) bad(dir + n, raw)
    for (const e of record ? record.m : [])
      if (!ids[e.id] && (n === 'w' || e.seq >= low)) {
        ids[e.id] = 1
        m.push(e)
      }
    out.push(dir + n)
  }
  // Deleted last first: a kill during the deletes leaves a prefix of the orphan's queue, which the
  // next load takes before the adopter's copy (by id, first seen first), so the order still holds.
  out.reverse()
  if (!keep && names.indexOf('seq') >= 0) out.push(dir + 'seq')
  return { m, keys: out }
}

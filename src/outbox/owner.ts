/**
 * Several outboxes on one storage and prefix: two tabs on one `localStorage`, an H5 page opened
 * twice, two `createBus` in one mini program. No namespace is ever written by two outboxes:
 * - one outbox at a time owns the main namespace `${prefix}/`; any other writes its own,
 *   `${prefix}/@${id}/` (ids sort by creation time);
 * - a namespace whose outbox is gone (closed, killed, the tab closed) is an orphan: an outbox
 *   adopts it when it loads (store.ts: its envelopes are queued after the outbox's own, in their
 *   order, stored under the adopter's namespace, and only then are the orphan's keys deleted), so
 *   a cold start sends what any earlier bus left, at once.
 *
 * Who is alive:
 * - Within one JS context (a mini program has one per app; Node; one tab) a module-level registry
 *   of (storage object, prefix, namespace) answers at once. The storage must be the same object:
 *   the platforms' own storages are (one per API object).
 * - Across contexts (browser tabs), the platform's `share` (browsers: Web Locks,
 *   src/platform/web-locks.ts), which may answer asynchronously: until it does, messages are
 *   stored in a scratch key of the outbox's own namespace and nothing is handed out, so what
 *   storage held goes first, in order.
 */
import { found, newId } from '../platform/namespaces'
import type { Owner, Storage } from '../platform/types'
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

/** The owner within one JS context: the registry answers at once. */
export function localOwner(store: Storage, prefix: string): Owner {
  let ns: string | undefined
  const entry: Entry = { store, prefix, ns: [] }
  const peers = () => live.filter((e) => e.store === store && e.prefix === prefix)
  return {
    ns() {
      if (ns === undefined) {
        ns = peers().some((e) => e.ns[0] === '') ? newId() : ''
        entry.ns = [ns]
        live.push(entry)
      }
      return ns
    },
    orphans(keys) {
      const open = ([] as string[]).concat(...peers().map((e) => e.ns))
      const out = found(keys, prefix).filter((n) => open.indexOf(n) < 0)
      entry.ns.push(...out)
      return out
    },
    swept(n) {
      const i = entry.ns.indexOf(n)
      if (i > 0) entry.ns.splice(i, 1)
    },
    close() {
      const i = live.indexOf(entry)
      if (i >= 0) live.splice(i, 1)
    },
  }
}

/**
 * An orphan's envelopes in order and its keys to delete: records from the last, then the mark (so
 * a kill during the deletes brings back nothing that had left). The scratch record goes last.
 * Envelopes below the mark's low have left; repeats (by id) are
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
  // Last: what it holds was queued after the records' (a failed load's wait), or is in them
  // already (a lock wait's, stored once the lock came), and then skipped as a repeat.
  if (names.indexOf('w') >= 0) records.push('w')
  let low = 0
  try {
    const mark = JSON.parse(get(dir + 'seq') as string)
    if (Number.isSafeInteger(mark[0])) low = mark[0]
  } catch {}
  const m: Envelope[] = []
  const out: string[] = []
  const ids: Record<string, 1> = Object.create(null)
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
  // Deleted first first, the mark last: a kill during the deletes leaves a suffix of the orphan's
  // queue, whose messages the adopter's copy holds too (it was stored before the deletes); the
  // next load queues each once, an earlier one missing from the copy before a later (store.ts, adopt).
  if (!keep && names.indexOf('seq') >= 0) out.push(dir + 'seq')
  return { m, keys: out }
}

/**
 * Everything of the outbox that touches storage: load (with adopt), commit (with sweep), retries.
 * The queue itself is index.ts's; this module reads it, refills it at load, and writes it.
 *
 * Durability point. `added()` (enqueue) schedules `commit()` in a microtask (a resolved Promise
 * where there is no `queueMicrotask`); `ready()` (the queue's `next()`) commits first whenever
 * something was added since the last commit. So a message is in storage at the end of the task
 * that queued it, before the platform runs any timer or event (a `pagehide` listener's send
 * included), and always before the socket can see it. Enqueues of one task share one write.
 * `commit()` writes at once: the bus runs it when the app or page hides (`Platform.watchHide`) and
 * at `close()`. Storage writes are synchronous on every platform mpbus supports (the `*StorageSync`
 * APIs, localStorage, the Node file store), so a message survives a kill once `set` has returned.
 * An asynchronous store would move that point to whenever its write lands. A failed write (quota)
 * keeps the message in memory, where it is still sent, reports `STORAGE_FULL`, and is retried
 * RETRY ms later (one attempt each time, until one succeeds), and by any commit before then.
 *
 * Reads. A read that fails during load undoes the load and is tried again RETRY ms later; until
 * the queue is read, `ready()` is false and messages queued meanwhile wait behind it (renumbered
 * when it is read). A record that fails TRIES reads in a row is reported `CORRUPT_RECORD` and
 * skipped; a key list or mark that does, turns storage off (memory only).
 *
 * Storage layout v1, every key under `${prefix}/`:
 * - `${prefix}/${seq}`: a record, named by the seq of its first envelope, value
 *   `{"v":1,"m":[envelope, ...]}` (older versions added `"n":[size, ...]`, ignored), at most
 *   RECORD bytes; in memory each envelope is its JSON alone (record.ts). Sorting the listed keys
 *   recovers the order. A commit writes its new envelopes as one record, merged with the last
 *   MERGE - 1 records when they are all of its level (shelf.ts): one write per commit still, and
 *   few keys at any depth.
 * - `${prefix}/seq`: the mark, `[low, next]`. Every envelope below `low` has left the queue, so
 *   load skips them; `next` is the next seq at that time, so a drained queue never restarts or
 *   reuses seqs after a reload. Delivering in order (the usual case) only moves `low`: one tiny
 *   write per commit, whatever the size of the record being drained, which is deleted once
 *   empty. An envelope that leaves out of order (an ack out of order, `remove()` of a later one,
 *   an overflow or expiry behind one in flight) has its record rewritten without it, once per
 *   commit. The mark is written at most once per commit, when `low` moved or an envelope at or
 *   above its `next` left, and before any record is rewritten or deleted.
 * Load also merges runs of small neighbouring records (see COMPACT), as older versions left them.
 * When other outboxes may share the prefix (`share`), all of this lives under the outbox's
 * namespace (`${prefix}/`, or `${prefix}/@${id}/` when another owns that), and load also adopts
 * orphaned namespaces: owner.ts.
 */
import type { Emitter } from 'mitt'
import { describe, MpbusError } from '../errors'
import { dirOf } from '../platform/namespaces'
import { atTaskEnd } from '../task'
import type { Line } from './line'
import { gather, localOwner } from './owner'
import { encode, type Item, pack, unpack } from './record'
import { createShelf } from './shelf'
import { COMPACT, type Envelope, type OutboxEvents, type OutboxSettings, RETRY, TRIES } from './types'

/** What the store reads of the queue (index.ts), and how it refills it at load. */
export interface Queue {
  readonly line: Line<Item>
  /** Queues the envelope JSON `j` under seq `s`, as it was stored. */
  track(j: string, s: number): Item
  /** What the mark should say: the lowest seq still queued (the next one when empty), the next seq. */
  mark(): [number, number]
  /** Queues `e` after the rest, renumbered (its id stays), unless queued already; true when it queued it. */
  append(e: Envelope, again?: boolean): boolean
  /** Empties the queue, returning what it held. */
  clear(): Item[]
  /** Seqs below `n` are taken (storage holds or held them): numbering goes on from there. */
  skip(n: number): void
}

export interface Store {
  /** Reads storage once it may (see `load` below); later calls do nothing. */
  load(): void
  /** Writes what was added and removed since the last commit; retries failed writes. */
  commit(): void
  /** Something was queued: it is written at the end of the task, and before `ready()` is true. */
  added(): void
  /** Loads; when the whole queue is read, commits what was added: true when the queue may hand out. */
  ready(): boolean
  /** `item` left the queue (`first`: from its head); storage follows at the next commit. */
  left(item: Item, first: boolean): void
  /** Commits (when loaded), lets go of the namespace, and cancels the timer. */
  dispose(): void
}

export function createStore(settings: OutboxSettings, events: Emitter<OutboxEvents>, queue: Queue): Store {
  const prefix = settings.prefix
  /** Dropped when storage cannot be read TRIES times: writing blind could overwrite records it did not see. */
  let store = settings.storage
  /** Where this outbox writes: `${prefix}/`, or a namespace of its own under it (owner.ts). */
  let dir = prefix + '/'
  let markKey = dir + 'seq'
  /** The stored records: which items each holds, and which to rewrite or delete. */
  const shelf = createShelf(attempt)
  const dirty = shelf.dirty
  /** The mark as stored (see the top of this module). */
  let low = 0
  let high = 0
  /** An envelope at or above `high` left: the next commit writes the mark before anything else. */
  let lowered = false
  let loaded = false
  /** Added since the last commit: `ready()` must commit before the queue hands anything out. */
  let fresh = false
  /** Failed reads of one key in a row, and that key. */
  let tries = 0
  let failing: string | undefined
  /** Records that failed TRIES reads: skipped by the loads after. */
  const unreadable = new Set<string>()
  /** A commit is due at the end of the current task (a microtask is on its way). */
  let due = false
  /** The retry of a failed write or read; the outbox's only timer. */
  let timer: ReturnType<typeof setTimeout> | undefined

  /** Decides `dir` and finds orphans to adopt when other outboxes may share the prefix (owner.ts). */
  const share = settings.share
  const owner =
    store && share
      ? share === true
        ? localOwner(store, prefix)
        : share(store, prefix, () => {
            if (loaded) adopt(listing())
            else load()
            if (loaded) events.emit('load', undefined)
          })
      : undefined
  /** The scratch record was written (owner.ts): it is kept up to date, emptied too. */
  let scratched = false
  /** The keys of the last load's listing. */
  let listed: string[] = []
  /** Adopted namespaces whose keys go once their envelopes are stored here. */
  const sweeping: { ns: string; keys: string[] }[] = []

  /** Errors met by load wait for the queue and its seqs to be whole: a listener may enqueue. */
  let held: MpbusError[] | undefined

  function report(cause: unknown): void {
    const error =
      cause instanceof MpbusError ? cause : new MpbusError('STORAGE_ERROR', describe(cause), cause)
    if (held) held.push(error)
    else events.emit('error', error)
  }

  /** Runs one write; a failure is reported, never thrown. */
  function attempt(method: 'set' | 'del', key: string, value?: string): boolean {
    try {
      ;(store as any)[method](key, value)
      return true
    } catch (error) {
      report(error)
      return false
    }
  }

  /**
   * Commits at the end of the current task: one write serves every enqueue of the task, and it
   * lands before the platform runs anything else (a timer, the next event, the page going away).
   */
  function schedule(): void {
    if (!store || due) return
    due = true
    atTaskEnd(() => due && commit())
  }

  function retry(): void {
    if (!timer)
      timer = setTimeout(() => {
        timer = undefined
        if (loaded) commit()
        else load()
      }, RETRY)
  }

  function commit(): void {
    due = false
    // Waiting for the lock's answer (owner.ts), or for the retry of a failed read (its timer):
    // what is queued is kept in a scratch record, read back by the load (or, after a kill, the next one).
    const scratch = owner && owner.scratch ? owner.scratch : timer && dir + 'w'
    if (store && !loaded && scratch && (queue.line.size || scratched)) {
      scratched = true
      const items: Item[] = []
      queue.line.each((item) => {
        items.push(item)
      })
      attempt('set', scratch, pack(items))
    }
    // Before the load, the timer is the load's retry: it stays.
    if (!store || !loaded) return
    clearTimeout(timer)
    timer = undefined
    fresh = false
    if (!write()) retry()
  }

  /** The writes of a commit; false when one failed (it is retried by time). */
  function write(): boolean {
    const mark = queue.mark()
    if (mark[0] > low || lowered) {
      if (!attempt('set', markKey, JSON.stringify(mark))) return false
      ;[low, high] = mark
      lowered = false
    }
    // Rewrites and deletes wait for the mark (without it, a kill could bring back an older seq),
    // and stop at the first failure: a merged record must be written before its parts go.
    if (!shelf.rewrite()) return false
    // New items, a suffix of the queue. Stop at the first failure so the unstored items stay a
    // suffix (and keys keep following seq order).
    const items: Item[] = []
    queue.line.back((item) => {
      if (item.k) return true
      items.push(item)
    })
    // Gathered from the back: reversed once (an unshift each would be quadratic in sends per task).
    items.reverse()
    return shelf.store(items, dir) && shelf.rewrite() && sweep()
  }

  /** Deletes the keys of adopted namespaces, now that their envelopes are stored here. */
  function sweep(): boolean {
    for (let s = sweeping[0]; s; s = sweeping[0]) {
      while (s.keys.length) {
        if (!attempt('del', s.keys[0]!)) return false
        s.keys.shift()
      }
      sweeping.shift()
      if (owner) owner.swept(s.ns)
    }
    return true
  }

  function listing(): string[] {
    try {
      return store!.keys() || []
    } catch (error) {
      report(error)
      return []
    }
  }

  /**
   * Queues what the scratch record of this namespace holds (sent while an earlier load waited for
   * a retry, then killed or closed) after what storage holds, renumbered; its key goes once they
   * are stored. Ids already queued are skipped. A scratch that cannot be read waits for a later load.
   */
  function unscratch(): void {
    const key = dir + 'w'
    if (listed.indexOf(key) < 0) return
    let record: ReturnType<typeof unpack>
    try {
      record = unpack(store!.get(key))
    } catch (error) {
      report(error)
      return
    }
    if (typeof record === 'number') {
      report(new MpbusError('CORRUPT_RECORD', `${key} (format ${record})`))
      return
    }
    if (!record || record.bad) report(new MpbusError('CORRUPT_RECORD', key))
    for (const e of record ? record.m : []) if (queue.append(e)) fresh = true
    sweeping.push({ ns: '', keys: [key] })
  }

  /**
   * Queues the envelopes of orphaned namespaces (owner.ts) after what is queued, in their order,
   * renumbered; their keys go once these are stored. One queued already (a kill cut an adoption
   * short: stored here, its old keys not yet deleted) is skipped, or, behind one that is not, taken
   * out and queued again behind it (`again`). An orphan that cannot be read is left for a later load.
   */
  function adopt(keys: string[]): void {
    for (const ns of owner ? owner.orphans(keys) : []) {
      try {
        const found = gather(
          keys,
          dirOf(prefix, ns),
          (key) => store!.get(key),
          (key, raw) => report(new MpbusError('CORRUPT_RECORD', key, raw)),
        )
        let behind = false
        for (const e of found.m) if (queue.append(e, behind)) fresh = behind = true
        sweeping.push({ ns, keys: found.keys })
      } catch (error) {
        report(error)
        owner!.swept(ns)
      }
    }
    if (fresh) schedule()
  }

  /**
   * Loads the records in seq order, skipping envelopes below the mark's `low` and any seen
   * already (a merge cut short by a kill leaves duplicates), and merges runs of small neighbours
   * (up to COMPACT bytes) into the first of the run: commit rewrites that one before it deletes
   * the rest. A read that fails undoes the load; it is tried again by the timer, with the
   * messages queued meanwhile waiting behind, renumbered, until the whole queue is read.
   */
  function load(): void {
    // A failed load is tried again by its timer only: callers in a loop would spend the tries at once.
    if (loaded || timer) return
    if (owner) {
      const ns = owner.ns()
      // The lock's answer is on its way; it loads then.
      if (ns === undefined) return
      dir = dirOf(prefix, ns)
      markKey = dir + 'seq'
      if (owner.scratch && !sweeping.length) sweeping.push({ ns, keys: [owner.scratch] })
    }
    loaded = true
    held = []
    const waiting = queue.clear()
    const after = restore()
    if (after === false) {
      loaded = false
      queue.clear()
      dirty.clear()
      low = high = 0
      retry()
    } else queue.skip(after)
    if (loaded) {
      unscratch()
      adopt(listed)
    }
    for (const item of waiting) {
      if (!loaded) queue.track(item.j, item.s)
      // Renumbered after what storage holds, so encoded again; the id stays (and one read back
      // from the scratch record is not queued twice).
      else queue.append(JSON.parse(item.j))
    }
    if (loaded) {
      shelf.index(queue.line)
      // Nothing below the head is left to skip: counting the mark as written saves a write.
      low = queue.mark()[0]
      if (waiting.length) fresh = true
      schedule()
    }
    const errors = held
    held = undefined
    errors.forEach(report)
  }

  /**
   * One read of the load: the key list (no `key`) or the value of `key`; false (never a value)
   * when it failed and the load must be tried again. A key list or mark that cannot be read turns
   * storage off: undefined then.
   */
  function read(key?: string): any {
    const name = key || ''
    try {
      const value = key ? store!.get(key) : store!.keys()
      if (failing === name) failing = undefined
      return value
    } catch (error) {
      tries = failing === name ? tries + 1 : 1
      failing = name
      if (tries < TRIES) {
        report(error)
        return false
      }
      failing = undefined
      if (key && key !== markKey) {
        report(new MpbusError('CORRUPT_RECORD', `${key} (unreadable)`, error))
        unreadable.add(key)
        return false
      }
      // No list of keys or no mark: writing could overwrite what was not read. Memory only.
      report(error)
      store = undefined
    }
  }

  /**
   * Reads the queue back into `queue`: the seq after every one storage holds or held, or false
   * when a read failed and the load must be tried again.
   */
  function restore(): number | false {
    if (!store) return 0
    const list = read()
    if (list === false) return false
    const keys: string[] = list || []
    listed = keys
    if (!store) return 0
    const marked = read(markKey)
    if (marked === false) return false
    if (!store) return 0
    try {
      const mark = JSON.parse(marked)
      // A mark is written as [head, next], so low <= next; trusting one that is not would skip, and
      // delete, records still queued.
      if (mark.every(Number.isSafeInteger) && mark[0] <= mark[1]) [low, high] = mark
    } catch {}
    /** The last seq loaded: envelopes at or below it are skipped. */
    let last = low - 1
    /** The record the current run of small records merges into, and the run's size so far. */
    let run = ''
    let size = 0
    const names = keys
      .map((key) => key.slice(dir.length))
      .filter((name, i) => keys[i] === dir + name && /^\d+$/.test(name))
      .sort((a, b) => +a - +b)
    for (const name of names) {
      const key = dir + name
      if (unreadable.has(key)) continue
      const raw = read(key)
      if (raw === false) {
        if (unreadable.has(key)) continue
        return false
      }
      const record = unpack(raw)
      if (typeof record === 'number') {
        // Written by a newer mpbus (before a downgrade): left for it, and its key never reused.
        report(new MpbusError('CORRUPT_RECORD', `${key} (format ${record})`))
        high = Math.max(high, +name + 1)
        run = ''
        continue
      }
      if (!record) {
        report(new MpbusError('CORRUPT_RECORD', key, raw))
        attempt('del', key)
        continue
      }
      if (record.bad) report(new MpbusError('CORRUPT_RECORD', key, raw))
      if (!(run && size + raw.length <= COMPACT)) {
        run = key
        size = 0
      }
      size += raw.length
      let kept = false
      for (const e of record.m)
        if (e.seq > last) {
          last = e.seq
          queue.track(encode(e), e.seq).k = run
          kept = true
        }
      if (!kept) {
        // Nothing in it is queued any more (delivered, or loaded already): deleted, and no run starts here.
        dirty.add(key)
        if (run === key) run = ''
      } else if (run !== key) {
        // Merged into the run: commit rewrites the run's record first, then deletes this one.
        dirty.add(run)
        dirty.add(key)
      } else if (record.bad) dirty.add(key)
    }
    return Math.max(high, last + 1)
  }

  return {
    load,
    commit,
    added() {
      fresh = true
      schedule()
    },
    ready() {
      load()
      // Part of the queue is unread: whatever is handed out now could overtake it.
      if (!loaded) return false
      // Only new messages must be stored before they are sent; removals wait for the end of the
      // task, so the acks of one task cost one write, not one per ack.
      if (fresh) commit()
      return true
    },
    left(item, first) {
      if (item.s >= high) lowered = true
      // The head of the queue leaves under the low mark, with no rewrite, and its record goes once
      // nothing in it is queued; anything else leaves a gap that only a rewrite can close.
      shelf.left(item, first)
      schedule()
    },
    dispose() {
      commit()
      if (owner) owner.close()
      due = false
      clearTimeout(timer)
      timer = undefined
    },
  }
}

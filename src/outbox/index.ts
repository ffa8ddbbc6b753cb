/**
 * The outbox: a durable, bounded queue that hands messages to the socket in `seq` order.
 *
 * Durability point. `enqueue()` queues in memory and schedules `commit()` in a microtask (a
 * resolved Promise where there is no `queueMicrotask`); `next()` commits first whenever something
 * was enqueued since the last commit. So a message is in storage at the end of the task that
 * queued it, before the platform runs any timer or event (a `pagehide` listener's send included),
 * and always before the socket can see it (the bus only learns of a message through `next()`).
 * Enqueues of one task share one write. `commit()` writes at once: the bus runs it when the app or
 * page hides (`Platform.watchHide`) and at `close()`. Storage writes are synchronous on every
 * platform mpbus supports (the `*StorageSync` APIs, localStorage, the Node file store), so a
 * message survives a kill once `set` has returned. An asynchronous store would move that point to
 * whenever its write lands. A failed write (quota) keeps the message in memory, where it is still
 * sent, reports `STORAGE_FULL`, and is retried RETRY ms later (one attempt each time, until one
 * succeeds), and by any commit before then.
 *
 * Reads. A read that fails during load undoes the load and is tried again RETRY ms later; until
 * the queue is read, `next()` hands out nothing and messages queued meanwhile wait behind it
 * (renumbered when it is read). A record that fails TRIES reads in a row is reported
 * `CORRUPT_RECORD` and skipped; a key list or mark that does, turns storage off (memory only).
 *
 * Storage layout v1, every key under `${prefix}/`:
 * - `${prefix}/${seq}`: a record, named by the seq of its first envelope, value
 *   `{"v":1,"m":[envelope, ...]}` (older versions added `"n":[size, ...]`, ignored), at most
 *   RECORD bytes; in memory each envelope is its JSON alone (record.ts). Sorting the listed keys
 *   recovers the order. A commit writes its new envelopes as one record, merged with the last MERGE - 1 records when they are
 *   all of its level (see `write`): one write per commit still, and few keys at any depth.
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
import mitt from 'mitt'
import { withDefaults } from '../defaults'
import { describe, MpbusError } from '../errors'
import { toJson } from '../payload'
import type { Storage } from '../platform/types'
import { atTaskEnd } from '../task'
import { byteLength } from '../utf8'
import { createLine } from './line'
import { dirOf, gather, localOwner } from './owner'
import { decode, encode, expiryOf, type Item, idOf, pack, sizeOf, unpack } from './record'
import { createShelf } from './shelf'
import {
  COMPACT,
  DEFAULTS,
  type DropReason,
  EACH,
  type Envelope,
  FRAME,
  type Outbox,
  type OutboxEvents,
  type OutboxOptions,
  RECORD,
  RETRY,
  TRIES,
} from './types'

export type { DropReason, Envelope, Outbox, OutboxEvents, OutboxOptions } from './types'

export function createOutbox(options: OutboxOptions = {}): Outbox {
  // An option given as `undefined` keeps its default, as it would in a destructuring.
  const settings = withDefaults(DEFAULTS, options)
  /** Dropped when storage cannot be read TRIES times: writing blind could overwrite records it did not see. */
  let store = settings.storage
  const events = mitt<OutboxEvents>()
  /** Where this outbox writes: `${prefix}/`, or a namespace of its own under it (owner.ts). */
  let dir = settings.prefix + '/'
  let markKey = dir + 'seq'
  /**
   * Queued items in seq order. The unstored ones are a suffix, the in-flight ones a prefix, and
   * the items of one record are neighbours.
   */
  const queue = createLine<Item>()
  /**
   * Queued items whose id does not end with their seq (`find`): renumbered, adopted, or made by an
   * older mpbus. The others need no entry: a Map entry per message would cost a third of its heap.
   */
  const moved = new Map<string, Item>()
  /** The stored records: which items each holds, and which to rewrite or delete. */
  const shelf = createShelf((method, key, value) => attempt(method, key, value))
  const dirty = shelf.dirty
  let seq = 1
  /**
   * Ids: a random part per outbox (about 100 bits, from Math.random as nanoid/non-secure's are) and
   * the seq given at enqueue, which never goes back: unique across buses, devices and restarts,
   * without 21 random draws per message, and found by their seq.
   */
  const base = `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}-`
  /** The mark as stored (see the top of this module). */
  let low = 0
  let high = 0
  /** An envelope at or above `high` left: the next commit writes the mark before anything else. */
  let lowered = false
  let bytes = 0
  let loaded = false
  /** Failed reads of one key in a row, and that key. */
  let tries = 0
  let failing: string | undefined
  /** Records that failed TRIES reads: skipped by the loads after. */
  const unreadable = new Set<string>()
  /** Enqueued since the last commit: `next()` must commit before it hands anything out. */
  let fresh = false
  /**
   * The seq of the last item handed out by `next()`: the queued ones up to it are in flight (a
   * prefix of the queue, handed out in order; none after a rewind).
   */
  let sentTo = 0
  /** A commit is due at the end of the current task (a microtask is on its way). */
  let due = false
  /** The retry of a failed write or read; the outbox's only timer. */
  let timer: ReturnType<typeof setTimeout> | undefined

  /** Decides `dir` and finds orphans to adopt when other outboxes may share the prefix (owner.ts). */
  const share = settings.share
  const owner =
    store && share
      ? share === true
        ? localOwner(store, settings.prefix)
        : share(store, settings.prefix, () => {
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

  /** Errors met by load wait for the queue and `seq` to be whole: a listener may enqueue. */
  let held: MpbusError[] | undefined

  function report(cause: unknown): void {
    const error =
      cause instanceof MpbusError ? cause : new MpbusError('STORAGE_ERROR', describe(cause), cause)
    if (held) held.push(error)
    else events.emit('error', error)
  }

  /** What the last `get` or `keys` returned. */
  let got: any

  /** Runs one storage call; a failure is reported, never thrown. */
  function attempt(method: keyof Storage, key?: string, value?: string): boolean {
    try {
      got = (store as any)[method](key, value)
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

  /** The lowest seq still queued: what the mark's `low` should say. */
  function head(): number {
    const item = queue.head()
    return item ? item.s : seq
  }

  /** Queues the envelope of seq `s` whose JSON is `j` (`n`: its size, when counted already). */
  function track(j: string, s: number, n = byteLength(j)): Item {
    const item: Item = { j, s, k: undefined }
    queue.push(item)
    const id = idOf(j)
    if (seqOf(id) !== s) moved.set(id, item)
    bytes += n
    return item
  }

  /** The seq an id ends with, as this outbox makes them (`base` + seq in base 36); NaN or another for the rest. */
  const seqOf = (id: string) => parseInt(id.slice(id.lastIndexOf('-') + 1), 36)

  /** The queued item of `id`: by its seq, which ends the ids this outbox makes, or in `moved`. */
  function find(id: string): Item | undefined {
    const item = moved.get(id) || queue.find(seqOf(id))
    return item && item.j && idOf(item.j) === id ? item : undefined
  }

  /** Takes an item out of the queue (emptying its text); storage follows at the next commit. */
  function take(item: Item): void {
    const first = queue.head() === item
    if (moved.size) moved.delete(idOf(item.j))
    bytes -= sizeOf(item)
    queue.remove(item)
    if (item.s >= high) lowered = true
    // The head of the queue leaves under the low mark, with no rewrite, and its record goes once
    // nothing in it is queued; anything else leaves a gap that only a rewrite can close.
    shelf.left(item, first)
    schedule()
  }

  function drop(reason: DropReason, items: Item[]): void {
    if (!items.length) return
    const envelopes = items.map(decode)
    items.forEach(take)
    events.emit('drop', {
      reason,
      envelopes,
      error: new MpbusError(reason === 'expired' ? 'EXPIRED' : 'DROPPED', reason),
    })
  }

  /**
   * The oldest waiting items to drop so that `n` more bytes fit, if the policy allows. The caller
   * drops them once its item is queued: a `drop` listener may enqueue, and must get the next seq.
   */
  function makeRoom(n: number): Item[] {
    let count = queue.size + 1
    let size = bytes + n
    const full = () => count > settings.maxMessages || size > settings.maxBytes
    // The common case, room to spare, must not walk the queue: enqueue stays O(1).
    if (!full()) return []
    const out: Item[] = []
    if (settings.overflow === 'dropOldest')
      queue.each((item) => {
        if (!full()) return true
        if (item.s > sentTo) {
          out.push(item)
          count--
          size -= sizeOf(item)
        }
      })
    if (full()) throw new MpbusError('OUTBOX_FULL', 'outbox full')
    return out
  }

  /** Takes `id` out of the queue, reporting it `delivered` if asked; false for unknown ids. */
  function settle(id: string, delivered?: boolean): boolean {
    const item = find(id)
    if (!item) return false
    // Decoded for a listener only (the bus has none): a parse would be most of an ack's cost.
    const e = delivered && (events.all.get('delivered') || []).length ? decode(item) : undefined
    take(item)
    if (e) events.emit('delivered', e)
    return true
  }

  function commit(): void {
    due = false
    // Waiting for the lock's answer (owner.ts), or for the retry of a failed read (its timer):
    // what is queued is kept in a scratch record, read back by the load (or, after a kill, the next one).
    const scratch = owner && owner.scratch ? owner.scratch : timer && dir + 'w'
    if (store && !loaded && scratch && (queue.size || scratched)) {
      scratched = true
      const items: Item[] = []
      queue.each((item) => {
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
    const next = head()
    if (next > low || lowered) {
      if (!attempt('set', markKey, JSON.stringify([next, seq]))) return false
      low = next
      high = seq
      lowered = false
    }
    // Rewrites and deletes wait for the mark (without it, a kill could bring back an older seq),
    // and stop at the first failure: a merged record must be written before its parts go.
    if (!shelf.rewrite()) return false
    // New items, a suffix of the queue. Stop at the first failure so the unstored items stay a
    // suffix (and keys keep following seq order).
    const items: Item[] = []
    queue.back((item) => {
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
        if (!attempt('del', s.keys[0])) return false
        s.keys.shift()
      }
      sweeping.shift()
      if (owner) owner.swept(s.ns)
    }
    return true
  }

  function listing(): string[] {
    return attempt('keys') ? got || [] : []
  }

  /**
   * Queues the envelopes of orphaned namespaces (owner.ts) after what is queued, in their order,
   * renumbered; their keys go once these are stored. Ids already queued are skipped. An orphan
   * that cannot be read is left for a later load.
   */
  function adopt(keys: string[]): void {
    for (const ns of owner ? owner.orphans(keys) : []) {
      try {
        const found = gather(
          keys,
          dirOf(settings.prefix, ns),
          (key) => store!.get(key),
          (key, raw) => report(new MpbusError('CORRUPT_RECORD', key, raw)),
        )
        for (const e of found.m)
          if (!find(e.id)) {
            e.seq = seq++
            track(encode(e), e.seq)
            fresh = true
          }
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
      dir = dirOf(settings.prefix, ns)
      markKey = dir + 'seq'
      if (owner.scratch && !sweeping.length) sweeping.push({ ns, keys: [owner.scratch] })
    }
    loaded = true
    held = []
    const waiting = queue.drain()
    moved.clear()
    bytes = 0
    if (!restore()) {
      loaded = false
      queue.drain()
      moved.clear()
      dirty.clear()
      bytes = low = high = 0
      retry()
    }
    let tail: Item | undefined
    queue.back((item) => {
      tail = item
      return true
    })
    seq = Math.max(seq, high, low, tail ? tail.s + 1 : 0)
    if (loaded) {
      unscratch()
      adopt(listed)
    }
    for (const item of waiting) {
      if (!loaded) {
        track(item.j, item.s)
        continue
      }
      // Read back from the scratch record already.
      if (find(idOf(item.j))) continue
      // Renumbered after what storage holds, so encoded again; the id stays.
      const e = decode(item)
      e.seq = seq++
      track(encode(e), e.seq)
    }
    if (loaded) {
      shelf.index(queue)
      // Nothing below the head is left to skip: counting the mark as written saves a write.
      low = head()
      if (waiting.length) fresh = true
      schedule()
    }
    const errors = held
    held = undefined
    errors.forEach(report)
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
      return report(error)
    }
    if (typeof record === 'number') return report(new MpbusError('CORRUPT_RECORD', `${key} (format ${record})`))
    if (!record || record.bad) report(new MpbusError('CORRUPT_RECORD', key))
    for (const e of record ? record.m : [])
      if (!find(e.id)) {
        e.seq = seq++
        track(encode(e), e.seq)
        fresh = true
      }
    sweeping.push({ ns: '', keys: [key] })
  }

  /** One read of the load; false when it failed and the load must be tried again. */
  function read(key?: string): boolean {
    const name = key || ''
    try {
      got = key ? store!.get(key) : store!.keys()
      if (failing === name) failing = undefined
      return true
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
      return true
    }
  }

  function restore(): boolean {
    if (!store) return true
    if (!read()) return false
    const keys: string[] = got || []
    listed = keys
    if (!store) return true
    if (!read(markKey)) return false
    if (!store) return true
    try {
      const mark = JSON.parse(got)
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
      if (!read(key)) {
        if (unreadable.has(key)) continue
        return false
      }
      const raw: string = got
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
          track(encode(e), e.seq).k = run
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
    return true
  }

  return {
    on: events.on,
    off: events.off,
    enqueue(op, payload, options) {
      load()
      const createdAt = settings.now()
      const life = options && options.ttl !== undefined ? options.ttl : settings.ttl
      // The payload rule costs a call per value: it runs on the payload alone, once, and its JSON
      // is the envelope's. The queue holds that text: a later change to `payload` by the caller
      // does not leak in.
      const text = toJson(payload)
      const e = { id: base + seq.toString(36), seq, op, createdAt } as Envelope
      if (life < Infinity) e.expiresAt = createdAt + life
      const j = encode(e, text)
      const n = byteLength(j)
      if (n + FRAME + EACH > RECORD) throw new MpbusError('TOO_LARGE', `${n} bytes`)
      const out = makeRoom(n)
      seq++
      track(j, e.seq, n)
      fresh = true
      schedule()
      drop('overflow', out)
      // `undefined` (or a toJSON giving it) has no JSON: a missing key, as the receiver reads it.
      if (text !== undefined) e.payload = JSON.parse(text)
      return e
    },
    commit,
    next() {
      const item = pull()
      return item && decode(item)
    },
    nextJson() {
      const item = pull()
      return item && item.j
    },
    sent: (id) => !settings.ack && settle(id, true),
    ack: (id) => settle(id, true),
    rewind() {
      sentTo = 0
    },
    remove: (id) => settle(id),
    list() {
      load()
      const out: Envelope[] = []
      queue.each((item) => {
        out.push(decode(item))
      })
      return out
    },
    get size() {
      load()
      return queue.size
    },
    get bytes() {
      load()
      return bytes
    },
    load,
    dispose() {
      commit()
      if (owner) owner.close()
      due = false
      clearTimeout(timer)
      timer = undefined
    },
  }

  /** What `next()` hands out: see its description in types.ts. */
  function pull(): Item | undefined {
    load()
    // Part of the queue is unread: whatever is handed out now could overtake it.
    if (!loaded) return
    // Only new messages must be stored before they are sent; removals wait for the end of the
    // task, so the acks of one task cost one write, not one per ack.
    if (fresh) commit()
    const expired: Item[] = []
    let found: Item | undefined
    let flying = 0
    const time = settings.now()
    // In-flight items are a prefix of the queue: handed out in order, all waiting again on rewind.
    queue.each((item) => {
      if (item.s <= sentTo) flying++
      else if (flying >= settings.window) return true
      else if (expiryOf(item.j) <= time) expired.push(item)
      else {
        found = item
        return true
      }
    })
    // In flight before the drop is reported, so a listener that calls next() gets the one after.
    if (found) sentTo = found.s
    drop('expired', expired)
    return found
  }
}

/**
 * The outbox: a durable, bounded queue that hands messages to the socket in `seq` order.
 *
 * Durability point. `enqueue()` queues in memory and schedules `commit()` with `setTimeout(0)`;
 * `next()` commits first whenever something was enqueued since the last commit. So a message is
 * in storage by the end of the macrotask that queued it, and always before the socket can see it
 * (the bus only learns of a message through `next()`). Enqueues of one synchronous run share one
 * write. Storage writes are synchronous on every platform mpbus supports (the `*StorageSync` APIs,
 * localStorage, the Node file store), so a message survives a kill once `set` has returned. An
 * asynchronous store would move that point to whenever its write lands: a kill before then loses
 * what the write carried, though the message may already be on the wire. A failed write (quota)
 * keeps the message in memory, where it is still sent, reports `STORAGE_FULL`, and is retried by
 * the next commit (the next enqueue or removal schedules one; `commit()` runs one at once).
 *
 * Storage layout v1, every key under `${prefix}/`:
 * - `${prefix}/${seq}`: one record per commit, named by the seq of its first envelope, value
 *   `{"v":1,"m":[envelope, ...]}`, at most RECORD bytes. Sorting the listed keys recovers the
 *   order, so an enqueue writes its own batch and nothing else.
 * - `${prefix}/seq`: the mark, `[low, next]`. Every envelope below `low` has left the queue, so
 *   load skips them; `next` is the next seq at that time, so a drained queue never restarts or
 *   reuses seqs after a reload. Delivering in order (the usual case) only moves `low`: one tiny
 *   write per commit, whatever the size of the record being drained, which is deleted once
 *   empty. An envelope that leaves out of order (an ack out of order, `remove()` of a later one,
 *   an overflow or expiry behind one in flight) has its record rewritten without it, once per
 *   commit. The mark is written at most once per commit, when `low` moved or an envelope at or
 *   above its `next` left, and before any record is rewritten or deleted.
 * Load merges runs of small neighbouring records (see COMPACT); nothing else rewrites a record.
 */
import mitt, { type Emitter } from 'mitt'
import { nanoid } from 'nanoid/non-secure'
import { withDefaults } from '../defaults'
import { describe, MpbusError } from '../errors'
import { toJson } from '../payload'
import type { Storage } from '../platform/types'
import { byteLength } from '../utf8'

export interface Envelope<P = unknown> {
  /** A nanoid made at enqueue and kept on every resend, so a server can drop repeats. */
  id: string
  /** Orders the queue; never wraps or restarts, across reloads too. */
  seq: number
  op: string
  /** Absent when it was `undefined` (JSON carries that as a missing key). */
  payload: P
  createdAt: number
  /** Dropped (and reported) when `next()` reaches it at or after this time. Absent for `ttl: Infinity`. */
  expiresAt?: number
}

export type DropReason = 'expired' | 'overflow'

export type OutboxEvents = {
  /** Envelopes that left the queue unsent; `error.code` is `EXPIRED` or `DROPPED`. */
  drop: { reason: DropReason; envelopes: Envelope[]; error: MpbusError }
  /** Left the queue: its send succeeded (ack off) or it was acknowledged (ack on). */
  delivered: Envelope
  /** `STORAGE_FULL`, `STORAGE_ERROR` or `CORRUPT_RECORD`: reported, never thrown from timers. */
  error: MpbusError
}

export interface OutboxOptions {
  /** Where the queue persists. None: memory only. */
  storage?: Storage
  /** Namespaces the keys, so two buses (or two users) on one storage never mix. @default 'mpbus' */
  prefix?: string
  /** @default 1000 */
  maxMessages?: number
  /** Sum of the envelopes' JSON in UTF-8 bytes. @default 512 * 1024 */
  maxBytes?: number
  /** ms a message may wait; `Infinity` keeps it until sent. @default 7 days */
  ttl?: number
  /** What a full queue does to a new message: refuse it (`OUTBOX_FULL`) or drop the oldest waiting ones. @default 'reject' */
  overflow?: 'reject' | 'dropOldest'
  /** A message leaves the queue on `ack(id)` instead of on `sent(id)`. @default false */
  ack?: boolean
  /** Most envelopes in flight at once. @default 32 */
  window?: number
  /** @default Date.now */
  now?: () => number
}

export interface Outbox {
  on: Emitter<OutboxEvents>['on']
  off: Emitter<OutboxEvents>['off']
  /**
   * Queues a message. Throws `MpbusError`: `BAD_PAYLOAD` (JSON cannot carry it: circular, BigInt,
   * function, symbol, NaN/Infinity, Map/Set), `TOO_LARGE` (one record could not hold it),
   * `OUTBOX_FULL` (policy `reject`, or nothing waiting is left to drop). Nothing is queued when it
   * throws. Durable at the next commit (see the top of this module).
   */
  enqueue(op: string, payload: unknown, options?: { ttl?: number }): Envelope
  /** Writes what was queued and removed since the last commit, and retries writes that failed. */
  commit(): void
  /**
   * The next envelope to send, in seq order, marked in flight; undefined when nothing waits or
   * `window` are in flight. Loads, commits first, and drops (and reports) expired envelopes it meets.
   */
  next(): Envelope | undefined
  /** The socket sent it. ack off: it leaves the queue (`delivered`) and is returned. ack on: it waits for `ack()`; undefined. */
  sent(id: string): Envelope | undefined
  /** The server acknowledged `id`: it leaves the queue (`delivered`) and is returned; undefined for unknown ids. */
  ack(id: string): Envelope | undefined
  /** The link went away: everything in flight is sent again first, in seq order, same ids. */
  rewind(): void
  /** Removes a queued envelope unsent (a request that timed out) and returns it; undefined for unknown ids. */
  remove(id: string): Envelope | undefined
  /** Queued envelopes, waiting and in flight, in seq order. */
  list(): Envelope[]
  readonly size: number
  readonly bytes: number
  /** Reads storage once; later calls do nothing. enqueue/next/list/size/bytes call it. */
  load(): void
  /** Commits what is pending and cancels the outbox's timer. */
  dispose(): void
}

type Settings = Required<Omit<OutboxOptions, 'storage'>> & Pick<OutboxOptions, 'storage'>

const DEFAULTS: Settings = {
  prefix: 'mpbus',
  maxMessages: 1000,
  maxBytes: 512 * 1024,
  ttl: 7 * 24 * 3600e3,
  overflow: 'reject',
  ack: false,
  window: 32,
  now: Date.now,
  storage: undefined,
}

/**
 * Largest record in UTF-8 bytes: keys are kept under 100 KB (Alipay allows 200 KB a key,
 * docs/platforms.md). Platforms store the string as JSON text, whose escaped quotes add ~15%.
 */
const RECORD = 90 * 1024
/**
 * Load merges runs of neighbouring records up to this size. A queue filled one message per tick
 * while offline is one record per message: merging them once makes every later start-up read a
 * few keys instead of hundreds (sync reads at start-up slow mini programs, docs/platforms.md).
 * Small, since an out-of-order removal rewrites the whole record.
 */
const COMPACT = 16 * 1024
/** The bytes of `{"v":1,"m":[]}` around the envelopes. */
const FRAME = 14

/** A queued envelope, its JSON, that JSON's size, the key of its stored record, whether it is in flight. */
interface Item {
  e: Envelope
  j: string
  n: number
  k?: string
  f?: boolean
}

/** Serializes an envelope under the payload rule (src/payload.ts): `BAD_PAYLOAD` for what JSON would change. */
const encode = (envelope: Envelope): string => toJson(envelope)

function pack(items: Item[]): string {
  return `{"v":1,"m":[${items.map((item) => item.j).join()}]}`
}

/** The envelopes of a stored record, or undefined when it is not one this version wrote. */
function unpack(raw: string | undefined): Envelope[] | undefined {
  try {
    const record = JSON.parse(raw!)
    // A seq is what load orders and skips by; JSON.parse catches the usual damage (a cut-off write).
    if (record.v === 1 && record.m.every((e: Envelope) => Number.isSafeInteger(e.seq))) return record.m
  } catch {}
}

export function createOutbox(options: OutboxOptions = {}): Outbox {
  // An option given as `undefined` keeps its default, as it would in a destructuring.
  const settings = withDefaults(DEFAULTS, options)
  /** Dropped when storage cannot be read: writing blind could overwrite records it did not see. */
  let store = settings.storage
  const events = mitt<OutboxEvents>()
  const dir = settings.prefix + '/'
  const markKey = dir + 'seq'
  /**
   * Queued items in seq order. The unstored ones are a suffix, the in-flight ones a prefix, and
   * the items of one record are neighbours.
   */
  const queue: Item[] = []
  /** Keys of the records to rewrite with their queued items (or delete if none) at the next commit, in order. */
  const dirty: string[] = []
  let seq = 1
  /** The mark as stored (see the top of this module). */
  let low = 0
  let high = 0
  /** An envelope at or above `high` left: the next commit writes the mark before anything else. */
  let lowered = false
  let bytes = 0
  let loaded = false
  /** Enqueued since the last commit: `next()` must commit before it hands anything out. */
  let fresh = false
  let timer: ReturnType<typeof setTimeout> | undefined

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

  function schedule(): void {
    if (store && !timer) timer = setTimeout(commit, 0)
  }

  function touch(key: string): void {
    if (dirty.indexOf(key) < 0) dirty.push(key)
  }

  /** The lowest seq still queued: what the mark's `low` should say. */
  function head(): number {
    return queue.length ? queue[0]!.e.seq : seq
  }

  function track(e: Envelope, j: string): Item {
    const item = { e, j, n: byteLength(j) }
    queue.push(item)
    bytes += item.n
    return item
  }

  /** Takes an item out of the queue; storage follows at the next commit. */
  function take(item: Item): void {
    // Delivery takes the head almost always: shift() is cheap where splice() moves every item.
    const index = queue[0] === item ? 0 : queue.indexOf(item)
    if (index) queue.splice(index, 1)
    else queue.shift()
    bytes -= item.n
    if (item.e.seq >= high) lowered = true
    // The head of the queue leaves under the low mark, with no rewrite, and its record goes once
    // the new head is not in it; anything else leaves a gap that only a rewrite can close.
    if (item.k && (index || queue[0]?.k !== item.k)) touch(item.k)
    schedule()
  }

  function drop(reason: DropReason, items: Item[]): void {
    if (!items.length) return
    items.forEach(take)
    events.emit('drop', {
      reason,
      envelopes: items.map((item) => item.e),
      error: new MpbusError(reason === 'expired' ? 'EXPIRED' : 'DROPPED', reason),
    })
  }

  /**
   * The oldest waiting items to drop so that `n` more bytes fit, if the policy allows. The caller
   * drops them once its item is queued: a `drop` listener may enqueue, and must get the next seq.
   */
  function makeRoom(n: number): Item[] {
    let count = queue.length + 1
    let size = bytes + n
    const full = () => count > settings.maxMessages || size > settings.maxBytes
    // The common case, room to spare, must not walk the queue: enqueue stays O(1).
    if (!full()) return []
    const out: Item[] = []
    for (const item of queue)
      if (full() && settings.overflow === 'dropOldest' && !item.f) {
        out.push(item)
        count--
        size -= item.n
      }
    if (full()) throw new MpbusError('OUTBOX_FULL', 'outbox full')
    return out
  }

  /** Takes `id` out of the queue, reporting it `delivered` if asked; false for unknown ids. */
  /** Takes `id` out of the queue; returns its envelope, or undefined for an unknown id. */
  function settle(id: string, delivered?: boolean): Envelope | undefined {
    const item = queue.find((item) => item.e.id === id)
    if (item) {
      take(item)
      if (delivered) events.emit('delivered', item.e)
    }
    return item && item.e
  }

  function commit(): void {
    clearTimeout(timer)
    timer = undefined
    fresh = false
    if (!store) return
    const next = head()
    if ((next > low || lowered) && attempt('set', markKey, JSON.stringify([next, seq]))) {
      low = next
      high = seq
      lowered = false
    }
    // Rewrites and deletes wait for the mark (without it, a kill could bring back an older seq),
    // and stop at the first failure: a merged record must be written before its parts go.
    if (!lowered)
      while (dirty.length) {
        const key = dirty[0]!
        const items = queue.filter((item) => item.k === key)
        if (!attempt(items.length ? 'set' : 'del', key, pack(items))) break
        dirty.shift()
      }
    // New items, in records of at most RECORD bytes. Stop at the first failure so the
    // unstored items stay a suffix of the queue (and keys keep following seq order).
    const items = queue.filter((item) => !item.k)
    while (items.length) {
      let end = 1
      let size = FRAME + items[0]!.n
      while (end < items.length && size + items[end]!.n + 1 <= RECORD) size += items[end++]!.n + 1
      const batch = items.splice(0, end)
      const key = dir + batch[0]!.e.seq
      if (!attempt('set', key, pack(batch))) return
      for (const item of batch) item.k = key
    }
  }

  /**
   * Loads the records in seq order, skipping envelopes below the mark's `low` and any seen
   * already (a merge cut short by a kill leaves duplicates), and merges runs of small neighbours
   * (up to COMPACT bytes) into the first of the run: commit rewrites that one before it deletes
   * the rest. A read that fails stops the load, and storage is not used again (see `store`).
   */
  function load(): void {
    if (loaded) return
    loaded = true
    held = []
    restore()
    const tail = queue[queue.length - 1]
    seq = Math.max(seq, high, low, tail ? tail.e.seq + 1 : 0)
    // Nothing below the head is left to skip: counting the mark as written saves a write.
    low = head()
    schedule()
    const errors = held
    held = undefined
    errors.forEach(report)
  }

  function restore(): void {
    const read = (key?: string) => {
      const ok = attempt(key ? 'get' : 'keys', key)
      if (!ok) store = undefined
      return ok
    }
    if (!store || !read()) return
    const keys: string[] = got
    if (!read(markKey)) return
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
      if (!read(key)) return
      const raw: string = got
      const envelopes = unpack(raw)
      if (!envelopes) {
        report(new MpbusError('CORRUPT_RECORD', key, raw))
        attempt('del', key)
        continue
      }
      if (!(run && size + raw.length <= COMPACT)) {
        run = key
        size = 0
      }
      size += raw.length
      let kept = false
      for (const e of envelopes)
        if (e.seq > last) {
          last = e.seq
          track(e, JSON.stringify(e)).k = run
          kept = true
        }
      if (!kept) {
        // Nothing in it is queued any more (delivered, or loaded already): deleted, and no run starts here.
        touch(key)
        if (run === key) run = ''
      } else if (run !== key) {
        // Merged into the run: commit rewrites the run's record first, then deletes this one.
        touch(run)
        touch(key)
      }
    }
  }

  return {
    on: events.on,
    off: events.off,
    enqueue(op, payload, options) {
      load()
      const createdAt = settings.now()
      const life = options && options.ttl !== undefined ? options.ttl : settings.ttl
      const draft: Envelope = { id: nanoid(), seq, op, payload, createdAt }
      if (life < Infinity) draft.expiresAt = createdAt + life
      const j = encode(draft)
      const n = byteLength(j)
      if (n + FRAME > RECORD) throw new MpbusError('TOO_LARGE', `${n} bytes`)
      const out = makeRoom(n)
      seq++
      // The queue holds what storage holds: a later change to `payload` by the caller does not leak in.
      const item = track(JSON.parse(j), j)
      fresh = true
      schedule()
      drop('overflow', out)
      return item.e
    },
    commit,
    next() {
      load()
      // Only new messages must be stored before they are sent; removals wait for the timer,
      // so the acks of one tick cost one write, not one per ack.
      if (fresh) commit()
      const expired: Item[] = []
      let found: Item | undefined
      let flying = 0
      const time = settings.now()
      // In-flight items are a prefix of the queue: handed out in order, all waiting again on rewind.
      for (const item of queue) {
        if (item.f) flying++
        else if (flying >= settings.window) break
        else if ((item.e.expiresAt as number) <= time) expired.push(item)
        else {
          found = item
          break
        }
      }
      // In flight before the drop is reported, so a listener that calls next() gets the one after.
      if (found) found.f = true
      drop('expired', expired)
      return found && found.e
    },
    sent: (id) => (settings.ack ? undefined : settle(id, true)),
    ack: (id) => settle(id, true),
    rewind() {
      for (const item of queue) item.f = false
    },
    remove: (id) => settle(id),
    list() {
      load()
      return queue.map((item) => item.e)
    },
    get size() {
      load()
      return queue.length
    },
    get bytes() {
      load()
      return bytes
    },
    load,
    dispose: commit,
  }
}

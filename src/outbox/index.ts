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
 *   order, so an enqueue writes its own batch and nothing else. When some envelopes of a record
 *   leave, the record is rewritten with the rest (once per commit); when all have, it is deleted.
 * - `${prefix}/seq`: the next seq, written before a commit removes an envelope at or above the
 *   mark last written there (a drained queue would otherwise restart seq, or reuse it, after a reload).
 */
import mitt, { type Emitter } from 'mitt'
import { nanoid } from 'nanoid/non-secure'
import { describe, MpbusError } from '../errors'
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
  /** The socket sent it. ack off: it leaves the queue (`delivered`). ack on: it waits for `ack()`. */
  sent(id: string): void
  /** The server acknowledged `id`: it leaves the queue (`delivered`). False for unknown ids. */
  ack(id: string): boolean
  /** The link went away: everything in flight is sent again first, in seq order, same ids. */
  rewind(): void
  /** Removes a queued envelope unsent (a request that timed out). False for unknown ids. */
  remove(id: string): boolean
  /** Queued envelopes, waiting and in flight, in seq order. */
  list(): Envelope[]
  readonly size: number
  readonly bytes: number
  /** Reads storage once; later calls do nothing. enqueue/next/list/size/bytes call it. */
  load(): void
  /** Commits what is pending and cancels the outbox's timer. */
  dispose(): void
}

const DEFAULTS = {
  prefix: 'mpbus',
  maxMessages: 1000,
  maxBytes: 512 * 1024,
  ttl: 7 * 24 * 3600e3,
  overflow: 'reject',
  ack: false,
  window: 32,
  now: Date.now,
}

/**
 * Largest record in UTF-8 bytes: issue 4 keeps keys under 100 KB (Alipay allows 200 KB a key,
 * platform-facts §4). Platforms store the string as JSON text, whose escaped quotes add ~15%.
 */
const RECORD = 90 * 1024
/** Load merges runs of neighbouring records up to this size; small, since a record is rewritten as it drains. */
const COMPACT = 16 * 1024
/** The bytes of `{"v":1,"m":[]}` around the envelopes. */
const FRAME = 14

/** A queued envelope, its JSON, that JSON's size, its stored record, whether it is in flight. */
interface Item {
  e: Envelope
  j: string
  n: number
  r?: Rec
  f?: boolean
}

/** A stored record: its key and the queued items it holds. */
interface Rec {
  k: string
  m: Item[]
}

/** Serializes an envelope, refusing what JSON would silently change or lose. */
function encode(envelope: Envelope): string {
  try {
    return JSON.stringify(envelope, (key, value) => {
      const type = typeof value
      if (
        type === 'function' ||
        type === 'symbol' ||
        (type === 'number' && !Number.isFinite(value)) ||
        value instanceof Map ||
        value instanceof Set
      )
        throw new TypeError(`'${key}' is ${String(value)}`)
      return value
    })
  } catch (cause) {
    throw new MpbusError('BAD_PAYLOAD', `${envelope.op}: ${describe(cause)}`, cause)
  }
}

function pack(items: Item[]): string {
  return `{"v":1,"m":[${items.map((item) => item.j).join()}]}`
}

/** The envelopes of a stored record, or undefined when it is not one this version wrote. */
function unpack(raw: string | undefined): Envelope[] | undefined {
  try {
    const record = JSON.parse(raw!)
    if (record.v === 1 && record.m.every(isEnvelope)) return record.m
  } catch {}
}

/** Enough of an envelope to queue and order it; anything less is a corrupt record. */
function isEnvelope(e: any): boolean {
  return Number.isSafeInteger(e.seq) && typeof e.id === 'string' && typeof e.op === 'string'
}

export function createOutbox(options: OutboxOptions = {}): Outbox {
  const {
    prefix = DEFAULTS.prefix,
    maxMessages = DEFAULTS.maxMessages,
    maxBytes = DEFAULTS.maxBytes,
    ttl = DEFAULTS.ttl,
    overflow = DEFAULTS.overflow,
    ack = DEFAULTS.ack,
    window = DEFAULTS.window,
    now = DEFAULTS.now,
  } = options
  /** Dropped when storage cannot be read: writing blind could overwrite records it did not see. */
  let store = options.storage
  const events = mitt<OutboxEvents>()
  const dir = prefix + '/'
  const seqKey = dir + 'seq'
  /** Queued items in seq order; the unstored ones are always a suffix. */
  const queue: Item[] = []
  /** Records to rewrite or delete at the next commit. */
  let dirty: Rec[] = []
  let seq = 1
  /** Seqs below it are covered by `seqKey` in storage. */
  let mark = 0
  /** An envelope at or above `mark` left: the next commit writes `seqKey` before anything else. */
  let lowered = false
  let bytes = 0
  let flying = 0
  let loaded = false
  /** Enqueued since the last commit: `next()` must commit before it hands anything out. */
  let fresh = false
  let timer: ReturnType<typeof setTimeout> | undefined

  function report(cause: unknown): void {
    events.emit(
      'error',
      cause instanceof MpbusError ? cause : new MpbusError('STORAGE_ERROR', describe(cause), cause),
    )
  }

  /** Runs one storage call; a failure is reported, never thrown. */
  function attempt(call: (storage: Storage) => void): boolean {
    try {
      call(store!)
      return true
    } catch (error) {
      report(error)
      return false
    }
  }

  function schedule(): void {
    if (store && !timer) timer = setTimeout(commit, 0)
  }

  function track(e: Envelope, j: string): Item {
    const item = { e, j, n: byteLength(j) }
    queue.push(item)
    bytes += item.n
    return item
  }

  /** Takes an item out of the queue; its record is rewritten at the next commit. */
  function take(item: Item): void {
    queue.splice(queue.indexOf(item), 1)
    bytes -= item.n
    if (item.f) flying--
    if (item.e.seq >= mark) lowered = true
    const record = item.r
    if (record) {
      record.m.splice(record.m.indexOf(item), 1)
      if (dirty.indexOf(record) < 0) dirty.push(record)
    }
    schedule()
  }

  function drop(reason: DropReason, items: Item[]): void {
    if (!items.length) return
    items.forEach(take)
    const expired = reason === 'expired'
    events.emit('drop', {
      reason,
      envelopes: items.map((item) => item.e),
      error: new MpbusError(expired ? 'EXPIRED' : 'DROPPED', `${items.length} ${reason}`),
    })
  }

  /** Makes room for `n` more bytes, dropping the oldest waiting items if the policy allows. */
  function makeRoom(n: number): void {
    let count = queue.length + 1
    let size = bytes + n
    const out: Item[] = []
    for (const item of queue) {
      if ((count <= maxMessages && size <= maxBytes) || overflow !== 'dropOldest') break
      if (!item.f) {
        out.push(item)
        count--
        size -= item.n
      }
    }
    if (count > maxMessages || size > maxBytes)
      throw new MpbusError('OUTBOX_FULL', `${queue.length} messages, ${bytes} bytes`)
    drop('overflow', out)
  }

  function pull(id: string): Item | undefined {
    const item = queue.find((item) => item.e.id === id)
    if (item) take(item)
    return item
  }

  function settle(id: string): boolean {
    const item = pull(id)
    if (item) events.emit('delivered', item.e)
    return !!item
  }

  /** Writes `items` as one record under `key`. */
  function put(key: string, items: Item[]): boolean {
    const record = { k: key, m: items }
    const ok = attempt((s) => s.set(key, pack(items)))
    if (ok) for (const item of items) item.r = record
    return ok
  }

  function commit(): void {
    clearTimeout(timer)
    timer = undefined
    fresh = false
    if (!store) return
    if (lowered && attempt((s) => s.set(seqKey, String(seq)))) {
      lowered = false
      mark = seq
    }
    // Removals wait for the seq mark: without it, a kill could bring back an older seq.
    if (!lowered)
      dirty = dirty.filter((r) => !attempt((s) => (r.m.length ? s.set(r.k, pack(r.m)) : s.del(r.k))))
    // New items, in records of at most RECORD bytes. Stop at the first failure so the
    // unstored items stay a suffix of the queue (and keys keep following seq order).
    let start = queue.length
    while (start && !queue[start - 1]!.r) start--
    while (start < queue.length) {
      let end = start + 1
      let size = FRAME + queue[start]!.n
      while (end < queue.length && size + queue[end]!.n + 1 <= RECORD) size += queue[end++]!.n + 1
      if (!put(dir + queue[start]!.e.seq, queue.slice(start, end))) return
      start = end
    }
  }

  /**
   * Loads the records in seq order, and merges runs of small neighbours (up to COMPACT bytes) into
   * their first: every record was just read anyway, and a merge saves a read per record at each
   * later load and a delete each as they drain. The merged record is written before the rest are
   * deleted; a kill in between leaves duplicates that the next load skips. A read that fails stops
   * the load, and storage is not used again (see `store`).
   */
  function load(): void {
    if (loaded) return
    loaded = true
    let keys: string[] = []
    let raw: string | undefined
    const get = (key: string) => {
      const ok = attempt((s) => {
        raw = s.get(key)
      })
      if (!ok) store = undefined
      return ok
    }
    if (
      !store ||
      !attempt((s) => {
        keys = s.keys()
      })
    )
      return
    if (keys.indexOf(seqKey) >= 0 && get(seqKey)) seq = mark = Number(raw) || 0
    const firsts = keys
      .map((key) => key.slice(dir.length))
      .filter((name, i) => keys[i] === dir + name && /^[1-9]\d*$/.test(name))
      .map(Number)
      .sort((a, b) => a - b)
    let last = 0
    let run: Rec[] = []
    let size = 0
    const merge = () => {
      const m = ([] as Item[]).concat(...run.map((r) => r.m))
      if (run.length > 1 && put(run[0]!.k, m))
        for (const r of run.slice(1)) {
          r.m = []
          dirty.push(r)
        }
      run = []
      size = 0
    }
    for (const first of firsts) {
      const key = dir + first
      if (!get(key)) return
      const envelopes = unpack(raw)
      if (!envelopes) {
        report(new MpbusError('CORRUPT_RECORD', key, raw))
        attempt((s) => s.del(key))
        continue
      }
      const record: Rec = { k: key, m: [] }
      // Envelopes at or below `last` were loaded already: a compaction was cut short by a kill.
      for (const e of envelopes) if (e.seq > last) record.m.push(track(e, JSON.stringify(e)))
      for (const item of record.m) item.r = record
      if (record.m.length < envelopes.length) dirty.push(record)
      if (!record.m.length) continue
      last = record.m[record.m.length - 1]!.e.seq
      // Chars, not bytes: at most 3 x COMPACT bytes, still well under RECORD.
      if (size + raw!.length > COMPACT) merge()
      run.push(record)
      size += raw!.length
    }
    merge()
    seq = Math.max(seq, last + 1)
    schedule()
  }

  return {
    on: events.on,
    off: events.off,
    enqueue(op, payload, options) {
      load()
      const createdAt = now()
      const life = options && options.ttl !== undefined ? options.ttl : ttl
      const draft: Envelope = { id: nanoid(), seq, op, payload, createdAt }
      if (life < Infinity) draft.expiresAt = createdAt + life
      const j = encode(draft)
      const n = byteLength(j)
      if (n + FRAME > RECORD) throw new MpbusError('TOO_LARGE', `${op}: ${n} bytes`)
      makeRoom(n)
      seq++
      // The queue holds what storage holds: a later change to `payload` by the caller does not leak in.
      const item = track(JSON.parse(j), j)
      fresh = true
      schedule()
      return item.e
    },
    commit,
    next() {
      load()
      // Only new messages must be stored before they are sent; removals wait for the timer,
      // so the acks of one tick cost one rewrite per record, not one per ack.
      if (fresh) commit()
      const expired: Item[] = []
      let found: Item | undefined
      const time = now()
      if (flying < window)
        for (const item of queue) {
          if (item.f) continue
          if ((item.e.expiresAt as number) <= time) expired.push(item)
          else {
            found = item
            break
          }
        }
      drop('expired', expired)
      if (found) {
        found.f = true
        flying++
        return found.e
      }
    },
    sent(id) {
      if (!ack) settle(id)
    },
    ack: settle,
    rewind() {
      for (const item of queue) item.f = false
      flying = 0
    },
    remove: (id) => !!pull(id),
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

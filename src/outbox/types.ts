import type { Emitter } from 'mitt'
import type { MpbusError } from '../errors'
import type { Claim, Storage } from '../platform/types'

export interface Envelope<P = unknown> {
  /** Made at enqueue (a random part per outbox and the seq given then) and kept on every resend, so a server can drop repeats. */
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
  /** The queue was read, or orphans adopted, after a wait: what is queued may be sent. */
  load: undefined
  /** Envelopes that left the queue unsent; `error.code` is `EXPIRED` or `DROPPED`. */
  drop: { reason: DropReason; envelopes: Envelope[]; error: MpbusError }
  /** Left the queue: its send succeeded (ack off) or it was acknowledged (ack on). Decoded for its own listeners only (not `'*'`). */
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
  /**
   * Most envelopes in flight at once. Acks come back once per round trip, so the window caps
   * throughput at `window` per round trip (32 on a 200 ms phone link: 160 messages a second); a
   * drop resends at most this many, with the same ids. @default 256
   */
  window?: number
  /** @default Date.now */
  now?: () => number
  /**
   * Other outboxes may use this storage and prefix (a bus always says so): each then writes a
   * namespace of its own and adopts what closed ones left (owner.ts). `true`: told apart within
   * this JS context; a `Claim` (the platform's `share`, src/platform/web-locks.ts) also across
   * contexts (tabs).
   * None: this outbox is alone on its prefix.
   */
  share?: true | Claim
}

export interface Outbox {
  on: Emitter<OutboxEvents>['on']
  off: Emitter<OutboxEvents>['off']
  /**
   * Queues a message. Throws `MpbusError`: `BAD_PAYLOAD` (JSON cannot carry it: circular, BigInt,
   * function, symbol, NaN/Infinity, Map/Set), `TOO_LARGE` (one record could not hold it),
   * `OUTBOX_FULL` (policy `reject`, or nothing waiting is left to drop). Nothing is queued when it
   * throws. Durable at the next commit (see the top of store.ts).
   */
  enqueue(op: string, payload: unknown, options?: { ttl?: number }): Envelope
  /**
   * Writes, synchronously, what was queued and removed since the last commit, and retries writes
   * that failed. Before the queue is loaded it writes nothing (it would overwrite what it has not read).
   */
  commit(): void
  /**
   * The next envelope to send, in seq order, marked in flight: its id and its JSON, not decoded
   * (the bus splices its frame from it: `frameOf` in record.ts). Undefined when nothing waits or
   * `window` are in flight. Loads, commits first, and drops (and reports) expired envelopes it meets.
   */
  next(): { id: string; json: string } | undefined
  /**
   * The socket sent it. ack off: it leaves the queue (`delivered`): true. ack on: it waits for
   * `ack()`, and the result is false, as for an unknown id.
   */
  sent(id: string): boolean
  /** The server acknowledged `id`: it leaves the queue (`delivered`): true; false for unknown ids. */
  ack(id: string): boolean
  /** The link went away: everything in flight is sent again first, in seq order, same ids. */
  rewind(): void
  /** Removes a queued envelope unsent (a request that timed out). False for unknown ids. */
  remove(id: string): boolean
  /** Queued envelopes, waiting and in flight, in seq order. */
  list(): Envelope[]
  readonly size: number
  readonly bytes: number
  /**
   * Reads storage once; later calls do nothing. enqueue/next/list/size/bytes call it. A read that
   * fails is retried by the outbox's timer (see the top of store.ts); until the queue is read,
   * `next()` hands nothing out and new messages wait in memory behind what storage holds.
   */
  load(): void
  /** Commits what is pending (when the queue was loaded) and cancels the outbox's timer. */
  dispose(): void
}

/** The options with every default applied: src/bus/options.ts declares the defaults. */
export type OutboxSettings = Required<Omit<OutboxOptions, 'storage' | 'share'>> &
  Pick<OutboxOptions, 'storage' | 'share'>

/**
 * Largest record in UTF-8 bytes: keys are kept under 100 KB (Alipay allows 200 KB a key,
 * docs/platforms.md). Platforms store the string as JSON text, whose escaped quotes add ~15%.
 */
export const RECORD = 90 * 1024
/**
 * Load merges runs of neighbouring records up to this size. A queue filled one message per tick
 * while offline is one record per message: merging them once makes every later start-up read a
 * few keys instead of hundreds (sync reads at start-up slow mini programs, docs/platforms.md).
 * Small, since an out-of-order removal rewrites the whole record.
 */
export const COMPACT = 16 * 1024
/** The bytes of `{"v":1,"m":[]}` around the envelopes. */
export const FRAME = 14
/** Bytes an envelope adds to a record beside its JSON: a comma. */
export const EACH = 1
/** ms between retries of a write refused (quota) or a read that failed. */
export const RETRY = 500
/** A read that fails this many times in a row: a record is reported corrupt, a key list or mark gives up storage. */
export const TRIES = 3

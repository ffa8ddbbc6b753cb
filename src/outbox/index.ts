/**
 * The outbox: a durable, bounded queue that hands messages to the socket in `seq` order. This
 * module is the queue (enqueue, next, settle, the bounds); store.ts reads and writes it, and
 * says when a message is durable (before `next()` can hand it out).
 */
import mitt from 'mitt'
import { MpbusError } from '../errors'
import { toJson } from '../payload'
import { byteLength } from '../utf8'
import { createLine } from './line'
import { decode, encode, expiryOf, type Item, idOf, sizeOf } from './record'
import { createStore } from './store'
import {
  type DropReason,
  EACH,
  type Envelope,
  FRAME,
  type Outbox,
  type OutboxEvents,
  type OutboxSettings,
  RECORD,
} from './types'

export type { DropReason, Envelope, Outbox, OutboxEvents, OutboxOptions, OutboxSettings } from './types'

/** Settings as the bus resolves them (src/bus/options.ts: `outboxSettings`); nothing is defaulted here. */
export function createOutbox(settings: OutboxSettings): Outbox {
  const events = mitt<OutboxEvents>()
  /**
   * Queued items in seq order. The unstored ones are a suffix, the in-flight ones a prefix, and
   * the items of one record are neighbours.
   */
  const line = createLine<Item>()
  /**
   * Queued items whose id does not end with their seq (`find`): renumbered, adopted, or made by an
   * older mpbus. The others need no entry: a Map entry per message would cost a third of its heap.
   */
  const moved = new Map<string, Item>()
  let seq = 1
  /**
   * Ids: a random part per outbox (about 100 bits, from Math.random as nanoid/non-secure's are) and
   * the seq given at enqueue, which never goes back: unique across buses, devices and restarts,
   * without 21 random draws per message, and found by their seq.
   */
  const base = `${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}-`
  let bytes = 0
  /**
   * The seq of the last item handed out by `next()`: the queued ones up to it are in flight (a
   * prefix of the queue, handed out in order; none after a rewind).
   */
  let sentTo = 0

  /** Queues the envelope of seq `s` whose JSON is `j` (`n`: its size, when counted already). */
  function track(j: string, s: number, n = byteLength(j)): Item {
    const item: Item = { j, s, k: undefined }
    line.push(item)
    const id = idOf(j)
    if (seqOf(id) !== s) moved.set(id, item)
    bytes += n
    return item
  }

  /** The seq an id ends with, as this outbox makes them (`base` + seq in base 36); NaN or another for the rest. */
  const seqOf = (id: string) => parseInt(id.slice(id.lastIndexOf('-') + 1), 36)

  /** The queued item of `id`: by its seq, which ends the ids this outbox makes, or in `moved`. */
  function find(id: string): Item | undefined {
    const item = moved.get(id) || line.find(seqOf(id))
    return item && item.j && idOf(item.j) === id ? item : undefined
  }

  const store = createStore(settings, events, {
    line,
    track,
    mark() {
      const item = line.head()
      return [item ? item.s : seq, seq]
    },
    append(e, again) {
      const item = find(e.id)
      if (item && !again) return false
      if (item) take(item)
      e.seq = seq++
      track(encode(e), e.seq)
      return true
    },
    clear() {
      moved.clear()
      bytes = 0
      return line.drain()
    },
    skip(n) {
      seq = Math.max(seq, n)
    },
  })
  const load = store.load

  /** Takes an item out of the queue (emptying its text); storage follows at the next commit. */
  function take(item: Item): void {
    const first = line.head() === item
    if (moved.size) moved.delete(idOf(item.j))
    bytes -= sizeOf(item)
    line.remove(item)
    store.left(item, first)
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
    let count = line.size + 1
    let size = bytes + n
    const full = () => count > settings.maxMessages || size > settings.maxBytes
    // The common case, room to spare, must not walk the queue: enqueue stays O(1).
    if (!full()) return []
    const out: Item[] = []
    if (settings.overflow === 'dropOldest')
      line.each((item) => {
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

  /** The next item to hand out, marked in flight: see `next()` in types.ts. */
  function next(): { id: string; json: string } | undefined {
    if (!store.ready()) return
    const expired: Item[] = []
    let found: Item | undefined
    let flying = 0
    const time = settings.now()
    // In-flight items are a prefix of the queue: handed out in order, all waiting again on rewind.
    line.each((item) => {
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
    return found && { id: idOf(found.j), json: found.j }
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
      store.added()
      drop('overflow', out)
      // `undefined` (or a toJSON giving it) has no JSON: a missing key, as the receiver reads it.
      if (text !== undefined) e.payload = JSON.parse(text)
      return e
    },
    commit: store.commit,
    next,
    sent: (id) => !settings.ack && settle(id, true),
    ack: (id) => settle(id, true),
    rewind() {
      sentTo = 0
    },
    remove: (id) => settle(id),
    list() {
      load()
      const out: Envelope[] = []
      line.each((item) => {
        out.push(decode(item))
      })
      return out
    },
    get size() {
      load()
      return line.size
    },
    get bytes() {
      load()
      return bytes
    },
    load,
    dispose: store.dispose,
  }
}

/**
 * Random runs of the outbox against a model of what may happen to each message: enqueue, hand out,
 * socket success, acknowledge, disconnect (rewind), commit, timers, crash-and-reload on the same
 * storage, a kill in the middle of a commit (after any number of its writes), quota on/off, a
 * corrupted record, time passing. Checked all along and at the end:
 * - the socket sees first sends in seq order (enqueue order), each with the payload it was queued with,
 *   and (while storage has not failed) only once it is in storage;
 * - `bytes` is the sum of the queued envelopes' sizes;
 * - nothing is handed out twice unless a rewind or a reload came in between, and nothing is
 *   delivered twice between two reloads;
 * - a message that a successful commit stored survives a crash, and one whose leaving a successful
 *   commit stored does not come back;
 * - after a final reload and drain, every message was delivered, or reported dropped (expired,
 *   overflow), or sat in a corrupted record, or was removed by the caller, or was lost to a crash
 *   before any commit stored it.
 */
import fc from 'fast-check'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import type { Envelope, Outbox } from '../src/outbox'
import type { Storage } from '../src/platform/types'
import { byteLength } from '../src/utf8'
import { createOutbox, nextOf } from './helpers/resolved'
import { useOutboxClock } from './outbox.clock'
import { createQuotaStorage } from './outbox.storage'

type Cmd =
  | { t: 'enqueue'; ttl?: number }
  | { t: 'next' }
  | { t: 'sent'; pick: number }
  | { t: 'ack'; pick: number }
  | { t: 'remove'; pick: number }
  | { t: 'rewind' }
  | { t: 'commit' }
  | { t: 'tick' }
  | { t: 'crash' }
  | { t: 'kill'; after: number }
  | { t: 'quota'; room?: number }
  | { t: 'corrupt'; pick: number }
  | { t: 'time'; ms: number }
  | { t: 'closeEarly' }
  | { t: 'failRead'; n: number }

const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      t: fc.constant('enqueue' as const),
      ttl: fc.option(fc.integer({ min: 0, max: 3000 }), { nil: undefined }),
    }),
  },
  { weight: 5, arbitrary: fc.constant({ t: 'next' as const }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('sent' as const), pick: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('ack' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.constant({ t: 'rewind' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'commit' as const }) },
  { weight: 2, arbitrary: fc.constant({ t: 'tick' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'crash' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('kill' as const), after: fc.nat(4) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('quota' as const),
      room: fc.option(fc.nat(2000), { nil: undefined, freq: 2 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('corrupt' as const), pick: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('time' as const), ms: fc.integer({ min: 1, max: 2000 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ t: 'closeEarly' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ t: fc.constant('failRead' as const), n: fc.integer({ min: 1, max: 2 }) }),
  },
)

const config = fc.record({
  ack: fc.boolean(),
  overflow: fc.constantFrom('reject' as const, 'dropOldest' as const),
  maxMessages: fc.integer({ min: 3, max: 30 }),
  window: fc.integer({ min: 1, max: 6 }),
})

beforeEach(() => {
  useOutboxClock()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Ids in the parsable outbox records of a storage. */
function storedIds(map: Map<string, string>): Set<string> {
  const ids = new Set<string>()
  for (const [key, value] of map) {
    if (!/^p\/\d+$/.test(key)) continue
    try {
      for (const e of JSON.parse(value).m) ids.add(e.id)
    } catch {}
  }
  return ids
}

interface Model {
  id: string
  seq: number
  exp?: number
  /** In flight. */
  f: boolean
}

type Config = typeof config extends fc.Arbitrary<infer T> ? T : never

function run(options: Config, cmds: Cmd[]): void {
  vi.clearAllTimers()
  let time = 0
  const storage = createQuotaStorage()
  /** Reads (get, keys) that fail before the next one works: a storage that fails now and then. */
  let failReads = 0
  const flaky: Storage = {
    get: (key) => {
      if (failReads > 0 && failReads--) throw new Error('read failed')
      return storage.get(key)
    },
    keys: () => {
      if (failReads > 0 && failReads--) throw new Error('read failed')
      return storage.keys()
    },
    set: (key, value) => storage.set(key, value),
    del: (key) => storage.del(key),
  }
  /** Every message ever queued: its seq and payload. */
  const queued = new Map<string, { seq: number; payload: number }>()
  /** What the outbox should hold, in seq order. */
  let model: Model[] = []
  const delivered = new Map<string, number>() // id -> run of the app that delivered it last
  const everDelivered = new Set<string>()
  const dropped = new Set<string>()
  const corrupted = new Set<string>()
  const removed = new Set<string>()
  const lost = new Set<string>()
  const durable = new Set<string>()
  /** Left the queue before a commit that reported no error: a reload must not bring them back. */
  const settled = new Set<string>()
  const handedEver = new Set<string>()
  let gen = 0
  let errors = 0
  let counter = 0
  let lastFirstSeq = 0
  let corruptFloor = 0
  let events: { drops: { reason: string; ids: string[] }[]; delivered: string[] } = {
    drops: [],
    delivered: [],
  }
  let outbox!: Outbox

  const boot = () => {
    const g = ++gen
    outbox = createOutbox({ storage: flaky, prefix: 'p', ttl: 10_000, now: () => time, ...options })
    lastFirstSeq = 0
    outbox.on('delivered', (e) => {
      if (g !== gen) throw new Error('an abandoned outbox emitted')
      expect(queued.has(e.id)).toBe(true)
      expect(delivered.get(e.id), `${e.id} delivered twice in one run of the app`).not.toBe(g)
      delivered.set(e.id, g)
      everDelivered.add(e.id)
      events.delivered.push(e.id)
    })
    outbox.on('drop', (d) => {
      expect(d.error.code).toBe(d.reason === 'expired' ? 'EXPIRED' : 'DROPPED')
      for (const e of d.envelopes) dropped.add(e.id)
      events.drops.push({ reason: d.reason, ids: d.envelopes.map((e) => e.id) })
    })
    outbox.on('error', (e) => {
      expect(['STORAGE_FULL', 'STORAGE_ERROR', 'CORRUPT_RECORD']).toContain(e.code)
      errors++
    })
  }

  /** Runs `f` and returns the events it caused. */
  const watch = (f: () => void) => {
    events = { drops: [], delivered: [] }
    f()
    return events
  }

  const handOut = (e: Envelope) => {
    const known = queued.get(e.id)
    expect(known, 'handed out something never queued').toBeDefined()
    expect([e.seq, e.payload]).toEqual([known!.seq, known!.payload])
    expect(delivered.get(e.id), 'handed out after delivery in the same run').not.toBe(gen)
    // The durability point: in storage before the socket sees it, while storage has not failed.
    if (!errors && storage.quota === Number.POSITIVE_INFINITY && !corrupted.has(e.id))
      expect(storedIds(storage.map).has(e.id), 'handed out before it was stored').toBe(true)
    if (!handedEver.has(e.id)) {
      expect(e.seq, 'first sends in seq order').toBeGreaterThan(lastFirstSeq)
      lastFirstSeq = e.seq
      handedEver.add(e.id)
    }
  }

  const next = () => {
    const flying = model.filter((m) => m.f).length
    const expired: string[] = []
    let expected: Model | undefined
    if (flying < options.window)
      for (const m of model) {
        if (m.f) continue
        if (m.exp !== undefined && m.exp <= time) expired.push(m.id)
        else {
          expected = m
          break
        }
      }
    let e: Envelope | undefined
    const seen = watch(() => {
      e = nextOf(outbox)
    })
    expect(seen.drops).toEqual(expired.length ? [{ reason: 'expired', ids: expired }] : [])
    expect(e?.id, 'next() hands out the first waiting message').toBe(expected?.id)
    model = model.filter((m) => !expired.includes(m.id))
    if (e) {
      handOut(e)
      expected!.f = true
    }
    return e
  }

  const settle = (id: string, how: 'sent' | 'ack') => {
    const leaves = how === 'ack' || !options.ack
    let result = false
    const seen = watch(() => {
      result = how === 'ack' ? outbox.ack(id) : outbox.sent(id)
    })
    expect(seen.delivered).toEqual(leaves ? [id] : [])
    expect(result).toBe(leaves)
    if (leaves) model = model.filter((m) => m.id !== id)
  }

  const crash = () => {
    // A dead process writes nothing more: its pending commit never runs.
    vi.clearAllTimers()
    storage.kill = undefined
    const inStorage = storedIds(storage.map)
    for (const id of durable) {
      const gone = everDelivered.has(id) || dropped.has(id) || corrupted.has(id) || removed.has(id)
      if (!gone) expect(inStorage.has(id), `${id} was committed but is not in storage`).toBe(true)
    }
    const before = model.map((m) => m.id)
    boot()
    outbox.load()
    // A failed read is tried again by the outbox's timer (at most twice in a row here).
    for (let i = 0; i < 3; i++) vi.advanceTimersByTime(500)
    const after = outbox.list()
    const seqs = after.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
    for (const e of after) expect(queued.get(e.id)?.seq).toBe(e.seq)
    for (const e of after) expect(settled.has(e.id), `${e.id} left, was committed, came back`).toBe(false)
    const kept = new Set(after.map((e) => e.id))
    for (const id of before) if (!kept.has(id) && !corrupted.has(id)) lost.add(id)
    for (const id of lost) expect(durable.has(id), `${id} was committed, then lost in a crash`).toBe(false)
    model = after.map((e) => ({ id: e.id, seq: e.seq, exp: e.expiresAt, f: false }))
  }

  boot()
  for (const c of cmds) {
    const flying = model.filter((m) => m.f)
    switch (c.t) {
      case 'enqueue': {
        const payload = counter++
        const waiting = model.filter((m) => !m.f)
        const need = model.length + 1 - options.maxMessages
        const refuse = need > 0 && (options.overflow === 'reject' || waiting.length < need)
        let e: Envelope | undefined
        const seen = watch(() => {
          try {
            e = outbox.enqueue('m', payload, c.ttl === undefined ? undefined : { ttl: c.ttl })
          } catch (error: any) {
            expect(error.code).toBe('OUTBOX_FULL')
          }
        })
        expect(!e, 'OUTBOX_FULL exactly when full').toBe(refuse)
        const drop = !refuse && need > 0 ? waiting.slice(0, need).map((m) => m.id) : []
        expect(seen.drops).toEqual(drop.length ? [{ reason: 'overflow', ids: drop }] : [])
        if (!e) break
        // seq never goes back below a stored message's, across reloads too (corruption aside).
        // (A corrupted record can take the only trace of the seqs up to its last with it.)
        for (const id of durable) {
          const { seq } = queued.get(id)!
          if (seq > corruptFloor) expect(e.seq, 'seq went back').toBeGreaterThan(seq)
        }
        queued.set(e.id, { seq: e.seq, payload })
        model = model.filter((m) => !drop.includes(m.id))
        model.push({ id: e.id, seq: e.seq, exp: e.expiresAt, f: false })
        break
      }
      case 'next':
        next()
        break
      case 'sent':
      case 'ack':
        if (flying.length) settle(flying[c.pick % flying.length]!.id, c.t)
        break
      case 'remove': {
        if (!model.length) break
        const { id } = model[c.pick % model.length]!
        expect(outbox.remove(id)).toBe(true)
        removed.add(id)
        model = model.filter((m) => m.id !== id)
        break
      }
      case 'rewind':
        outbox.rewind()
        for (const m of model) m.f = false
        break
      case 'commit': {
        const before = errors
        outbox.commit()
        if (errors === before) {
          for (const m of model) durable.add(m.id)
          for (const id of queued.keys()) if (!model.some((m) => m.id === id)) settled.add(id)
        }
        break
      }
      case 'tick':
        vi.runOnlyPendingTimers()
        break
      case 'crash':
        crash()
        break
      case 'kill':
        // Killed inside a commit, after `after` of its writes: what it had not written yet is
        // not durable, but nothing an earlier commit stored may be lost.
        storage.kill = c.after
        outbox.commit()
        crash()
        break
      case 'quota':
        storage.quota = c.room === undefined ? Number.POSITIVE_INFINITY : storage.used() + c.room
        break
      case 'corrupt': {
        const keys = Array.from(storage.map.keys()).filter((k) => /^p\/\d+$/.test(k))
        if (!keys.length) break
        const key = keys[c.pick % keys.length]!
        for (const id of storedIds(new Map([[key, storage.map.get(key)!]]))) {
          corrupted.add(id)
          corruptFloor = Math.max(corruptFloor, queued.get(id)!.seq)
        }
        storage.map.set(key, '{"v":1,"m":[{')
        break
      }
      case 'time':
        time += c.ms
        break
      case 'closeEarly':
        // A restart whose bus is closed before it loads anything: the mark must stay as it is.
        vi.clearAllTimers()
        storage.kill = undefined
        boot()
        outbox.dispose()
        crash()
        break
      case 'failRead':
        // The next start's first reads fail.
        failReads = c.n
        crash()
        break
    }
    expect(outbox.list().map((e) => e.id)).toEqual(model.map((m) => m.id))
    expect(outbox.size).toBe(model.length)
    const sum = outbox.list().reduce((n, e) => n + byteLength(JSON.stringify(e)), 0)
    expect(outbox.bytes, 'bytes is the sum of the queued envelopes').toBe(sum)
  }

  // Recovery: storage works again, the app restarts and drains everything.
  storage.quota = Number.POSITIVE_INFINITY
  crash()
  for (let e = next(); e; e = next()) settle(e.id, options.ack ? 'ack' : 'sent')
  expect(outbox.size).toBe(0)
  // Nothing is left behind: every record was deleted once nothing in it was queued.
  outbox.commit()
  expect(Array.from(storage.map.keys()).filter((k) => /^p\/\d+$/.test(k))).toEqual([])
  for (const id of queued.keys()) {
    const accounted =
      everDelivered.has(id) || dropped.has(id) || corrupted.has(id) || removed.has(id) || lost.has(id)
    expect(accounted, `${id} (${JSON.stringify(queued.get(id))}) vanished`).toBe(true)
  }
  vi.clearAllTimers()
}

// FC_RUNS=5000 npx vitest run test/outbox.property.test.ts for a longer search (given time to run).
const runs = Number(process.env.FC_RUNS) || 400

it(
  'keeps order, loses nothing unreported, and resends only after a rewind or reload',
  () => {
    fc.assert(
      fc.property(config, fc.array(cmd, { maxLength: 100, size: 'max' }), (options, cmds) =>
        run(options, cmds),
      ),
      { numRuns: runs },
    )
  },
  Math.max(20_000, runs * 20),
)

/**
 * Two outboxes on one storage and prefix (two buses in one mini program), under random
 * interleavings: enqueue, hand out, settle, rewind, commit, end-of-task commits, one closed and
 * opened again, quota on/off, a kill inside a commit (after any number of its writes) followed by
 * a cold start (a new JS context: two new outboxes on the same data). Checked all along and at the end:
 * - no message is queued by two open outboxes, and none is handed out by two open outboxes;
 * - each outbox hands out first sends in the order its messages were queued (adopted ones too);
 * - what a commit stored without error survives kills and closes; after a final cold start, one
 *   outbox drains every message queued, except those a kill took before any commit stored them;
 * - nothing is left behind in storage.
 */
type Who = 0 | 1
type Cmd2 =
  | { t: 'enqueue' | 'next' | 'rewind' | 'commit' | 'close'; who: Who }
  | { t: 'settle'; who: Who; pick: number }
  | { t: 'tick' }
  | { t: 'kill'; after: number }
  | { t: 'quota'; room?: number }

const who = fc.constantFrom<Who>(0, 1)
const cmd2: fc.Arbitrary<Cmd2> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ t: fc.constant('enqueue' as const), who }) },
  { weight: 5, arbitrary: fc.record({ t: fc.constant('next' as const), who }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('settle' as const), who, pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('rewind' as const), who }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('commit' as const), who }) },
  { weight: 2, arbitrary: fc.constant({ t: 'tick' as const }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('close' as const), who }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('kill' as const), after: fc.nat(4) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('quota' as const),
      room: fc.option(fc.nat(2000), { nil: undefined, freq: 2 }),
    }),
  },
)

function runShared(options: { ack: boolean; window: number }, cmds: Cmd2[]): void {
  vi.clearAllTimers()
  const storage = createQuotaStorage()
  /** Every message queued, by id: the outbox instance that queued it and its rank there. */
  const origin = new Map<string, { by: number; rank: number }>()
  const durable = new Set<string>()
  const delivered = new Set<string>()
  /** Ids each open outbox has handed out (and not seen settled). */
  let instances = 0
  type Slot = {
    outbox: Outbox
    n: number
    handed: Set<string>
    lastRank: Map<number, number>
    errors: number
  }
  let slots: Slot[] = []
  const open = (view: Storage): Slot => {
    const outbox = createOutbox({
      storage: view,
      prefix: 'p',
      share: true,
      ttl: Number.POSITIVE_INFINITY,
      ...options,
    })
    const slot: Slot = { outbox, n: ++instances, handed: new Set(), lastRank: new Map(), errors: 0 }
    outbox.on('error', (e) => {
      expect(['STORAGE_FULL', 'STORAGE_ERROR']).toContain(e.code)
      slot.errors++
    })
    outbox.on('delivered', (e) => delivered.add(e.id))
    return slot
  }
  /** A new JS context on the same data: the outboxes of the old one are gone, writing nothing more. */
  const context = () => {
    vi.clearAllTimers()
    storage.kill = undefined
    const view: Storage = {
      get: (k) => storage.get(k),
      set: (k, v) => storage.set(k, v),
      del: (k) => storage.del(k),
      keys: () => storage.keys(),
    }
    return view
  }
  let view = context()
  slots = [open(view), open(view)]

  const check = () => {
    const lists = slots.map((s) => s.outbox.list().map((e) => e.id))
    const all = lists.flat()
    expect(new Set(all).size, 'a message queued by two open outboxes').toBe(all.length)
  }
  const next = (slot: Slot) => {
    const e = nextOf(slot.outbox)
    if (!e) return
    expect(
      slots.some((s) => s !== slot && s.handed.has(e.id)),
      'handed out by two open outboxes',
    ).toBe(false)
    if (!slot.handed.has(e.id)) {
      const o = origin.get(e.id)!
      expect(o.rank, 'first sends in the order queued').toBeGreaterThan(slot.lastRank.get(o.by) ?? -1)
      slot.lastRank.set(o.by, o.rank)
      slot.handed.add(e.id)
    }
    return e
  }
  const settle = (slot: Slot, id: string) => {
    if (options.ack) slot.outbox.ack(id)
    else slot.outbox.sent(id)
  }
  let ranks = 0

  for (const c of cmds) {
    const slot = 'who' in c ? slots[c.who]! : slots[0]!
    switch (c.t) {
      case 'enqueue': {
        const e = slot.outbox.enqueue('m', ranks)
        origin.set(e.id, { by: slot.n, rank: ranks++ })
        break
      }
      case 'next':
        next(slot)
        break
      case 'settle': {
        const flying = Array.from(slot.handed).filter((id) => slot.outbox.list().some((e) => e.id === id))
        if (flying.length) settle(slot, flying[c.pick % flying.length]!)
        break
      }
      case 'rewind':
        slot.outbox.rewind()
        break
      case 'commit': {
        const before = slot.errors
        slot.outbox.commit()
        if (slot.errors === before) for (const e of slot.outbox.list()) durable.add(e.id)
        break
      }
      case 'tick':
        vi.runOnlyPendingTimers()
        break
      case 'close': {
        slot.outbox.dispose()
        slots[c.who] = open(view)
        break
      }
      case 'kill':
        storage.kill = c.after
        slot.outbox.commit()
        view = context()
        slots = [open(view), open(view)]
        break
      case 'quota':
        storage.quota = c.room === undefined ? Number.POSITIVE_INFINITY : storage.used() + c.room
        break
    }
    check()
  }

  // A cold start with storage working again: one outbox sends everything.
  storage.quota = Number.POSITIVE_INFINITY
  view = context()
  slots = [open(view)]
  const last = slots[0]!
  for (let e = next(last); e; e = next(last)) settle(last, e.id)
  vi.runOnlyPendingTimers()
  expect(last.outbox.size).toBe(0)
  for (const [id, o] of origin)
    expect(delivered.has(id) || !durable.has(id), `${id} (${JSON.stringify(o)}) was stored, then lost`).toBe(
      true,
    )
  expect(storage.keys().filter((k) => k !== 'p/seq')).toEqual([])
  vi.clearAllTimers()
}

it(
  'two outboxes on one storage: nothing queued or handed out by both, order per sender, nothing stored lost',
  () => {
    fc.assert(
      fc.property(
        fc.record({ ack: fc.boolean(), window: fc.integer({ min: 1, max: 4 }) }),
        fc.array(cmd2, { maxLength: 80, size: 'max' }),
        (options, cmds) => runShared(options, cmds),
      ),
      { numRuns: runs },
    )
  },
  Math.max(20_000, runs * 20),
)

/**
 * Several outboxes on one storage and prefix (src/outbox/owner.ts): two buses in one mini program,
 * two tabs on one localStorage. Nothing lost, nothing handed out by two outboxes, and what a closed
 * or killed one left is sent by the next one that opens, at once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Envelope, Outbox } from '../src/outbox'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { miniProgramPlatform } from '../src/platform/mini-program'
import type { Lock, Storage } from '../src/platform/types'
import { lockedOwner } from '../src/platform/web-locks'
import { createStorageArea, createWxRuntime } from '../src/testing'
import { createOutbox, nextOf } from './helpers/resolved'
import { useOutboxClock } from './helpers/time'

beforeEach(() => useOutboxClock())
afterEach(() => vi.useRealTimers())

/** Runs the end-of-task commits and any timer due now. */
const flush = () => vi.runOnlyPendingTimers()

/** A second view of the same stored data: what a new JS context (a cold start) gets. */
const view = (s: Storage): Storage => ({
  get: (k) => s.get(k),
  set: (k, v) => s.set(k, v),
  del: (k) => s.del(k),
  keys: () => s.keys(),
})

/** Hands out everything and reports it sent (ack off): the ids a server would get, in order. */
function send(outbox: Outbox, server: string[]): void {
  for (let e = nextOf(outbox); e; e = nextOf(outbox)) {
    server.push(e.id)
    outbox.sent(e.id)
  }
}

const payloads = (list: Envelope[]) => list.map((e) => e.payload)

/** Every id once, and each sender's messages in the order it queued them. */
function expectOnceInOrder(server: string[], queued: Envelope[][]) {
  expect(new Set(server).size).toBe(server.length)
  for (const list of queued) {
    const ids = list.map((e) => e.id)
    expect(server.filter((id) => ids.includes(id))).toEqual(ids)
  }
}

describe('two outboxes in one JS context (a mini program, Node)', () => {
  const shared = (storage: Storage) => createOutbox({ storage, share: true })

  it('interleaved sends: each keeps its own, in separate namespaces; none lost, none handed out by both', () => {
    const storage = createMemoryStorage()
    const a = shared(storage)
    const b = shared(storage)
    const qa: Envelope[] = []
    const qb: Envelope[] = []
    for (let i = 0; i < 10; i++) {
      qa.push(a.enqueue('m', `a${i}`))
      qb.push(b.enqueue('m', `b${i}`))
      flush()
    }
    expect(payloads(a.list())).toEqual(payloads(qa))
    expect(payloads(b.list())).toEqual(payloads(qb))
    // A cold start (a new context on the same data) finds all 20.
    const cold = shared(view(storage))
    expect(cold.size).toBe(20)
    const server: string[] = []
    send(cold, server)
    expectOnceInOrder(server, [qa, qb])
  })

  it('what a closed one left is sent by the next one that opens, not by the one still open', () => {
    const storage = createMemoryStorage()
    const a = shared(storage)
    const b = shared(storage)
    a.enqueue('m', 'a0')
    const left = [b.enqueue('m', 'b0'), b.enqueue('m', 'b1')]
    flush()
    b.dispose()
    expect(a.size).toBe(1)
    const c = shared(storage)
    expect(payloads(c.list())).toEqual(['b0', 'b1'])
    flush()
    // Stored under c's namespace, b's keys gone.
    expect(storage.keys().filter((k) => k.startsWith(`mpbus/${'@'}`)).length).toBeGreaterThan(0)
    const server: string[] = []
    send(a, server)
    send(c, server)
    expectOnceInOrder(server, [left])
    expect(server.length).toBe(3)
    a.dispose()
    c.dispose()
    flush()
    expect(shared(storage).size).toBe(0)
  })

  it('an adopted queue whose old keys outlived their delete keeps its order when adopted again', () => {
    const storage = createMemoryStorage()
    // Another outbox holds the main namespace: b's queue is in a namespace of its own.
    expect(shared(storage).size).toBe(0)
    const b = shared(storage)
    const left = [b.enqueue('m', 'b0'), b.enqueue('m', 'b1')]
    flush()
    // A cold start whose deletes fail: it adopts b's queue and stores it as its own, but b's keys stay.
    const failing: Storage = {
      ...view(storage),
      del: () => {
        throw new Error('storage refused the delete')
      },
    }
    const c = shared(failing)
    c.on('error', () => {})
    const e = nextOf(c)!
    expect(e.payload).toBe('b0')
    c.sent(e.id)
    flush()
    // Another cold start finds c's copy (b1 still queued) and b's keys (b0, b1): b0 again, then b1.
    const d = shared(view(storage))
    const server: string[] = []
    send(d, server)
    expect(server).toEqual(left.map((m) => m.id))
  })

  it('an adoption whose deletes a kill cut short leaves no earlier message to come back behind a later one', () => {
    const storage = createMemoryStorage()
    expect(shared(storage).size).toBe(0)
    const b = shared(storage)
    const b0 = b.enqueue('m', 'b0')
    flush()
    const b1 = b.enqueue('m', 'b1')
    flush()
    // b's two messages are in two records; the adopter's first delete lands, the rest fail.
    let deletes = 0
    const failing: Storage = {
      ...view(storage),
      del: (k) => {
        if (deletes++ >= 1) throw new Error('storage refused the delete')
        storage.del(k)
      },
    }
    const c = shared(failing)
    c.on('error', () => {})
    const e = nextOf(c)!
    expect(e.payload).toBe('b0')
    c.sent(e.id)
    flush()
    const server: string[] = [e.id]
    send(shared(view(storage)), server)
    // b0 is never sent after b1: what is left of b's keys is its newest, held by c's copy too.
    expect(server).toEqual([b0.id, b1.id])
  })

  it('kill and cold start: the first outbox sends both queues at once, no timeout; then nothing is sent twice', () => {
    const storage = createMemoryStorage()
    const a = shared(storage)
    const b = shared(storage)
    const qa = [a.enqueue('m', 1), a.enqueue('m', 2)]
    const qb = [b.enqueue('m', 3), b.enqueue('m', 4)]
    flush()
    // Both were sending: one delivered each, the rest in flight when the app was killed.
    const server: string[] = []
    for (const o of [a, b]) {
      const e = nextOf(o)!
      server.push(e.id)
      o.sent(e.id)
      server.push(nextOf(o)!.id)
    }
    flush()
    // The new context's two outboxes (its storage object is one): the second gets nothing twice,
    // even before the first stored what it adopted.
    const context = view(storage)
    const cold = shared(context)
    const second = shared(context)
    send(cold, server)
    send(second, server)
    // The in-flight ones are sent again (same ids: the server drops them), nothing else twice.
    expect(server.map((id) => [...qa, ...qb].findIndex((e) => e.id === id) + 1)).toEqual([1, 2, 3, 4, 2, 4])
    cold.dispose()
    second.dispose()
    flush()
    expect(shared(view(storage)).size).toBe(0)
    expect(storage.keys().filter((k) => /@/.test(k))).toEqual([])
  })

  it('on the wx runtime: two outboxes of one app share its storage object and never mix; a cold start sends both', () => {
    const area = createStorageArea()
    const app = createWxRuntime({ storage: area })
    const one = miniProgramPlatform(app as any).storage!
    expect(miniProgramPlatform(app as any).storage).toBe(one)
    const a = shared(one)
    const b = shared(miniProgramPlatform(app as any).storage!)
    const qa: Envelope[] = []
    const qb: Envelope[] = []
    for (let i = 0; i < 5; i++) {
      qb.push(b.enqueue('m', `b${i}`))
      qa.push(a.enqueue('m', `a${i}`))
      flush()
    }
    app.control.kill()
    const again = createWxRuntime({ storage: area })
    const cold = shared(miniProgramPlatform(again as any).storage!)
    const server: string[] = []
    send(cold, server)
    expect(server.length).toBe(10)
    expectOnceInOrder(server, [qa, qb])
  })

  it('an outbox without share is alone on its prefix, as before', () => {
    const storage = createMemoryStorage()
    createOutbox({ storage }).enqueue('m', 1)
    flush()
    expect(createOutbox({ storage }).size).toBe(1)
  })
})

/**
 * Web Locks as a browser keeps them for the tabs of one origin: granted a few ms later, queued
 * requests in order, everything a tab held released when it goes.
 */
function createLocks(delay = 5) {
  type Req = { name: string; tab: number; go: () => void; done: boolean }
  const held = new Map<string, Req>()
  const queue: Req[] = []
  const pump = (name: string) => {
    const next = queue.find((r) => r.name === name)
    if (next && !held.has(name)) {
      queue.splice(queue.indexOf(next), 1)
      next.go()
    }
  }
  const release = (r: Req) => {
    if (r.done) return
    r.done = true
    if (held.get(r.name) === r) {
      held.delete(r.name)
      pump(r.name)
    } else if (queue.includes(r)) queue.splice(queue.indexOf(r), 1)
  }
  const all: Req[] = []
  return {
    held,
    tab(tab: number): Lock {
      return (name, wait, granted) => {
        const r: Req = {
          name,
          tab,
          done: false,
          go: () => {
            held.set(name, r)
            granted(true)
          },
        }
        all.push(r)
        setTimeout(() => {
          if (r.done) return
          if (!held.has(name) && !queue.some((q) => q.name === name)) r.go()
          else if (wait) queue.push(r)
          else {
            r.done = true
            granted(false)
          }
        }, delay)
        return () => release(r)
      }
    },
    /** The tab is closed or crashes: the browser releases its locks. */
    close(tab: number) {
      for (const r of all) if (r.tab === tab) release(r)
    },
  }
}

describe('two tabs on one localStorage (Web Locks)', () => {
  const tab = (storage: Storage, lock: Lock) =>
    createOutbox({ storage: view(storage), share: lockedOwner(lock) })

  it('sends queued before the lock answers are stored at the end of the task and sent first after the stored queue', () => {
    const storage = createMemoryStorage()
    const locks = createLocks()
    const first = tab(storage, locks.tab(1))
    flush()
    const old = first.enqueue('m', 'old')
    flush()
    locks.close(1)
    const page = tab(storage, locks.tab(2))
    const fresh = page.enqueue('m', 'new')
    // End of the task, before the lock's answer: stored (a kill now keeps it), nothing handed out.
    vi.advanceTimersByTime(0)
    expect(storage.keys().some((k) => /^mpbus\/@[\w-]+\/w$/.test(k))).toBe(true)
    expect(nextOf(page)).toBeUndefined()
    vi.advanceTimersByTime(10)
    expect(page.list().map((e) => e.id)).toEqual([old.id, fresh.id])
  })

  it('a tab killed before the answer: its scratch record is sent by the next tab', () => {
    const storage = createMemoryStorage()
    const locks = createLocks()
    const page = tab(storage, locks.tab(1))
    const e = page.enqueue('m', 'early')
    vi.advanceTimersByTime(0)
    locks.close(1)
    const next = tab(storage, locks.tab(2))
    next.load()
    vi.advanceTimersByTime(20)
    expect(next.list().map((x) => x.id)).toEqual([e.id])
    flush()
    expect(storage.keys().filter((k) => /\/w$/.test(k))).toEqual([])
  })

  it('both open and sending interleaved, one closed, a reload: every message sent once, in order per tab', () => {
    const storage = createMemoryStorage()
    const locks = createLocks()
    const a = tab(storage, locks.tab(1))
    const b = tab(storage, locks.tab(2))
    a.load()
    b.load()
    vi.advanceTimersByTime(20)
    const server: string[] = []
    const qa: Envelope[] = []
    const qb: Envelope[] = []
    // Offline for a while, then a few get through, interleaved.
    for (let i = 0; i < 6; i++) {
      qa.push(a.enqueue('m', `a${i}`))
      qb.push(b.enqueue('m', `b${i}`))
      flush()
      if (i === 2) {
        send(a, server)
        send(b, server)
      }
    }
    flush()
    // The owner of the main namespace closes with 3 unsent; the other tab takes over at once.
    locks.close(1)
    vi.advanceTimersByTime(20)
    expect(payloads(b.list())).toEqual(['b3', 'b4', 'b5', 'a3', 'a4', 'a5'])
    send(b, server)
    flush()
    qb.push(b.enqueue('m', 'b6'))
    flush()
    // b's tab is reloaded before b6 was sent: the new page sends it.
    locks.close(2)
    const reload = tab(storage, locks.tab(3))
    reload.load()
    vi.advanceTimersByTime(20)
    send(reload, server)
    expect(server.length).toBe(13)
    expectOnceInOrder(server, [qa, qb])
  })

  it('a tab that is not the owner closes: the next tab that opens sends what it left; the owner never does', () => {
    const storage = createMemoryStorage()
    const locks = createLocks()
    const a = tab(storage, locks.tab(1))
    const b = tab(storage, locks.tab(2))
    a.load()
    vi.advanceTimersByTime(20)
    b.load()
    vi.advanceTimersByTime(20)
    const left = [b.enqueue('m', 'b0'), b.enqueue('m', 'b1')]
    flush()
    locks.close(2)
    a.enqueue('m', 'a0')
    const c = tab(storage, locks.tab(3))
    c.load()
    vi.advanceTimersByTime(20)
    expect(c.list().map((e) => e.id)).toEqual(left.map((e) => e.id))
    expect(payloads(a.list())).toEqual(['a0'])
  })
})

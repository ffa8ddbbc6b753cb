// Who owns which namespace of a shared prefix within one JS context, and how an orphan's
// envelopes are gathered for adoption (src/outbox/owner.ts).
import { describe, expect, it } from 'vitest'
import { gather, localOwner } from '../src/outbox/owner'
import { createMemoryStorage } from '../src/platform/memory-storage'

const record = (...m: object[]) => JSON.stringify({ v: 1, m })
const e = (id: string, seq: number) => ({ id, seq, op: 'm', createdAt: 1 })

describe('localOwner', () => {
  it('the first outbox on a storage and prefix owns the main namespace, the next ones their own', () => {
    const storage = createMemoryStorage()
    const first = localOwner(storage, 'p')
    const second = localOwner(storage, 'p')
    const elsewhere = localOwner(createMemoryStorage(), 'p')
    expect(first.ns()).toBe('')
    expect(second.ns()).toMatch(/^@[\w-]+$/)
    expect(elsewhere.ns()).toBe('')
    // Asked again, the answer stands.
    expect(second.ns()).toBe(second.ns())
    first.close()
    expect(localOwner(storage, 'p').ns()).toBe('')
    for (const o of [second, elsewhere]) o.close()
  })

  it('orphans are the namespaces with keys and no open outbox, each handed out once until swept', () => {
    const storage = createMemoryStorage()
    const main = localOwner(storage, 'p')
    const other = localOwner(storage, 'p')
    main.ns()
    const mine = other.ns()!
    const keys = ['p/1', 'p/seq', `p/${mine}/1`, 'p/@gone/1', 'p/@gone/seq', 'q/@x/1']
    expect(main.orphans(keys)).toEqual(['@gone'])
    // Held by `main` until swept: no one else adopts it meanwhile.
    expect(main.orphans(keys)).toEqual([])
    expect(localOwner(storage, 'p').orphans(keys)).toEqual([])
    main.swept('@gone')
    expect(other.orphans(keys)).toEqual(['@gone'])
    main.close()
    other.close()
  })
})

describe('gather', () => {
  it('takes the records in seq order, then the scratch record (sent later, while a lock or a load waited); skips what left and repeats', () => {
    const store = new Map<string, string>([
      ['p/@o/10', record(e('c', 10), e('a', 1))],
      ['p/@o/2', record(e('b', 2), e('gone', 1))],
      ['p/@o/w', record(e('w', 1))], // numbered before its lock's answer: below any mark, yet sent after the records
      ['p/@o/seq', JSON.stringify([2, 11])],
    ])
    const bad: string[] = []
    const found = gather(
      [...store.keys()],
      'p/@o/',
      (key) => store.get(key),
      (key) => bad.push(key),
    )
    expect(found.m.map((x) => x.id)).toEqual(['b', 'c', 'w'])
    // Deleted first record first, the mark last: a kill midway leaves the newest, which the
    // adopter's copy holds too, so nothing queued is lost and no earlier message comes back alone.
    expect(found.keys).toEqual(['p/@o/2', 'p/@o/10', 'p/@o/w', 'p/@o/seq'])
    expect(bad).toEqual([])
  })

  it('a record of a newer format is reported and kept, and so is the mark', () => {
    const store = new Map<string, string>([
      ['p/@o/1', JSON.stringify({ v: 2, m: [] })],
      ['p/@o/2', record(e('b', 2))],
      ['p/@o/seq', JSON.stringify([0, 3])],
    ])
    const bad: string[] = []
    const found = gather(
      [...store.keys()],
      'p/@o/',
      (key) => store.get(key),
      (key) => bad.push(key),
    )
    expect(bad).toEqual(['p/@o/1'])
    expect(found.m.map((x) => x.id)).toEqual(['b'])
    expect(found.keys).toEqual(['p/@o/2'])
  })

  it('a read that throws is thrown: the orphan is left for a later load', () => {
    const get = () => {
      throw new Error('unreadable')
    }
    expect(() => gather(['p/@o/1'], 'p/@o/', get, () => {})).toThrow('unreadable')
  })
})

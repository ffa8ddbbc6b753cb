// The shelf (src/outbox/shelf.ts): which records hold which items, what a commit rewrites or
// deletes, and how new items are merged so that the keys stay few at any depth.
import { describe, expect, it } from 'vitest'
import { createLine } from '../src/outbox/line'
import type { Item } from '../src/outbox/record'
import { createShelf } from '../src/outbox/shelf'

function setup() {
  const stored = new Map<string, string>()
  let refuse = false
  const writes: string[] = []
  const shelf = createShelf((method, key, value) => {
    if (refuse) return false
    writes.push(`${method} ${key}`)
    if (method === 'set') stored.set(key, value!)
    else stored.delete(key)
    return true
  })
  let seq = 0
  const item = (): Item => {
    seq++
    return { j: `{"id":"m${seq}"}`, s: seq, k: undefined }
  }
  const ids = (key: string) => JSON.parse(stored.get(key)!).m.map((e: { id: string }) => e.id)
  return { shelf, stored, writes, item, ids, refuse: (on: boolean) => (refuse = on) }
}

describe('shelf', () => {
  it('writes new items as one record named by its first seq, and notes the key on each item', () => {
    const { shelf, stored, item, ids } = setup()
    const items = [item(), item(), item()]
    expect(shelf.store(items, 'p/')).toBe(true)
    expect([...stored.keys()]).toEqual(['p/1'])
    expect(ids('p/1')).toEqual(['m1', 'm2', 'm3'])
    expect(items.map((i) => i.k)).toEqual(['p/1', 'p/1', 'p/1'])
  })

  it('one item per commit for 16 commits leaves one record, in order, once the merged parts are deleted', () => {
    const { shelf, stored, item, ids } = setup()
    for (let n = 0; n < 16; n++) {
      expect(shelf.store([item()], 'p/')).toBe(true)
      expect(shelf.rewrite()).toBe(true)
    }
    expect([...stored.keys()]).toEqual(['p/1'])
    expect(ids('p/1')).toEqual(Array.from({ length: 16 }, (_, i) => `m${i + 1}`))
  })

  it('the head leaving costs no rewrite; a gap is rewritten; an emptied record is deleted', () => {
    const { shelf, stored, writes, item, ids } = setup()
    const line = createLine<Item>()
    const items = [item(), item(), item()]
    for (const i of items) line.push(i)
    shelf.store(items, 'p/')
    shelf.index(line)
    writes.length = 0
    // The head leaves (the low mark covers it): nothing to rewrite.
    line.remove(items[0]!)
    shelf.left(items[0]!, true)
    expect(shelf.rewrite()).toBe(true)
    expect(writes).toEqual([])
    // The last one leaves out of order: its record is rewritten without it.
    line.remove(items[2]!)
    shelf.left(items[2]!, false)
    expect(shelf.rewrite()).toBe(true)
    expect(writes).toEqual(['set p/1'])
    expect(ids('p/1')).toEqual(['m2'])
    // The last queued one leaves: the record goes.
    line.remove(items[1]!)
    shelf.left(items[1]!, true)
    expect(shelf.rewrite()).toBe(true)
    expect(stored.size).toBe(0)
  })

  it('a refused write returns false and changes nothing; the next attempt writes the same record', () => {
    const { shelf, stored, item, ids, refuse } = setup()
    for (let n = 0; n < 15; n++) shelf.store([item()], 'p/')
    shelf.rewrite()
    const next = item()
    refuse(true)
    expect(shelf.store([next], 'p/')).toBe(false)
    expect(next.k).toBeUndefined()
    refuse(false)
    expect(shelf.store([next], 'p/')).toBe(true)
    expect(shelf.rewrite()).toBe(true)
    expect([...stored.keys()]).toEqual(['p/1'])
    expect(ids('p/1')).toHaveLength(16)
  })
})

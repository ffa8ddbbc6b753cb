// The outbox's line (src/outbox/line.ts) against a plain array: whatever the pushes and
// removals, it holds the same items in the same order, and finds each by its seq.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createLine } from '../src/outbox/line'

type Entry = { s: number; j: string }

describe('line', () => {
  it('holds what a plain array holds, in order, after any pushes, removals, finds and drains', () => {
    const op = fc.oneof(
      fc.record({ push: fc.integer({ min: 1, max: 3 }) }),
      fc.record({ remove: fc.nat() }),
      fc.record({ head: fc.constant(true) }),
      fc.record({ drain: fc.constant(true) }),
    )
    fc.assert(
      fc.property(fc.array(op, { maxLength: 400 }), (ops) => {
        const line = createLine<Entry>()
        let model: Entry[] = []
        let seq = 0
        for (const o of ops) {
          if ('push' in o) {
            seq += o.push
            const item = { s: seq, j: `m${seq}` }
            line.push(item)
            model.push(item)
          } else if ('remove' in o && model.length) {
            // Most removals from the front, as acks come: the line cuts its array then.
            const at = o.remove % 4 ? 0 : o.remove % model.length
            line.remove(model[at]!)
            model.splice(at, 1)
          } else if ('head' in o) expect(line.head()).toBe(model[0])
          else if ('drain' in o) {
            expect(line.drain()).toEqual(model)
            model = []
          }
          expect(line.size).toBe(model.length)
        }
        const forward: Entry[] = []
        line.each((item) => {
          forward.push(item)
        })
        expect(forward).toEqual(model)
        const backward: Entry[] = []
        line.back((item) => {
          backward.push(item)
        })
        expect(backward).toEqual([...model].reverse())
        for (const item of model) expect(line.find(item.s)).toBe(item)
        // Seqs never pushed, or removed, are not found.
        expect(line.find(seq + 1)).toBeUndefined()
        expect(line.find(0)).toBeUndefined()
      }),
      { numRuns: 300 },
    )
  })

  it('a deep queue drained from its head keeps the rest whole, across the cuts of its array', () => {
    const line = createLine<Entry>()
    const items = Array.from({ length: 300 }, (_, i) => ({ s: i + 1, j: `m${i + 1}` }))
    for (const item of items) line.push(item)
    for (let i = 0; i < 250; i++) {
      expect(line.head()).toBe(items[i])
      line.remove(items[i]!)
    }
    expect(line.head()).toBe(items[250])
    expect(line.find(260)).toBe(items[259])
    expect(line.drain()).toEqual(items.slice(250))
  })

  it('each() and back() stop at the first truthy return', () => {
    const line = createLine<Entry>()
    for (let s = 1; s <= 5; s++) line.push({ s, j: 'x' })
    const seen: number[] = []
    line.each((item) => {
      seen.push(item.s)
      return item.s === 2
    })
    line.back((item) => {
      seen.push(item.s)
      return item.s === 4
    })
    expect(seen).toEqual([1, 2, 5, 4])
  })

  it('removing flags the item: its text is emptied, and a removed item is not found again', () => {
    const line = createLine<Entry>()
    const a = { s: 1, j: 'a' }
    const b = { s: 2, j: 'b' }
    line.push(a)
    line.push(b)
    line.remove(a)
    expect(a.j).toBe('')
    expect(line.find(1)).toBeUndefined()
    expect(line.head()).toBe(b)
  })
})

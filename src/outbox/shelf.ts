/**
 * The stored records of the outbox: which queued items each holds, which to rewrite or delete at
 * the next commit, and how new items are written, merged with the records before them so the
 * keys stay few at any depth.
 */
import type { Line } from './line'
import { type Item, pack, sizeOf } from './record'
import { EACH, FRAME, RECORD } from './types'

/**
 * A stored record: its items (some may have left the queue), how many are still queued, and its
 * level, floor(log_MERGE(items)) when it was written.
 */
interface Rec {
  items: Item[]
  live: number
  lv: number
}

/** The base of the merging of records as the queue grows (see `store`). */
const MERGE = 16
const level = (n: number) => (n < MERGE ? 0 : n < MERGE * MERGE ? 1 : n < MERGE ** 3 ? 2 : 3)

export function createShelf(attempt: (method: 'set' | 'del', key: string, value?: string) => boolean) {
  const records = new Map<string, Rec>()
  /** Keys of the stored records in seq order: few at any depth, so walking them is cheap. */
  let order: string[] = []
  /** Keys of the records to rewrite with their queued items (or delete if none) at the next commit, in order. */
  const dirty = new Set<string>()

  return {
    dirty,
    /** Builds the records from the loaded items. */
    index(queue: Line<Item>): void {
      records.clear()
      order = []
      queue.each((item) => {
        if (!item.k) return
        let rec = records.get(item.k)
        if (!rec) {
          rec = { items: [], live: 0, lv: 0 }
          records.set(item.k, rec)
          order.push(item.k)
        }
        rec.items.push(item)
        rec.lv = level(++rec.live)
      })
    },
    /**
     * `item` left the queue (`first`: from its head). The head leaves under the low mark, with no
     * rewrite, and its record goes once nothing in it is queued; anything else leaves a gap that
     * only a rewrite can close.
     */
    left(item: Item, first: boolean): void {
      if (!item.k) return
      const rec = records.get(item.k)
      // Not counted yet (taken out during the load, before `index`): rewritten all the same.
      if (!rec || !--rec.live || !first) dirty.add(item.k)
    },
    /** Rewrites the dirty records with their queued items, or deletes them; false at the first failure. */
    rewrite(): boolean {
      for (const key of dirty) {
        const rec = records.get(key)
        const items = rec ? rec.items.filter((item) => item.j) : []
        if (!attempt(items.length ? 'set' : 'del', key, pack(items))) return false
        dirty.delete(key)
        if (items.length) rec!.items = items
        else if (rec) {
          records.delete(key)
          order.splice(order.indexOf(key), 1)
        }
      }
      return true
    },
    /**
     * Writes new items under `dir`, in records of at most RECORD bytes, each merged with the
     * records before it while the last MERGE - 1 of them are of its level: a counter in base
     * MERGE, so the keys stay few (up to MERGE - 1 per level) and each envelope is rewritten once
     * per level (twice up to 4,096 a record). One write per record; the parts a merged record
     * replaces are deleted after it (by `rewrite`). False at the first failure.
     */
    store(items: Item[], dir: string): boolean {
      for (let start = 0; start < items.length; ) {
        let end = start + 1
        let size = FRAME + sizeOf(items[start]!) + EACH
        while (end < items.length && size + sizeOf(items[end]!) + EACH <= RECORD)
          size += sizeOf(items[end++]!) + EACH
        let batch = items.slice(start, end)
        start = end
        let parts = 0
        for (;;) {
          const tail = order.slice(order.length - parts - MERGE + 1, order.length - parts)
          const lv = level(batch.length)
          if (order.length - parts < MERGE - 1 || !tail.every((key) => records.get(key)!.lv === lv)) break
          const merged: Item[] = []
          for (const key of tail) for (const item of records.get(key)!.items) if (item.j) merged.push(item)
          const more = merged.reduce((sum, item) => sum + sizeOf(item) + EACH, 0)
          if (size + more > RECORD) break
          size += more
          batch = merged.concat(batch)
          parts += tail.length
        }
        const replaced = order.splice(order.length - parts, parts)
        const key = replaced.length ? replaced[0]! : dir + batch[0]!.s
        if (!attempt('set', key, pack(batch))) {
          order.push(...replaced)
          return false
        }
        for (const item of batch) item.k = key
        for (const part of replaced.slice(1)) {
          records.delete(part)
          dirty.add(part)
        }
        records.set(key, { items: batch, live: batch.length, lv: level(batch.length) })
        order.push(key)
      }
      return true
    },
  }
}

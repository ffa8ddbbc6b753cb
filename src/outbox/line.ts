/**
 * The queue's items in seq order, with O(1) push, head and removal (amortised): removed items are
 * flagged and skipped, and the array is cut down once most of it is removed. `Array.shift()` would
 * copy the whole array past ~16k items in V8, and `splice()` always moves the tail.
 */
/** What a line holds: items with a seq (`s`, ascending along the line) and a text (`j`), emptied when removed. */
interface Entry {
  s: number
  j: string
}

export interface Line<T extends Entry> {
  push(item: T): void
  /** The first item still queued. */
  head(): T | undefined
  /** Flags `item` removed (its text emptied); it was queued. */
  remove(item: T): void
  /** The item of seq `s` still queued, found by bisection (seqs ascend along the line). */
  find(s: number): T | undefined
  /** Calls `fn` on the queued items from the head until it returns something truthy. */
  each(fn: (item: T) => unknown): void
  /** Calls `fn` on the queued items from the tail back until it returns something truthy. */
  back(fn: (item: T) => unknown): void
  /** Empties the line, returning what was queued. */
  drain(): T[]
  readonly size: number
}

export function createLine<T extends Entry>(): Line<T> {
  let items: T[] = []
  let start = 0
  let live = 0
  const line: Line<T> = {
    push(item) {
      items.push(item)
      live++
    },
    head() {
      while (start < items.length && !items[start]!.j) start++
      // Cut once the removed items are most of the array: each cut pays for the removals before it.
      if (items.length - live > 64 && items.length - live > live) {
        items = items.filter((item) => item.j)
        start = 0
      }
      return items[start]
    },
    remove(item) {
      item.j = ''
      live--
    },
    find(s) {
      let lo = start
      let hi = items.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (items[mid]!.s < s) lo = mid + 1
        else hi = mid
      }
      const item = items[lo]
      return item && item.s === s && item.j ? item : undefined
    },
    each(fn) {
      for (let i = start; i < items.length; i++) if (items[i]!.j && fn(items[i]!)) return
    },
    back(fn) {
      for (let i = items.length - 1; i >= start; i--) if (items[i]!.j && fn(items[i]!)) return
    },
    drain() {
      const out = items.slice(start).filter((item) => item.j)
      items = []
      start = live = 0
      return out
    },
    get size() {
      return live
    },
  }
  return line
}

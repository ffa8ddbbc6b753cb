/** How an envelope and a record are written and read back (layout v1: see index.ts). */
import type { Envelope } from './types'

/**
 * A queued envelope, its JSON, that JSON's size, the key of its stored record, whether it is in
 * flight, whether it left the queue.
 */
export interface Item {
  e: Envelope
  /** Kept only until it is stored: held beside `e`, it would double the heap of a deep queue. */
  j?: string
  n: number
  k?: string
  f?: boolean
  g?: boolean
}

/**
 * A record: its envelopes, and their sizes in UTF-8 bytes (`n`, so a load needs neither to encode
 * them again nor to count their bytes; a reader that does not know `n` ignores it).
 * `JSON.stringify` of a parsed envelope gives back the very text it was parsed from.
 */
export function pack(items: Item[]): string {
  return `{"v":1,"m":[${items.map((item) => item.j || JSON.stringify(item.e)).join()}],"n":[${items.map((item) => item.n).join()}]}`
}

/**
 * What a stored record holds: its envelopes and how many it held that are not envelopes (no
 * string `id` or `op`, or no safe-integer `seq`: load orders and skips by `seq`, and the server
 * matches acks by `id`); or, for a record of a newer format version, that version (left alone);
 * or undefined when it cannot be read at all (JSON.parse catches the usual damage, a cut-off write).
 */
export function unpack(
  raw: string | undefined,
): { m: Envelope[]; n: (number | undefined)[]; bad: number } | number | undefined {
  try {
    const record = JSON.parse(raw!)
    if (record.v > 1) return record.v
    if (record.v === 1) {
      const sizes = Array.isArray(record.n) && record.n.length === record.m.length ? record.n : []
      const m: Envelope[] = []
      const n: (number | undefined)[] = []
      record.m.forEach((e: Envelope, i: number) => {
        if (e && typeof e.id === 'string' && typeof e.op === 'string' && Number.isSafeInteger(e.seq)) {
          m.push(e)
          n.push(Number.isSafeInteger(sizes[i]) ? sizes[i] : undefined)
        }
      })
      return { m, n, bad: record.m.length - m.length }
    }
  } catch {}
}

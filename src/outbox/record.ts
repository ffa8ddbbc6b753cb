/** How an envelope and a record are written and read back (layout v1: see index.ts). */
import { MpbusError } from '../errors'
import type { Envelope } from './types'

/** A queued envelope, its JSON, that JSON's size, the key of its stored record, whether it is in flight. */
export interface Item {
  e: Envelope
  j: string
  n: number
  k?: string
  f?: boolean
}

/** Serializes an envelope, refusing what JSON would silently change or lose. */
export function encode(envelope: Envelope): string {
  try {
    return JSON.stringify(envelope, (key, value) => {
      const type = typeof value
      if (
        type === 'function' ||
        type === 'symbol' ||
        (type === 'number' && !Number.isFinite(value)) ||
        value instanceof Map ||
        value instanceof Set
      )
        throw new TypeError(key)
      return value
    })
  } catch (cause) {
    throw new MpbusError('BAD_PAYLOAD', 'circular or non-JSON payload', cause)
  }
}

export function pack(items: Item[]): string {
  return `{"v":1,"m":[${items.map((item) => item.j).join()}]}`
}

/**
 * What a stored record holds: its envelopes and how many it held that are not envelopes (no
 * string `id` or `op`, or no safe-integer `seq`: load orders and skips by `seq`, and the server
 * matches acks by `id`); or, for a record of a newer format version, that version (left alone);
 * or undefined when it cannot be read at all (JSON.parse catches the usual damage, a cut-off write).
 */
export function unpack(raw: string | undefined): { m: Envelope[]; bad: number } | number | undefined {
  try {
    const record = JSON.parse(raw!)
    if (record.v > 1) return record.v
    if (record.v === 1) {
      const m = record.m.filter(
        (e: Envelope) =>
          e && typeof e.id === 'string' && typeof e.op === 'string' && Number.isSafeInteger(e.seq),
      )
      return { m, bad: record.m.length - m.length }
    }
  } catch {}
}

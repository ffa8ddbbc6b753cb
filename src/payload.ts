/**
 * The one payload rule, for durable and volatile sends alike: a payload must come back from
 * JSON as it went in. JSON.stringify already throws on cycles and BigInt; this refuses what it
 * would otherwise change without a word: functions and symbols (dropped), NaN and ±Infinity
 * (`null`), `undefined` inside an array (`null`), Map and Set (`{}`), ArrayBuffer and typed arrays
 * (`{}` or an object of indices). `undefined` as an object's field is allowed: it is a missing
 * key, as the receiver reads it. A `toJSON` (Date) is the sender's own choice and is kept.
 */
import { MpbusError } from './errors'

function faithful(this: unknown, key: string, value: unknown): unknown {
  const type = typeof value
  if (
    type === 'function' ||
    type === 'symbol' ||
    (type === 'number' && !Number.isFinite(value as number)) ||
    (value === undefined && Array.isArray(this)) ||
    value instanceof Map ||
    value instanceof Set ||
    (typeof ArrayBuffer !== 'undefined' && (value instanceof ArrayBuffer || ArrayBuffer.isView(value)))
  )
    throw new TypeError(`${key || 'payload'}: ${type === 'object' ? 'binary, Map or Set' : String(value)}`)
  return value
}

/** JSON of `value` under the payload rule; throws `BAD_PAYLOAD` naming what JSON cannot carry. */
export function toJson(value: unknown): string {
  try {
    return JSON.stringify(value, faithful)
  } catch (cause) {
    throw new MpbusError('BAD_PAYLOAD', String(cause), cause)
  }
}

/**
 * How an envelope and a record are written and read back (layout v1: see store.ts), and the frame
 * of an envelope spliced from its JSON.
 */
import { byteLength } from '../utf8'
import type { Envelope } from './types'

/**
 * A queued envelope as its JSON alone: the object it came from is not kept (a parsed copy beside
 * it would double the heap of a deep queue), and the socket is sent a frame spliced from it
 * (`frameOf`). Its seq, and the key of its stored record. Nothing else: a field costs 8 bytes a
 * message (which ones are in flight, index.ts knows from their seq).
 */
export interface Item {
  /** The envelope's JSON, its keys in `encode`'s order; emptied once it left the queue. */
  j: string
  s: number
  k: string | undefined
}

/** `x` when it is a finite number. */
const finite = (x: unknown) => (typeof x === 'number' && Number.isFinite(x) ? x : undefined)

/**
 * An envelope's JSON, its keys in this order: `id` first (so `idOf` finds it), `createdAt` after
 * the payload (so the last `,"createdAt":` is the envelope's own: `frameOf` splices frames from
 * it). Given the payload's JSON already (enqueue), nothing is encoded twice. Stored data is not
 * trusted: a `createdAt` that is no finite number is written 0, and such an `expiresAt` is left
 * out (the message is kept until sent: a damaged field loses no message).
 */
export function encode(e: Envelope, payload?: string): string {
  const p = payload === undefined ? JSON.stringify(e.payload) : payload
  const expiry = finite(e.expiresAt)
  return `{"id":${JSON.stringify(e.id)},"seq":${e.seq},"op":${JSON.stringify(e.op)}${p === undefined ? '' : `,"payload":${p}`},"createdAt":${finite(e.createdAt) || 0}${expiry === undefined ? '' : `,"expiresAt":${expiry}`}}`
}

/** The envelope of an item, decoded. */
export const decode = (item: Item): Envelope => JSON.parse(item.j)

/** The id in an envelope's JSON, read without decoding it unless the id has escapes. */
export function idOf(j: string): string {
  const id = j.slice(7, j.indexOf('"', 7))
  return id.indexOf('\\') < 0 ? id : JSON.parse(j).id
}

/** The `expiresAt` in an envelope's JSON; Infinity when there is none. */
export function expiryOf(j: string): number {
  const at = j.indexOf(',"expiresAt":', j.lastIndexOf(',"createdAt":'))
  return at < 0 ? Infinity : +j.slice(at + 13, -1)
}

/** UTF-8 bytes of an item's JSON: storage quotas and `maxBytes` count bytes. */
export const sizeOf = (item: Item): number => byteLength(item.j)

/**
 * A record: its envelopes. (Older versions also wrote `n`, their sizes, and read records without it;
 * load reads them whole now, so `n` is no longer written, nor read.)
 */
export const pack = (items: Item[]): string => `{"v":1,"m":[${items.map((item) => item.j).join()}]}`

/**
 * What a stored record holds: its envelopes and how many it held that are not envelopes (no
 * non-empty string `id`, no string `op`, or no safe-integer `seq`: load orders and skips by
 * `seq`, and the server matches acks by `id`); or, for a record of a newer format version, that
 * version (left alone); or undefined when it cannot be read at all (JSON.parse catches the usual
 * damage, a cut-off write).
 */
export function unpack(raw: string | undefined): { m: Envelope[]; bad: number } | number | undefined {
  try {
    const record = JSON.parse(raw!)
    if (record.v > 1) return record.v
    if (record.v === 1) {
      const m = record.m.filter(
        (e: Envelope) =>
          e && typeof e.id === 'string' && e.id && typeof e.op === 'string' && Number.isSafeInteger(e.seq),
      )
      return { m, bad: record.m.length - m.length }
    }
  } catch {}
}

/**
 * The frame of an envelope, spliced from its JSON (`{"id":I,"seq":…,"op":O[,"payload":P],"createdAt":…}`,
 * `encode`'s order) without decoding it: `{opKey: O, ...members of P, idKey: I}`, or P under
 * `data` when it is no object. Undefined when P names the operator or id key anywhere (the frame
 * overrides those: the caller decodes, then). In a JSON text a key's quotes are never escaped and
 * a string's always are, so the first `,"seq":` and `,"payload":` are the envelope's own, and so
 * is the last `,"createdAt":`.
 */
export function frameOf(j: string, opKey: string, idKey: string): string | undefined {
  const opName = JSON.stringify(opKey)
  const idName = JSON.stringify(idKey)
  const op = j.indexOf(',"op":') + 6
  const end = j.lastIndexOf(',"createdAt":')
  const at = j.indexOf(',"payload":', op)
  const p = at < 0 ? '{}' : j.slice(at + 11, end)
  let members = ''
  if (p[0] !== '{') {
    if (opKey === 'data' || idKey === 'data') return
    members = `,"data":${p}`
  } else if (p !== '{}') {
    if (p.indexOf(`${opName}:`) >= 0 || p.indexOf(`${idName}:`) >= 0) return
    members = `,${p.slice(1, -1)}`
  }
  // The id as `encode` quoted it, after the 6 characters of `{"id":`.
  return `{${opName}:${j.slice(op, at < 0 ? end : at)}${members},${idName}:${j.slice(6, j.indexOf(',"seq":'))}}`
}

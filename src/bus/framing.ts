/**
 * Frames on the wire: an outbound message is `{[opKey]: op, ...payload, [idKey]: id}` (a payload
 * that is not a plain object travels under `data`); an inbound one must decode to an object
 * with a string operator. The payload rule (src/payload.ts) holds whatever the codec.
 */
import { describe, MpbusError } from '../errors'
import { frameOf } from '../outbox/record'
import { toJson } from '../payload'
import type { SocketData } from '../platform/types'
import { byteLength } from '../utf8'
import type { Frame } from './dispatcher'
import type { Resolved } from './options'

export interface Framing {
  /** The frame of a message, encoded. Throws `BAD_PAYLOAD` (the payload rule, or a codec that threw). */
  encode(op: string, payload: unknown, id?: string): SocketData
  /**
   * The frame of a queued envelope, given its JSON (src/outbox/record.ts) and id. Without a codec
   * it is spliced from that JSON (`frameOf`), not decoded and encoded again. Throws as `encode`.
   */
  queued(json: string, id: string): SocketData
  /**
   * The frames in `data`: one, or several from a batch (a JSON array of frames, docs/protocol.md);
   * undefined after reporting `BAD_FRAME` / `FRAME_TOO_LARGE`.
   */
  decode(data: SocketData): Frame[] | undefined
}

/** Throws `BAD_OPERATOR` unless `op` can name a frame: a non-empty string. */
export function checkOperator(op: unknown): asserts op is string {
  if (typeof op !== 'string' || !op) throw new MpbusError('BAD_OPERATOR', `not an operator: ${describe(op)}`)
}

export function createFraming(options: Resolved, report: (error: MpbusError) => void): Framing {
  const { opKey, idKey, codec, maxInboundBytes } = options

  function toFrame(op: string, payload: unknown, id?: string): Record<string, unknown> {
    const frame: Record<string, unknown> = { [opKey]: op }
    if (payload && typeof payload === 'object' && !Array.isArray(payload)) {
      for (const key of Object.keys(payload)) {
        // The operator is the bus's to set. An own `__proto__` is data like any other key.
        if (key === opKey) continue
        const value = (payload as Record<string, unknown>)[key]
        if (key === '__proto__')
          Object.defineProperty(frame, key, { value, enumerable: true, writable: true, configurable: true })
        else frame[key] = value
      }
    } else if (payload !== undefined) frame.data = payload
    if (id) frame[idKey] = id
    return frame
  }

  const framing: Framing = {
    queued(j, id) {
      const spliced = codec ? undefined : frameOf(j, opKey, idKey)
      if (spliced !== undefined) return spliced
      const e = JSON.parse(j)
      return framing.encode(e.op, e.payload, id)
    },
    encode(op, payload, id) {
      if (!codec) return toJson(toFrame(op, payload, id))
      toJson(payload)
      let data: SocketData
      try {
        data = codec.encode(toFrame(op, payload, id))
      } catch (e) {
        throw new MpbusError('BAD_PAYLOAD', `codec.encode threw: ${describe(e)}`, e)
      }
      // What a socket cannot send would fail on every link, for ever, blocking the queue behind it.
      if (typeof data !== 'string' && !(typeof ArrayBuffer !== 'undefined' && data instanceof ArrayBuffer))
        throw new MpbusError(
          'BAD_PAYLOAD',
          `codec.encode must return a string or an ArrayBuffer: ${describe(data)}`,
        )
      return data
    },
    decode(data) {
      const binary = !!data && typeof data === 'object' && typeof data.byteLength === 'number'
      if (typeof data !== 'string' && !binary) {
        report(new MpbusError('BAD_FRAME', `no frame: ${describe(data)}`, data))
        return
      }
      const size = typeof data === 'string' ? byteLength(data) : data.byteLength
      if (size > maxInboundBytes) {
        report(new MpbusError('FRAME_TOO_LARGE', `${size} bytes > ${maxInboundBytes}`))
        return
      }
      let frame: any
      try {
        if (codec) frame = codec.decode(data)
        else if (typeof data === 'string') frame = JSON.parse(data)
        else throw new Error('binary frame where JSON is expected')
      } catch (e) {
        report(new MpbusError('BAD_FRAME', describe(e), data))
        return
      }
      const all: any[] = [].concat(frame)
      const frames = all.filter((f) => f && typeof f === 'object' && typeof f[opKey] === 'string')
      // One report per message; the good frames of a batch still count.
      if (!frames.length || frames.length < all.length)
        report(new MpbusError('BAD_FRAME', `no ${opKey}`, data))
      return frames
    },
  }
  return framing
}

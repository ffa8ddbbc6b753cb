/**
 * Who listens to which stream on this node, and what each connection has had: the fan-out of
 * what the engine tells every node (docs/protocol.md, "Pushes and resume"). A live frame reaches
 * a connection once and in order: one at or before the connection's last position is a repeat
 * (its resume sent it already) and is skipped; one past a gap closes the connection (1012), and
 * the client resumes from the engine's history instead.
 */
import type { WebSocket } from 'ws'
import { asMpbusError, MpbusError } from '../errors'
import {
  CLOSE_RESUME,
  CLOSE_SESSION_ENDED,
  CLOSE_TOO_SLOW,
  isRepeat,
  OP,
  type Position,
  SESSION_END,
} from '../protocol'
import { uncork } from '../task'
import { close, limit, send } from './send'
import { positioned, roomStream } from './streams'
import type { EngineEvent, Phase } from './types'

/** A logged-in connection, as the fan-out sees it (src/server/connection-state.ts keeps the rest). */
export interface Reader {
  readonly ws: WebSocket
  readonly user: string
  /** While `resuming`, live frames wait in `held`: none may overtake the login's answer or the replay. */
  readonly phase: Phase
  held: Array<{ stream: string; position: Position; out: string }>
  /** The last position sent, per stream. */
  at: Map<string, Position>
  streams: Set<string>
}

/** This node's logged-in connections, by user and by the streams they read. */
export interface Fanout {
  byUser: Map<string, Set<Reader>>
  byStream: Map<string, Set<Reader>>
  report(error: MpbusError, user: string | undefined): void
  /** Bytes a connection may hold unsent before it counts as too slow (`maxBufferedBytes`). */
  maxBufferedBytes: number
}

export const createFanout = (report: Fanout['report'], maxBufferedBytes = Infinity): Fanout => ({
  byUser: new Map(),
  byStream: new Map(),
  report,
  maxBufferedBytes,
})

/** ms a connection closed for being too slow has to take its close frame before it is cut off. */
const CLOSE_GRACE = 1000

/**
 * Closes a connection that reads slower than it is sent to: its socket held more than
 * `maxBufferedBytes` from earlier tasks when a frame was to leave (src/server/send.ts). It
 * resumes from its positions, so closing it loses nothing.
 */
function tooSlow(fanout: Fanout, reader: Reader, unsent: number): void {
  const { ws } = reader
  const why = `${unsent} bytes unsent (maxBufferedBytes): closed with ${CLOSE_TOO_SLOW}`
  fanout.report(new MpbusError('TOO_LARGE', why), reader.user)
  uncork(ws)
  ws.close(CLOSE_TOO_SLOW, 'too slow')
  // Its close frame waits behind what it does not read: what it holds goes now, not at the ping.
  setTimeout(() => ws.terminate(), CLOSE_GRACE).unref()
}

function put<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (set) set.add(value)
  else map.set(key, new Set([value]))
}

function take<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key)
  if (set && set.delete(value) && !set.size) map.delete(key)
}

/** This node's connections of `user` that got past `authenticate` (resuming, ready, or closing). */
export const readersOf = (fanout: Fanout, user: string): Reader[] => Array.from(fanout.byUser.get(user) || [])

/** Counts `reader` among its user's: it hears the user's room changes and session end from now on. */
export function add(fanout: Fanout, reader: Reader): void {
  put(fanout.byUser, reader.user, reader)
  limit(reader.ws, fanout.maxBufferedBytes, (unsent) => tooSlow(fanout, reader, unsent))
}

export function listen(fanout: Fanout, reader: Reader, stream: string): void {
  reader.streams.add(stream)
  put(fanout.byStream, stream, reader)
}

/** The connection closed: it hears nothing more. */
export function drop(fanout: Fanout, reader: Reader): void {
  take(fanout.byUser, reader.user, reader)
  for (const stream of reader.streams) take(fanout.byStream, stream, reader)
}

/** Sends a live frame (`out`, its JSON) unless the connection has it; a gap (or another epoch) means it must resume. */
export function deliver(
  fanout: Fanout,
  reader: Reader,
  stream: string,
  position: Position,
  out: string,
): void {
  if (reader.ws.readyState !== reader.ws.OPEN) return
  if (reader.phase === 'resuming') {
    reader.held.push({ stream, position, out })
    return
  }
  const last = reader.at.get(stream)
  if (isRepeat(last, position)) return
  if (last && (last.epoch !== position.epoch || position.offset !== last.offset + 1)) {
    const gap = `${stream}: ${last.offset}@${last.epoch} then ${position.offset}@${position.epoch}: resume`
    fanout.report(new MpbusError('STREAM_GAP', gap), reader.user)
    close(reader.ws, CLOSE_RESUME, 'resume')
    return
  }
  reader.at.set(stream, position)
  send(reader.ws, out)
}

/** What every node hears from the engine, in the engine's order. */
export function hear(fanout: Fanout, event: EngineEvent): void {
  if (event.type === 'frame') {
    const readers = fanout.byStream.get(event.stream)
    if (!readers) return
    const out = JSON.stringify(positioned(event.frame, event.stream, event.position))
    for (const reader of Array.from(readers)) deliver(fanout, reader, event.stream, event.position, out)
  } else if (event.type === 'join' || event.type === 'leave') {
    const stream = roomStream(event.room)
    for (const reader of readersOf(fanout, event.user)) {
      if (event.type === 'join') listen(fanout, reader, stream)
      else {
        reader.streams.delete(stream)
        reader.at.delete(stream)
        take(fanout.byStream, stream, reader)
      }
    }
  } else if (event.type === 'end') {
    for (const reader of readersOf(fanout, event.user)) {
      send(reader.ws, { [OP]: SESSION_END, reason: event.reason })
      close(reader.ws, CLOSE_SESSION_ENDED, 'session ended')
    }
  } else if (event.type === 'error') fanout.report(asMpbusError('ENGINE_DOWN', event.error), undefined)
  else if (event.type === 'reset')
    for (const readers of Array.from(fanout.byUser.values()))
      for (const reader of Array.from(readers)) close(reader.ws, CLOSE_RESUME, 'engine reset')
}

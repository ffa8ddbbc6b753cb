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
import type { Awaitable, Engine, EngineEvent, Phase } from './types'

/** A logged-in connection, as the fan-out sees it (src/server/connection-state.ts keeps the rest). */
export interface Reader {
  readonly ws: WebSocket
  readonly user: string
  /** While `resuming`, live frames wait in `held`: none may overtake the login's answer or the replay. */
  readonly phase: Phase
  held: Array<{ stream: string; position: Position; out: string }>
  /** The engine may have lost frames of its streams while its resume was read: it must resume again. */
  stale: boolean
  /** Streams joined while connected whose history since the join is being read: their live frames wait here. */
  catching?: Map<string, Array<{ position: Position; out: string }>>
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
  /** What this node hears is what its connections read: the engine is told (`listen`, `unlisten`). */
  engine: Pick<Engine, 'listen' | 'unlisten' | 'since'>
  /** Reads of a stream in flight that a login may share, by stream and by what they read (`shared`). */
  reads: Map<string, Map<string, Promise<unknown>>>
}

export const createFanout = (
  engine: Fanout['engine'],
  report: Fanout['report'],
  maxBufferedBytes = Infinity,
): Fanout => ({
  byUser: new Map(),
  byStream: new Map(),
  report,
  maxBufferedBytes,
  engine,
  reads: new Map(),
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

/** `reader` reads `stream` from now on; resolves once the engine is sure to tell this node of every frame of it. */
export function listen(fanout: Fanout, reader: Reader, stream: string): Awaitable<void> | undefined {
  if (reader.streams.has(stream)) return
  reader.streams.add(stream)
  put(fanout.byStream, stream, reader)
  // A read already in flight may miss what this node hears before `reader` was counted: not shared with it.
  fanout.reads.delete(stream)
  const { engine } = fanout
  return engine.listen && engine.listen(stream)
}

/**
 * What a login reads of `stream` (`key` names the read): an identical read in flight, begun after
 * every reader of the stream on this node started to listen, is shared, so that a thousand
 * clients of one room coming back at once cost one read of the room, not a thousand (as
 * Centrifugo's singleflight: https://centrifugal.dev/docs/pro/scalability). A read begun
 * earlier would miss the frames this node heard before the new reader was counted.
 */
export function shared<T>(fanout: Fanout, stream: string, key: string, read: () => Awaitable<T>): Promise<T> {
  const reads = fanout.reads.get(stream) || new Map<string, Promise<unknown>>()
  const inFlight = reads.get(key)
  if (inFlight) return inFlight as Promise<T>
  fanout.reads.set(stream, reads)
  const done = Promise.resolve()
    .then(read)
    .finally(() => {
      if (reads.get(key) === done) reads.delete(key)
      if (!reads.size && fanout.reads.get(stream) === reads) fanout.reads.delete(stream)
    })
  reads.set(key, done)
  return done
}

function unlisten(fanout: Fanout, reader: Reader, stream: string): void {
  if (!reader.streams.delete(stream)) return
  take(fanout.byStream, stream, reader)
  const { engine } = fanout
  if (engine.unlisten) engine.unlisten(stream)
}

/** The connection closed: it hears nothing more. */
export function drop(fanout: Fanout, reader: Reader): void {
  take(fanout.byUser, reader.user, reader)
  for (const stream of Array.from(reader.streams)) unlisten(fanout, reader, stream)
}

/**
 * A room joined while connected: the connection reads it from the join's position. This node may
 * have begun to hear the room only now, and the join and the room's frames come on two channels
 * in no common order: once the subscription stands, what was appended since the join is read,
 * and the live frames heard meanwhile wait behind it (a repeat of what was read is then skipped).
 */
function joined(fanout: Fanout, reader: Reader, stream: string, from: Position | undefined): void {
  if (reader.streams.has(stream)) return
  if (from && !reader.at.has(stream)) reader.at.set(stream, from)
  const { engine } = fanout
  const subscribed = listen(fanout, reader, stream)
  if (!engine.listen || !from) return
  if (!reader.catching) reader.catching = new Map()
  const catching = reader.catching
  const waiting: Array<{ position: Position; out: string }> = []
  catching.set(stream, waiting)
  Promise.resolve(subscribed)
    .then(() => engine.since(stream, from))
    .then((missed) => {
      if (catching.get(stream) !== waiting) return
      catching.delete(stream)
      if (!missed) throw new MpbusError('STREAM_GAP', `${stream}: the history lost the join's position`)
      for (const { offset, frame } of missed) {
        const position = { offset, epoch: from.epoch }
        deliver(fanout, reader, stream, position, JSON.stringify(positioned(frame, stream, position)))
      }
      for (const live of waiting) deliver(fanout, reader, stream, live.position, live.out)
    })
    .catch((e) => {
      if (catching.get(stream) === waiting) catching.delete(stream)
      fanout.report(asMpbusError('ENGINE_DOWN', e), reader.user)
      close(reader.ws, CLOSE_RESUME, 'resume')
    })
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
  // A stream whose history since a join is being read first: what it reads must come first.
  const catching = reader.catching && reader.catching.get(stream)
  if (catching) {
    catching.push({ position, out })
    return
  }
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
  } else if (event.type === 'join') {
    const stream = roomStream(event.room)
    for (const reader of readersOf(fanout, event.user)) joined(fanout, reader, stream, event.position)
  } else if (event.type === 'leave') {
    const stream = roomStream(event.room)
    for (const reader of readersOf(fanout, event.user)) {
      unlisten(fanout, reader, stream)
      reader.at.delete(stream)
      if (reader.catching) reader.catching.delete(stream)
    }
  } else if (event.type === 'end') {
    for (const reader of readersOf(fanout, event.user)) {
      send(reader.ws, { [OP]: SESSION_END, reason: event.reason })
      close(reader.ws, CLOSE_SESSION_ENDED, 'session ended')
    }
  } else if (event.type === 'error') fanout.report(asMpbusError('ENGINE_DOWN', event.error), undefined)
  else if (event.type === 'reset') {
    const groups = event.streams
      ? event.streams.map((stream) => fanout.byStream.get(stream) || new Set<Reader>())
      : Array.from(fanout.byUser.values())
    // A login being served finishes first: refused if its reads failed (1013), else told to resume.
    for (const readers of groups)
      for (const reader of Array.from(readers))
        if (reader.phase === 'resuming') reader.stale = true
        else close(reader.ws, CLOSE_RESUME, 'engine reset')
  }
}

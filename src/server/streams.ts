/**
 * Streams on the server's side (docs/protocol.md, "Pushes and resume"): the names of a user's
 * and a room's streams, a frame with its position, and what a login gets before any live frame.
 */
import { type Frame, LOGIN_OK, OP, type Position, RESYNC, STREAM, STREAMS, TAKES_BATCH } from '../protocol'
import type { Engine, Stored } from './types'

export type { Frame }

export const userStream = (user: string) => `user:${user}`
export const roomStream = (room: string) => `room:${room}`

/** The frame of `op` and the fields of `payload` (the operator is the server's to set). */
export const frameOf = (op: string, payload: Record<string, unknown> | undefined): Frame =>
  Object.assign({}, payload, { [OP]: op })

/** `frame` with its position in `stream`. */
export const positioned = (frame: Frame, stream: string, position: Position): Frame =>
  Object.assign({}, frame, { [STREAM]: { name: stream, offset: position.offset, epoch: position.epoch } })

/** The positions a login frame carries, only those well formed. */
function positionsOf(login: Frame): Map<string, Position> {
  const out = new Map<string, Position>()
  const given = login[STREAMS]
  if (!given || typeof given !== 'object') return out
  for (const name of Object.keys(given)) {
    const p = given[name]
    if (p && Number.isSafeInteger(p.offset) && p.offset >= 0 && typeof p.epoch === 'string')
      out.set(name, { offset: p.offset, epoch: p.epoch })
  }
  return out
}

/** What a login gets: the frames to send first, in order, and the position each stream is left at. */
export interface Resumed {
  frames: Frame[]
  at: Map<string, Position>
}

/**
 * What a login gets, in order: the answer (`LoginOK` with `fields`) with the start of each stream
 * the client named no position for, a `Resync` for each stream whose gap the history no longer
 * covers, then what it missed, oldest first. Only the user's own stream and its rooms: a
 * position of any other stream is ignored. `listen(streams)` resolves once the engine is sure to
 * tell this node of every frame of those streams appended from then on: the user's own stream
 * first (it carries the user's room changes), then the rooms, and only then is any of them read,
 * so that a live frame is either in what is read or heard after it.
 *
 * A stream with no client position starts at its tip on a first login (no position for the user's
 * own stream: no earlier life of this client is owed anything), and otherwise at the position the
 * user joined the room at, when the engine kept one: a room joined while the app was offline or
 * closed is replayed from the join.
 */
export async function resume(
  engine: Engine,
  user: string,
  login: Frame,
  fields: object | undefined,
  listen: (streams: string[]) => unknown,
  share: <T>(stream: string, key: string, read: () => T | PromiseLike<T>) => PromiseLike<T>,
): Promise<Resumed> {
  const given = positionsOf(login)
  const own = userStream(user)
  await listen([own])
  // The user's rooms and own stream, read in one step by an engine that can (Redis: one script).
  const first = engine.login ? await engine.login(user, given.get(own)) : undefined
  const joined: Record<string, Position | null> = first
    ? first.joined
    : engine.joined
      ? await engine.joined(user)
      : {}
  if (!first && !engine.joined) for (const room of await engine.rooms(user)) joined[room] = null
  const streams = [own].concat(Object.keys(joined).sort().map(roomStream))
  const starts = new Map<string, Position>()
  for (const room of Object.keys(joined)) {
    const stream = roomStream(room)
    const at = joined[room]
    const mine = given.get(stream)
    // A member reads a room from its join on: an earlier position (a made-up one) is raised to it.
    if (at && mine && mine.epoch === at.epoch && mine.offset < at.offset) given.set(stream, at)
  }
  if (given.has(own))
    for (const room of Object.keys(joined)) {
      const at = joined[room]
      if (at && !given.has(roomStream(room))) starts.set(roomStream(room), at)
    }
  await listen(streams.slice(1))
  const tips: Record<string, Position> = {}
  const at = new Map<string, Position>()
  const resyncs: Frame[] = []
  const replay: Frame[] = []
  // Read in parallel (one round trip to Redis), assembled in order.
  const read = await Promise.all(
    streams.map(async (stream) => {
      const from = given.get(stream) || starts.get(stream)
      if (first && stream === own)
        return !from
          ? { stream, tip: first.tip }
          : first.missed
            ? { stream, from, missed: first.missed }
            : { stream, tip: first.tip, resync: true }
      const tip = () => share(stream, 'tip', () => engine.tip(stream))
      if (!from) return { stream, tip: await tip() }
      const missed = await share(stream, `${from.offset} ${from.epoch}`, () => engine.since(stream, from))
      return missed ? { stream, from, missed } : { stream, tip: await tip(), resync: true }
    }),
  )
  for (const r of read) {
    if (r.tip) {
      at.set(r.stream, r.tip)
      if (r.resync) resyncs.push(positioned({ [OP]: RESYNC }, r.stream, r.tip))
      else tips[r.stream] = r.tip
      continue
    }
    const { from, missed } = r as { from: Position; missed: Stored[] }
    // A stream started at its join: the client learns where it starts, as it would a tip.
    if (!given.has(r.stream)) tips[r.stream] = from
    at.set(r.stream, missed.length ? { offset: missed[missed.length - 1]!.offset, epoch: from.epoch } : from)
    for (const { offset, frame } of missed)
      replay.push(positioned(frame, r.stream, { offset, epoch: from.epoch }))
  }
  const answer = Object.assign({}, fields, { [OP]: LOGIN_OK, [STREAMS]: tips }) as Frame
  return { frames: [answer].concat(resyncs, replay), at }
}

/**
 * The largest message of several frames a login says it takes (`Batch`, docs/protocol.md): 0 when
 * it names none (a client that reads one frame per message).
 */
export function batchOf(login: Frame): number {
  const max = login[TAKES_BATCH]
  return Number.isSafeInteger(max) && max > 0 ? max : 0
}

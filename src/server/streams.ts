/**
 * Streams on the server's side (docs/protocol.md, "Pushes and resume"): the names of a user's
 * and a room's streams, a frame with its position, and what a login gets before any live frame.
 */
import type { Engine, Position } from './types'

export type Frame = Record<string, any>

/** The operator field, and the field of a pushed frame with its position (of a login and its answer: the positions). */
export const OP = 'Operator'
const STREAM = 'Stream'
const STREAMS = 'Streams'

export const userStream = (user: string) => `user:${user}`
export const roomStream = (room: string) => `room:${room}`

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

/**
 * What a login gets, in order: the answer (`LoginOK` with `fields`) with the tips of the streams
 * the client named no position for, a `Resync` for each stream whose gap the history no longer
 * covers, then what it missed, oldest first. Only the user's own stream and its rooms: a
 * position of any other stream is ignored.
 */
export function resume(engine: Engine, user: string, login: Frame, fields: object | undefined): Frame[] {
  const given = positionsOf(login)
  const tips: Record<string, Position> = {}
  const resyncs: Frame[] = []
  const replay: Frame[] = []
  for (const stream of [userStream(user)].concat(engine.rooms(user).map(roomStream))) {
    const from = given.get(stream)
    if (!from) {
      tips[stream] = engine.tip(stream)
      continue
    }
    const missed = engine.since(stream, from)
    if (!missed) resyncs.push(positioned({ [OP]: 'Resync' }, stream, engine.tip(stream)))
    else
      for (const { offset, frame } of missed)
        replay.push(positioned(frame, stream, { offset, epoch: from.epoch }))
  }
  return [Object.assign({}, fields, { [OP]: 'LoginOK', [STREAMS]: tips }) as Frame].concat(resyncs, replay)
}

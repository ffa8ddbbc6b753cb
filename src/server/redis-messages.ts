/**
 * What the Redis engine publishes on a stream's channel (redis-scripts.ts writes the first two):
 *
 *   f <offset> <epoch>\n<frame JSON>     a frame appended to the stream
 *   j [user, room, offset, epoch]         on a user's stream: the user joined a room, read from there
 *   l [user, room]                        on a user's stream: the user left a room
 *   e [user, reason or null]              on a user's stream: end the user's sessions
 */
import type { EngineEvent } from './types'

export const leaveMessage = (user: string, room: string) => `l ${JSON.stringify([user, room])}`

export const endMessage = (user: string, reason: string | undefined) =>
  `e ${JSON.stringify([user, reason === undefined ? null : reason])}`

/** The event a message of `stream`'s channel stands for (undefined: none); throws on a malformed one. */
export function eventOf(message: string, stream: string): EngineEvent | undefined {
  const kind = message.slice(0, 2)
  const rest = message.slice(2)
  if (kind === 'f ') {
    const newline = rest.indexOf('\n')
    const space = rest.indexOf(' ')
    const position = { offset: Number(rest.slice(0, space)), epoch: rest.slice(space + 1, newline) }
    return { type: 'frame', stream, position, frame: JSON.parse(rest.slice(newline + 1)) }
  }
  if (kind === 'j ') {
    const [user, room, offset, epoch] = JSON.parse(rest)
    return { type: 'join', user, room, position: { offset, epoch } }
  }
  if (kind === 'l ') {
    const [user, room] = JSON.parse(rest)
    return { type: 'leave', user, room }
  }
  if (kind === 'e ') {
    const [user, reason] = JSON.parse(rest)
    return { type: 'end', user, reason: reason === null ? undefined : reason }
  }
  return undefined
}

/**
 * The memory engine, the default: everything in this process. Each stream keeps its last
 * `history` frames; a restart starts a new epoch, so a client that resumes with a position of the
 * old epoch is told to resync (docs/protocol.md, "Pushes and resume").
 */
import { randomBytes } from 'node:crypto'
import type { Engine, Position, Stored } from './types'

export interface MemoryEngineOptions {
  /** Frames kept per stream for resume; older ones are trimmed. @default 1000 */
  history?: number
  /**
   * ms a message id stays in a user's duplicate window. At least the client outbox's ttl, so a
   * message resent as late as the client may resend it is still recognised. @default 8 days
   */
  dedupTtl?: number
}

const DAY = 24 * 60 * 60 * 1000

export function memoryEngine(options: MemoryEngineOptions = {}): Engine {
  const history = options.history === undefined ? 1000 : options.history
  const dedupTtl = options.dedupTtl === undefined ? 8 * DAY : options.dedupTtl
  if (!(history >= 1)) throw new RangeError(`history must be >= 1: ${history}`)
  const epoch = randomBytes(6).toString('base64url')
  const streams = new Map<string, { offset: number; frames: Stored[] }>()
  const seen = new Map<string, number>()
  const rooms = new Map<string, Set<string>>()
  let sweptAt = Date.now()

  function stream(name: string) {
    let s = streams.get(name)
    if (!s) {
      s = { offset: 0, frames: [] }
      streams.set(name, s)
    }
    return s
  }

  /** Forgets expired ids, at most once per minute: Map order is insertion order, so the oldest lead. */
  function sweep(now: number): void {
    if (now - sweptAt < 60_000) return
    sweptAt = now
    for (const [key, expires] of seen) {
      if (expires > now) break
      seen.delete(key)
    }
  }

  return {
    append(name, frame) {
      const s = stream(name)
      s.offset++
      s.frames.push({ offset: s.offset, frame })
      if (s.frames.length > history) s.frames.shift()
      return { offset: s.offset, epoch }
    },
    tip: (name) => ({ offset: stream(name).offset, epoch }),
    since(name, from: Position) {
      const s = stream(name)
      if (from.epoch !== epoch || from.offset > s.offset) return undefined
      if (from.offset === s.offset) return []
      const first = s.frames.length ? s.frames[0]!.offset : s.offset + 1
      if (from.offset + 1 < first) return undefined
      return s.frames.slice(from.offset + 1 - first)
    },
    remember(user, id) {
      const now = Date.now()
      sweep(now)
      const key = `${user}\u0000${id}`
      const expires = seen.get(key)
      if (expires !== undefined && expires > now) return false
      // Re-inserted so that the Map stays ordered by expiry.
      seen.delete(key)
      seen.set(key, now + dedupTtl)
      return true
    },
    forget(user, id) {
      seen.delete(`${user}\u0000${id}`)
    },
    join(user, room) {
      let set = rooms.get(user)
      if (!set) {
        set = new Set()
        rooms.set(user, set)
      }
      set.add(room)
    },
    leave(user, room) {
      const set = rooms.get(user)
      if (set) set.delete(room)
    },
    rooms: (user) => Array.from(rooms.get(user) || []),
    members(room) {
      const out: string[] = []
      for (const [user, set] of rooms) if (set.has(room)) out.push(user)
      return out
    },
  }
}

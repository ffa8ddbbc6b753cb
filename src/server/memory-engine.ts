/**
 * The memory engine, the default: everything in this process. Each stream keeps its last
 * `history` frames; a restart starts a new epoch, so a client that resumes with a position of the
 * old epoch is told to resync (docs/protocol.md, "Pushes and resume").
 */
import { randomBytes } from 'node:crypto'
import { roomStream } from './streams'
import type { Engine, EngineEvent, Position, Stored } from './types'

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

/** The memory engine answers at once: its methods return values, not Promises. */
export interface MemoryEngine extends Engine {
  subscribe(listener: (event: EngineEvent) => void): () => void
  append(stream: string, frame: Record<string, unknown>): Position
  tip(stream: string): Position
  since(stream: string, from: Position): Stored[] | undefined
  remember(user: string, id: string): boolean | 'busy'
  forget(user: string, id: string): void
  handled(user: string, id: string): void
  join(user: string, room: string): void
  leave(user: string, room: string): void
  rooms(user: string): string[]
  joined(user: string): Record<string, Position>
  members(room: string): string[]
  end(user: string, reason?: string): void
}

export function memoryEngine(options: MemoryEngineOptions = {}): MemoryEngine {
  const history = options.history === undefined ? 1000 : options.history
  const dedupTtl = options.dedupTtl === undefined ? 8 * DAY : options.dedupTtl
  if (!(history >= 1)) throw new RangeError(`history must be >= 1: ${history}`)
  const epoch = randomBytes(6).toString('base64url')
  const streams = new Map<string, { offset: number; frames: Stored[] }>()
  const seen = new Map<string, number>()
  /** Ids whose handler is running: a resend of one is 'busy', neither handled nor acked. */
  const handling = new Set<string>()
  const rooms = new Map<string, Set<string>>()
  let sweptAt = Date.now()
  /** One process, so "every node" is every server on this engine, told synchronously, in order. */
  const listeners = new Set<(event: EngineEvent) => void>()
  const emit = (event: EngineEvent) => {
    for (const listener of Array.from(listeners)) listener(event)
  }

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

  /** The room stream's position at each join, by user and room. */
  const joins = new Map<string, Position>()

  const engine: MemoryEngine = {
    subscribe(listener) {
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    append(name, frame) {
      const s = stream(name)
      s.offset++
      s.frames.push({ offset: s.offset, frame })
      if (s.frames.length > history) s.frames.shift()
      const position = { offset: s.offset, epoch }
      emit({ type: 'frame', stream: name, position, frame })
      return position
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
      // A resend while the first copy's handler still runs (its client gave up waiting for the
      // ack): acking it could lose the message if that handler then fails.
      if (handling.has(key)) return 'busy'
      const expires = seen.get(key)
      if (expires !== undefined && expires > now) return false
      handling.add(key)
      // Re-inserted so that the Map stays ordered by expiry.
      seen.delete(key)
      seen.set(key, now + dedupTtl)
      return true
    },
    forget(user, id) {
      seen.delete(`${user}\u0000${id}`)
      handling.delete(`${user}\u0000${id}`)
    },
    handled(user, id) {
      handling.delete(`${user}\u0000${id}`)
    },
    join(user, room) {
      let set = rooms.get(user)
      if (!set) {
        set = new Set()
        rooms.set(user, set)
      }
      // A second join keeps the first one's position: nothing since then was read by this membership.
      if (!set.has(room)) joins.set(`${user}\u0000${room}`, engine.tip(roomStream(room)))
      set.add(room)
      emit({ type: 'join', user, room })
    },
    joined(user) {
      const out: Record<string, Position> = {}
      for (const room of engine.rooms(user)) out[room] = joins.get(`${user}\u0000${room}`)!
      return out
    },
    leave(user, room) {
      const set = rooms.get(user)
      if (set) set.delete(room)
      emit({ type: 'leave', user, room })
      joins.delete(`${user}\u0000${room}`)
    },
    rooms: (user) => Array.from(rooms.get(user) || []),
    members(room) {
      const out: string[] = []
      for (const [user, set] of rooms) if (set.has(room)) out.push(user)
      return out
    },
    end: (user, reason) => emit({ type: 'end', user, reason }),
  }
  return engine
}

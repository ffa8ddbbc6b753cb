/**
 * The memory engine, the default: everything in this process. Each stream keeps its last
 * `history` frames for `historyTtl` after its last push; a restart starts a new epoch, so a client
 * that resumes with a position of the old epoch is told to resync (docs/protocol.md, "Pushes and
 * resume").
 */
import { randomBytes } from 'node:crypto'
import { MpbusError } from '../errors'
import { type EngineOptions, engineSettings } from './engine-options'
import { roomStream } from './streams'
import type { Engine, EngineEvent, Position, Stored } from './types'

/** The memory engine keeps streams, the duplicate window and claims as the Redis engine does. */
export type MemoryEngineOptions = EngineOptions

const SWEEP_EVERY = 60_000

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
  /** Drops everything; every call after it throws `CLOSED`. `server.close()` calls it. */
  close(): void
}

interface Stream {
  epoch: string
  offset: number
  frames: Stored[]
  expires: number
}

export function memoryEngine(options: MemoryEngineOptions = {}): MemoryEngine {
  const { history, historyTtl, dedupTtl, dedupLimit, claimTtl } = engineSettings(options)
  const engineEpoch = randomBytes(6).toString('base64url')
  /** Streams made so far: a stream made again after it expired is another epoch. */
  let made = 0
  /** By last push (Map order is insertion order): the first ones expire first. */
  const streams = new Map<string, Stream>()
  /**
   * The duplicate window, per user (so no two users' ids can share a key), each id in the order
   * remembered: a positive time is the expiry of a handled mark, a negative one minus the expiry
   * of a claim (its handler still runs).
   */
  const windows = new Map<string, Map<string, number>>()
  /** Each user's rooms, with the room stream's position at the join. */
  const rooms = new Map<string, Map<string, Position>>()
  let sweptAt = Date.now()
  let closed = false
  /** One process, so "every node" is every server on this engine, told synchronously, in order. */
  const listeners = new Set<(event: EngineEvent) => void>()
  const emit = (event: EngineEvent) => {
    for (const listener of Array.from(listeners)) listener(event)
  }
  const open = () => {
    if (closed) throw new MpbusError('CLOSED', 'the memory engine is closed')
  }
  const expiry = (now: number, ttl: number) => (ttl ? now + ttl : Infinity)

  /** The stream, made (a new epoch) when missing or expired. */
  function stream(name: string, now: number): Stream {
    let s = streams.get(name)
    if (!s || s.expires <= now) {
      if (s) streams.delete(name)
      s = { epoch: `${engineEpoch}.${(made++).toString(36)}`, offset: 0, frames: [], expires: 0 }
      streams.set(name, s)
      s.expires = expiry(now, historyTtl)
    }
    return s
  }

  /** Forgets expired streams and ids, at most once per minute. */
  function sweep(now: number): void {
    if (now - sweptAt < SWEEP_EVERY) return
    sweptAt = now
    for (const [name, s] of streams) {
      if (s.expires > now) break
      streams.delete(name)
    }
    // Ids are in the order remembered, and a claim outlives no handled mark made after it: the
    // expired ones lead, but for a few claims that ran into later marks; those go at the limit.
    for (const [user, window] of windows) {
      for (const [id, until] of window) {
        if (Math.abs(until) > now) break
        window.delete(id)
      }
      if (!window.size) windows.delete(user)
    }
  }

  /** Makes `id` the newest of `user`'s window, with its time; past `dedupLimit`, the oldest goes. */
  function mark(user: string, id: string, until: number): void {
    const window = windows.get(user) || new Map<string, number>()
    windows.set(user, window)
    window.delete(id)
    window.set(id, until)
    if (window.size > dedupLimit) window.delete(window.keys().next().value as string)
  }

  const engine: MemoryEngine = {
    subscribe(listener) {
      open()
      listeners.add(listener)
      return () => void listeners.delete(listener)
    },
    append(name, frame) {
      open()
      const now = Date.now()
      sweep(now)
      const s = stream(name, now)
      // Moved to the end: the streams stay in the order of their expiry.
      streams.delete(name)
      streams.set(name, s)
      s.expires = expiry(now, historyTtl)
      s.offset++
      s.frames.push({ offset: s.offset, frame })
      if (s.frames.length > history) s.frames.shift()
      const position = { offset: s.offset, epoch: s.epoch }
      emit({ type: 'frame', stream: name, position, frame })
      return position
    },
    tip(name) {
      open()
      const s = stream(name, Date.now())
      return { offset: s.offset, epoch: s.epoch }
    },
    since(name, from: Position) {
      open()
      const s = stream(name, Date.now())
      if (from.epoch !== s.epoch || from.offset > s.offset) return undefined
      if (from.offset === s.offset) return []
      const first = s.frames.length ? s.frames[0]!.offset : s.offset + 1
      if (from.offset + 1 < first) return undefined
      return s.frames.slice(from.offset + 1 - first)
    },
    remember(user, id) {
      open()
      const now = Date.now()
      sweep(now)
      const window = windows.get(user)
      const until = window && window.get(id)
      if (until !== undefined && Math.abs(until) > now) return until > 0 ? false : 'busy'
      // A resend while the first copy's handler still runs (its client gave up waiting for the
      // ack) is 'busy' above: acking it could lose the message if that handler then fails.
      mark(user, id, -(now + claimTtl))
      return true
    },
    forget(user, id) {
      open()
      const window = windows.get(user)
      // A claim only: a handler that outlived its claim and then failed leaves the handled mark
      // of the copy that was handled after it.
      if (window && window.get(id)! < 0) window.delete(id)
    },
    handled(user, id) {
      open()
      mark(user, id, expiry(Date.now(), dedupTtl))
    },
    join(user, room) {
      open()
      const joined = rooms.get(user) || new Map<string, Position>()
      rooms.set(user, joined)
      // A second join keeps the first one's position: nothing since then was read by this membership.
      if (!joined.has(room)) joined.set(room, engine.tip(roomStream(room)))
      emit({ type: 'join', user, room })
    },
    joined(user) {
      open()
      const out: Record<string, Position> = {}
      for (const [room, at] of rooms.get(user) || []) out[room] = at
      return out
    },
    leave(user, room) {
      open()
      const joined = rooms.get(user)
      if (joined) {
        joined.delete(room)
        if (!joined.size) rooms.delete(user)
      }
      emit({ type: 'leave', user, room })
    },
    rooms(user) {
      open()
      return Array.from((rooms.get(user) || new Map()).keys())
    },
    members(room) {
      open()
      return Array.from(rooms.keys()).filter((user) => rooms.get(user)!.has(room))
    },
    end(user, reason) {
      open()
      emit({ type: 'end', user, reason })
    },
    close() {
      closed = true
      for (const each of [listeners, streams, windows, rooms]) each.clear()
    },
  }
  return engine
}

/**
 * Resume of what the server pushed (docs/protocol.md, "Pushes and resume"). The last position
 * of every stream is kept in storage, under the outbox's prefix, and sent with every login, so a
 * reconnect or a cold start after a kill gets what it missed; a pushed frame at or before the
 * stored position is a repeat and is dropped before the handlers. A `Resync` frame says the
 * server's history no longer covers the gap: the position jumps to the server's and the bus says
 * `resync`, so the app reloads from its source of truth then, and only then.
 *
 * Storage is written once per WebSocket message, before any of its frames reaches a handler: a
 * server that sends a replay or a burst as one message (a batch) costs one write for all of it.
 */
import { MpbusError } from '../errors'
import type { Storage } from '../platform/types'
import type { Frame } from './dispatcher'
import type { BusEvents } from './types'

export interface Position {
  offset: number
  epoch: string
}

type Positions = Record<string, Position>

export interface Streams {
  /**
   * Fields for the login frame: the positions, when there are any (a server that pushes none sees
   * the app's frame unchanged), with `Batch`, the largest message this client takes.
   */
  login(): { Streams: Positions; Batch: number } | undefined
  /**
   * The frames of one message: stores their positions once, then hands each that is for the
   * handlers to `handle`, in order (a repeat is dropped, a `Resync` becomes the `resync` event).
   */
  accept(frames: Frame[], handle: (frame: Frame) => void): void
}

const isPosition = (p: any): p is Position =>
  !!p && typeof p.offset === 'number' && typeof p.epoch === 'string'

export function createStreams(
  storage: Storage | undefined,
  key: string,
  opKey: string,
  loginAnswer: string | undefined,
  maxBytes: number,
  resync: (event: BusEvents['resync']) => void,
  report: (error: MpbusError) => void,
): Streams {
  /** What this life has handled (or been told to resync to): a frame at or before it is a repeat. */
  let positions: Positions = {}

  /** Runs a storage step; a failure is reported, and the positions stay in memory for this life. */
  function attempt(step: () => void): void {
    try {
      if (storage) step()
    } catch (e) {
      report(e instanceof MpbusError ? e : new MpbusError('CORRUPT_RECORD', key, e))
    }
  }

  /** The well-formed positions in storage: another tab's or an earlier life's last write. */
  function stored(): Positions {
    const out: Positions = {}
    attempt(() => {
      const all = JSON.parse(storage!.get(key) || '{}')
      for (const name in all) if (isPosition(all[name])) out[name] = all[name]
    })
    return out
  }
  positions = stored()

  const keep = (name: string, p: Position) => {
    positions[name] = { offset: p.offset, epoch: p.epoch }
  }

  return {
    login() {
      // Storage is the truth at every login: for each stream, the position that can only cause
      // repeats, never a miss. In one epoch that is the lower offset; offsets of two epochs do not
      // compare, and either is safe (the current one replays, the other resyncs): the stored one
      // wins, and this life adopts it, as it adopts a stream it did not know.
      const sent: Positions = {}
      const disk = stored()
      for (const name in disk) {
        const mine = positions[name]
        const same = mine && mine.epoch === disk[name]!.epoch
        if (!same) keep(name, disk[name]!)
        sent[name] = same && mine.offset < disk[name]!.offset ? mine : disk[name]!
      }
      for (const name in positions) if (!sent[name]) sent[name] = positions[name]!
      return Object.keys(sent).length ? { Streams: sent, Batch: maxBytes } : undefined
    },
    accept(frames, handle) {
      let changed = false
      const fresh: Frame[] = []
      for (const frame of frames) {
        const op = frame[opKey]
        const tips = (op === loginAnswer && frame.Streams) as Positions | undefined
        // Streams this client had no position for start where the server says: their tip, or the join.
        if (tips && typeof tips === 'object')
          for (const name of Object.keys(tips))
            if (!positions[name] && isPosition(tips[name])) {
              keep(name, tips[name]!)
              changed = true
            }
        const at = frame.Stream as (Position & { name: string }) | undefined
        if (isPosition(at)) {
          const known = positions[at.name]
          if (op !== 'Resync' && known && known.epoch === at.epoch && at.offset <= known.offset) continue
          keep(at.name, at)
          changed = true
        }
        fresh.push(frame)
      }
      // Once per message, before any handler: a kill cannot come between a write and its handlers.
      if (changed) attempt(() => storage!.set(key, JSON.stringify(positions)))
      for (const frame of fresh) {
        const at = frame.Stream as Position & { name: string }
        if (frame[opKey] !== 'Resync' || !isPosition(at)) handle(frame)
        else resync({ stream: at.name, offset: at.offset, epoch: at.epoch })
      }
    },
  }
}

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
import {
  isRepeat,
  type Position,
  type PositionFields,
  type RESYNC,
  type STREAMS,
  type TAKES_BATCH,
} from '../protocol'
import type { Frame } from './dispatcher'
import type { BusEvents } from './types'

type Positions = Record<string, Position>

export interface Streams {
  /**
   * Fields for the login frame: the positions, when there are any (a server that pushes none sees
   * the app's frame unchanged), with `Batch`, the largest message this client takes.
   */
  login(): { [STREAMS]: Positions; [TAKES_BATCH]: number } | undefined
  /**
   * The frames of one message: stores their positions once, then hands each that is for the
   * handlers to `handle`, in order (a repeat is dropped, a `Resync` becomes the `resync` event),
   * while `open()` says the bus is.
   */
  accept(frames: Frame[], handle: (frame: Frame) => void, open: () => boolean): void
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
  /** Runs a storage step; a failure is reported, and the positions stay in memory for this life. */
  function attempt(step: () => void): void {
    try {
      if (storage) step()
    } catch (e) {
      report(e instanceof MpbusError ? e : new MpbusError('CORRUPT_RECORD', key, e))
    }
  }

  /**
   * What this life has handled (or been told to resync to): a frame at or before it is a repeat.
   * Filled from storage at each login: nothing arrives before one.
   */
  const positions: Positions = {}

  return {
    login() {
      // Storage is the truth at every login (another tab's or an earlier life's last write): for
      // each stream, the position that can only cause repeats, never a miss. In one epoch that is
      // the lower offset; offsets of two epochs do not compare, and either is safe (the current one
      // replays, the other resyncs): the stored one wins, and this life adopts it, as it adopts a
      // stream it did not know.
      const sent: Positions = Object.assign({}, positions)
      let disk: Positions = {}
      attempt(() => {
        disk = JSON.parse(storage!.get(key) || '{}') || {}
      })
      for (const name in disk) {
        const at = disk[name]!
        let mine = positions[name]
        if (!isPosition(at)) continue
        if (!mine || mine.epoch !== at.epoch) mine = positions[name] = at
        sent[name] = mine.offset < at.offset ? mine : at
      }
      return Object.keys(sent).length ? { Streams: sent, Batch: maxBytes } : undefined
    },
    accept(frames, handle, open) {
      let changed: unknown
      /**
       * What the handlers (or the `resync` listeners) get, in order, once the positions are stored:
       * each with the stream it moved and that stream's position before it.
       */
      const then: Array<[() => void, string?, Position?]> = []
      for (const frame of frames) {
        const op = frame[opKey]
        const tips = (op === loginAnswer && (frame as PositionFields).Streams) as Positions
        // Streams this client had no position for start where the server says: their tip, or the join.
        for (const name in tips)
          if (!positions[name] && isPosition(tips[name])) changed = positions[name] = tips[name]!
        const at = (frame as PositionFields).Stream as Position & { name: string }
        const valid = isPosition(at)
        const resyncs = op === ('Resync' satisfies typeof RESYNC)
        if (!resyncs && valid && isRepeat(positions[at.name], at)) continue
        const before = valid ? positions[at.name] : undefined
        if (valid) changed = positions[at.name] = { offset: at.offset, epoch: at.epoch }
        then.push([
          resyncs && valid
            ? () => resync({ stream: at.name, offset: at.offset, epoch: at.epoch })
            : () => handle(frame),
          valid ? at.name : undefined,
          before,
        ])
      }
      const write = () => attempt(() => storage!.set(key, JSON.stringify(positions)))
      // Once per message, before any handler: a kill cannot come between a write and its handlers.
      if (changed) write()
      for (let i = 0; i < then.length; i++) {
        then[i]![0]()
        if (open()) continue
        // A handler closed the bus: the frames after it were never handled, so their streams go
        // back to where they were, and a later life gets them again (one more write, only then).
        let undone = false
        for (let j = then.length - 1; j > i; j--) {
          const [, name, was] = then[j]!
          if (!name) continue
          if (was) positions[name] = was
          else delete positions[name]
          undone = true
        }
        if (undone) write()
        return
      }
    },
  }
}

/**
 * Resume of what the server pushed (docs/protocol.md, "Pushes and resume"). The last position
 * of every stream is kept in storage, under the outbox's prefix, and sent with every login, so a
 * reconnect or a cold start after a kill gets what it missed; a pushed frame at or before the
 * stored position is a repeat and is dropped before the handlers. A `Resync` frame says the
 * server's history no longer covers the gap: the position jumps to the server's and the bus says
 * `resync`, so the app reloads from its source of truth then, and only then.
 */
import { MpbusError } from '../errors'
import type { Storage } from '../platform/types'
import { isRepeat, type Position, type PositionFields, type RESYNC, type STREAMS } from '../protocol'
import type { Frame } from './dispatcher'
import type { BusEvents } from './types'

export interface Streams {
  /** Fields for the login frame: the positions, when there are any (a server that pushes none sees the app's frame unchanged). */
  login(): { [STREAMS]: Record<string, Position> } | undefined
  /** Whether `frame` is for the handlers: false for a repeat and for `Resync`. */
  accept(op: string, frame: Frame, loginAnswer: boolean): boolean
}

const isPosition = (p: any): p is Position & { name: string } =>
  !!p && typeof p.offset === 'number' && typeof p.epoch === 'string'

export function createStreams(
  storage: Storage | undefined,
  key: string,
  resync: (event: BusEvents['resync']) => void,
  report: (error: MpbusError) => void,
): Streams {
  let positions: Record<string, Position> = {}

  /** Runs a storage step; a failure is reported, and the positions stay in memory for this life. */
  function attempt(step: () => void): void {
    try {
      if (storage) step()
    } catch (e) {
      report(e instanceof MpbusError ? e : new MpbusError('CORRUPT_RECORD', key, e))
    }
  }
  attempt(() => {
    const stored = JSON.parse(storage!.get(key) || '{}')
    if (stored && typeof stored === 'object') positions = stored
  })

  function keep(name: string, p: Position): void {
    positions[name] = { offset: p.offset, epoch: p.epoch }
    attempt(() => storage!.set(key, JSON.stringify(positions)))
  }

  return {
    login: () => (Object.keys(positions).length ? { Streams: positions } : undefined),
    accept(op, frame, loginAnswer) {
      const tips = (loginAnswer && (frame as PositionFields).Streams) as Record<string, unknown> | undefined
      // Streams this client had no position for start at the server's tip.
      if (tips && typeof tips === 'object')
        for (const name of Object.keys(tips))
          if (!positions[name] && isPosition(tips[name])) keep(name, tips[name])
      const at = (frame as PositionFields).Stream as unknown
      if (!isPosition(at)) return true
      if (op === ('Resync' satisfies typeof RESYNC)) {
        keep(at.name, at)
        resync({ stream: at.name, offset: at.offset, epoch: at.epoch })
        return false
      }
      if (isRepeat(positions[at.name], at)) return false
      keep(at.name, at)
      return true
    },
  }
}

// A bus on the scripted platform (test/helpers/script-platform.ts), with fake timers driven by
// the test: for the bus's timing and bookkeeping that real sockets cannot interleave precisely.
import { type BusOptions, createBus } from '../../src/bus/index'
import type { MpbusError } from '../../src/errors'
import { createMemoryStorage } from '../../src/platform/memory-storage'
import { createScriptPlatform } from './script-platform'

export const ready = { ok: 'LoginOK', fail: ['LoginError'], timeout: 1000 }
export const login = () => ({ op: 'userLogin', payload: { code: 'c' } })

export function setupBus(options: Partial<BusOptions> = {}) {
  const sp = createScriptPlatform()
  const bus = createBus({
    url: 'ws://test',
    platform: sp.platform,
    storage: createMemoryStorage(),
    heartbeat: false,
    ...options,
  })
  const errors: MpbusError[] = []
  bus.events.on('error', (e) => errors.push(e))
  /** The frames the socket (the newest by default) was given, parsed, in order. */
  const frames = (socket = sp.last!) => socket.sent.map((d) => JSON.parse(d as string))
  /** Their operators. */
  const ops = (socket = sp.last!) => frames(socket).map((f) => f.Operator)
  return { sp, bus, errors, frames, ops }
}

// A transport Link (src/transport) under the test's hand: it records what is sent, keeps each
// send's `done` for the test to call, and ends on drop() or halt(), as the transport's does.
import type { MpbusError } from '../../src/errors'
import type { SocketData } from '../../src/platform/types'
import type { Link } from '../../src/transport'

export interface FakeLink extends Link {
  readonly sent: SocketData[]
  /** The `done` of each accepted send, in order. */
  readonly dones: ((error?: MpbusError) => void)[]
  readonly dropped: MpbusError[]
  readonly halted: MpbusError[]
  /** Whether send() takes frames (a suspended transport's link does not). */
  accepting: boolean
}

export function createFakeLink(): FakeLink {
  let current = true
  const link: FakeLink = {
    sent: [],
    dones: [],
    dropped: [],
    halted: [],
    accepting: true,
    get current() {
      return current
    },
    send(data, done) {
      if (!current || !link.accepting) return false
      link.sent.push(data)
      link.dones.push(done || (() => {}))
      return true
    },
    drop(error) {
      if (!current) return
      current = false
      link.dropped.push(error)
    },
    halt(error) {
      if (!current) return
      current = false
      link.halted.push(error)
    },
  }
  return link
}

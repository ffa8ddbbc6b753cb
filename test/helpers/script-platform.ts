// A scripted in-memory Platform for timing tests: connect() records a socket, and the test
// decides what the "network" does to it (open, message, close, error). It keeps the listener
// contract of src/platform/types.ts (open at most once and before any message, one close or
// error, nothing after either or after our close()), unless `leaky` is set, in which case events
// still reach sockets the transport has closed, as a buggy adapter would deliver them.
import { MpbusError } from '../../src/errors'
import type { CloseInfo, Platform, SocketData, SocketListeners } from '../../src/platform/types'

export interface ScriptSocket {
  readonly id: number
  readonly url: string
  /** Frames the transport sent. */
  readonly sent: SocketData[]
  /** Frames the server got: those of `sent` whose send did not fail. */
  readonly received: SocketData[]
  /** The transport called close() on it. */
  closedByUs: boolean
  /** The platform reported close or error on it. */
  ended: boolean
  opened: boolean
  /** Not closed by us and not ended: the platform still holds it. */
  readonly alive: boolean
  open(): void
  message(data: SocketData): void
  close(code?: number, reason?: string): void
  error(message?: string): void
}

export interface ScriptPlatformOptions {
  /** Deliver events to sockets the transport already closed (a contract-breaking adapter). */
  leaky?: boolean
  /** Provide watchNetwork / watchApp. @default true */
  watch?: boolean
  /** Initial network state reported by watchNetwork at subscription (only when false). */
  online?: boolean
}

export function createScriptPlatform(options: ScriptPlatformOptions = {}) {
  const sockets: ScriptSocket[] = []
  const network = new Set<(online: boolean) => void>()
  const app = new Set<(visible: boolean) => void>()
  let refuse: unknown
  let sendFails = false

  function makeSocket(url: string, listeners: SocketListeners): ScriptSocket {
    const deliver = () => options.leaky || (!socket.closedByUs && !socket.ended)
    const socket: ScriptSocket = {
      id: sockets.length,
      url,
      sent: [],
      received: [],
      closedByUs: false,
      ended: false,
      opened: false,
      get alive() {
        return !socket.closedByUs && !socket.ended
      },
      open() {
        if (!deliver() || socket.opened || socket.ended) return
        socket.opened = true
        listeners.open()
      },
      message(data) {
        if (!deliver() || !socket.opened || socket.ended) return
        listeners.message(data)
      },
      close(code = 1006, reason = '') {
        if (!deliver() || socket.ended) return
        socket.ended = true
        listeners.close({ code, reason } satisfies CloseInfo)
      },
      error(message = 'boom') {
        if (!deliver() || socket.ended) return
        socket.ended = true
        listeners.error(new MpbusError('SOCKET_ERROR', message))
      },
    }
    return socket
  }

  const platform: Platform = {
    name: 'script',
    connect(url, listeners) {
      if (refuse !== undefined) {
        const e = refuse
        refuse = undefined
        throw e
      }
      const socket = makeSocket(url, listeners)
      sockets.push(socket)
      return {
        send(data, done) {
          socket.sent.push(data)
          if (!sendFails) socket.received.push(data)
          if (done) done(sendFails ? new MpbusError('SOCKET_ERROR', 'send failed') : undefined)
        },
        close() {
          socket.closedByUs = true
        },
      }
    },
  }
  if (options.watch !== false) {
    platform.watchNetwork = (listener) => {
      network.add(listener)
      if (options.online === false) listener(false)
      return () => network.delete(listener)
    }
    platform.watchApp = (listener) => {
      app.add(listener)
      return () => app.delete(listener)
    }
  }

  return {
    platform,
    sockets,
    /** The newest socket. */
    get last(): ScriptSocket | undefined {
      return sockets[sockets.length - 1]
    },
    /** Sockets the platform still holds (neither closed by us nor ended). */
    alive: () => sockets.filter((s) => s.alive),
    /** The next connect() throws this. */
    refuseNext(error: unknown = new Error('connectSocket:fail runningState=suspend')) {
      refuse = error
    },
    failSends(on: boolean) {
      sendFails = on
    },
    network(online: boolean) {
      for (const l of [...network]) l(online)
    },
    app(visible: boolean) {
      for (const l of [...app]) l(visible)
    },
    watchers: () => network.size + app.size,
  }
}

export type ScriptPlatform = ReturnType<typeof createScriptPlatform>

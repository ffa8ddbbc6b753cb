/**
 * A TCP proxy on loopback that breaks the link the ways mobile networks do:
 *
 *   client ──▶ 127.0.0.1:proxy.port ──▶ target
 *
 * - `pass()`: forward bytes both ways (the default).
 * - `stall()`: live connections stop reading what the target sends, and drop nothing: a client that
 *   reads slower than it is pushed to. TCP's buffers fill, then the target's own. `pass()` reads again.
 * - `freeze()`: live connections stay open but nothing gets through in either direction, and no FIN
 *   or RST is sent: the half-dead link (a dead NAT mapping, a lift, a tunnel) that only an app-level
 *   heartbeat notices. New connections are accepted and frozen too, so even a handshake hangs.
 * - `reset()`: every live connection is torn down with RST; the client notices at once.
 * - `refuse()`: the proxy stops listening, so connects fail with ECONNREFUSED; live ones are reset.
 *
 * Bytes that arrive while a connection is frozen are dropped, as a dead link drops them. After
 * `pass()`, new connections forward normally; connections frozen earlier stay frozen, which is what
 * a dead NAT mapping looks like.
 */
import net from 'node:net'

export interface FaultProxy {
  readonly port: number
  /** `ws://127.0.0.1:PORT` + path. */
  url(path?: string): string
  pass(): void
  stall(): void
  freeze(): void
  reset(): void
  refuse(): void
  /** Client connections currently open to the proxy. */
  connections(): number
  /** Resets every connection and stops listening for good. */
  close(): Promise<void>
}

type Mode = 'pass' | 'freeze' | 'refuse'

interface Pair {
  client: net.Socket
  upstream: net.Socket
  frozen: boolean
}

export async function createFaultProxy(target: { host?: string; port: number }): Promise<FaultProxy> {
  const host = target.host ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  let mode: Mode = 'pass'
  let server: net.Server | undefined
  let port = 0
  let closed = false

  function onConnection(client: net.Socket): void {
    if (mode === 'refuse') {
      client.resetAndDestroy()
      return
    }
    const upstream = net.connect({ host, port: target.port })
    const pair: Pair = { client, upstream, frozen: mode === 'freeze' }
    pairs.add(pair)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.on('data', (chunk) => {
      if (!pair.frozen) upstream.write(chunk)
    })
    upstream.on('data', (chunk) => {
      if (!pair.frozen) client.write(chunk)
    })
    // One side going away is passed on (a reset as a reset), unless the link is frozen: then the
    // other side learns nothing, as with a real dead link.
    const relayEnd = (from: net.Socket, to: net.Socket) => {
      from.on('error', () => {})
      from.on('close', (hadError) => {
        if (!to.destroyed && !pair.frozen) {
          if (hadError) to.resetAndDestroy()
          else to.end()
        }
        if (client.destroyed && upstream.destroyed) pairs.delete(pair)
      })
    }
    relayEnd(client, upstream)
    relayEnd(upstream, client)
  }

  function listen(): Promise<void> {
    const s = net.createServer({ allowHalfOpen: false }, onConnection)
    server = s
    return new Promise((resolve, reject) => {
      s.once('error', reject)
      s.listen(port, '127.0.0.1', () => {
        s.off('error', reject)
        port = (s.address() as net.AddressInfo).port
        resolve()
      })
    })
  }

  function stopListening(): Promise<void> {
    const s = server
    server = undefined
    // close() stops accepting at once; its callback waits for connections we reset ourselves.
    return new Promise((resolve) => (s ? s.close(() => resolve()) : resolve()))
  }

  function resetAll(): void {
    for (const pair of Array.from(pairs)) {
      pairs.delete(pair)
      pair.client.resetAndDestroy()
      pair.upstream.resetAndDestroy()
    }
  }

  await listen()

  return {
    get port() {
      return port
    },
    url: (path = '') => `ws://127.0.0.1:${port}${path}`,
    pass() {
      if (closed) return
      mode = 'pass'
      for (const pair of pairs) pair.upstream.resume()
      // Listening again on the same port: the bind happens before any connect the caller makes next.
      if (!server) void listen()
    },
    stall() {
      for (const pair of pairs) pair.upstream.pause()
    },
    freeze() {
      if (closed) return
      mode = 'freeze'
      for (const pair of pairs) pair.frozen = true
      if (!server) void listen()
    },
    reset: resetAll,
    refuse() {
      if (closed) return
      mode = 'refuse'
      void stopListening()
      resetAll()
    },
    connections() {
      let n = 0
      for (const pair of pairs) if (!pair.client.destroyed) n++
      return n
    },
    async close() {
      closed = true
      mode = 'refuse'
      resetAll()
      await stopListening()
    },
  }
}

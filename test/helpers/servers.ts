// Servers and sockets for the tests of the test kit itself: a bare `ws` server that records what it
// sees, and a count of the writes that reach the kernel.
/** A bare `ws` server on loopback that records what it sees; each call has its own arrays. */
export async function rawServer() {
  const { WebSocketServer } = await import('ws')
  const peers: import('ws').WebSocket[] = []
  const got: Array<{ data: string | Buffer; binary: boolean }> = []
  const closes: Array<{ code: number; reason: string }> = []
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  server.on('connection', (ws) => {
    peers.push(ws)
    ws.on('message', (data: Buffer, binary) => got.push({ data: binary ? data : data.toString(), binary }))
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }))
  })
  await new Promise((resolve) => server.once('listening', resolve))
  const port = (server.address() as import('node:net').AddressInfo).port
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    peers,
    got,
    closes,
    close() {
      for (const ws of server.clients) ws.terminate()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * Counts the writes that reach the kernel through a Node TCP socket: its Writable hands each one,
 * a single chunk or a batch, to `_write` or `_writev`. Returns the count so far.
 */
export function countWrites(tcp: any): () => number {
  let writes = 0
  for (const method of ['_write', '_writev']) {
    const original = tcp[method].bind(tcp)
    tcp[method] = (...args: unknown[]) => {
      writes++
      return original(...args)
    }
  }
  return () => writes
}

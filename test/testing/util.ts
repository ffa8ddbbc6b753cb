// Small helpers for the test kit's own tests. Everything here runs on real time, even while a test
// fakes timers: node:timers exports and a `now` captured at import are not touched by vi.useFakeTimers.
import { setImmediate as realSetImmediate, setTimeout as realSetTimeout } from 'node:timers'

const now = performance.now.bind(performance)

/** Waits real milliseconds. */
export const sleep = (ms: number) => new Promise((resolve) => realSetTimeout(resolve, ms))

/** Polls `check` until it returns truthy (bytes on loopback take real time). */
export async function until<T>(check: () => T, what = 'condition', timeout = 3000): Promise<T> {
  const start = now()
  for (;;) {
    const value = check()
    if (value) return value
    if (now() - start > timeout) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => realSetImmediate(resolve))
    await sleep(2)
  }
}

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

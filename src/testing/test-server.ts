/**
 * A `ws` server on loopback that speaks the seeds' protocol (shared/seeds/004): JSON frames routed
 * by their `Operator` field.
 *
 *   client ─ {Operator:'userLogin', userOpenId?} ─▶  ◀─ {Operator:'LoginOK', openId}
 *   client ─ {Operator:'Heart'} ─────────────────▶  ◀─ {Operator:'HeartOK'}
 *   client ─ {Operator:…, MsgId:'m1'} ───────────▶  ◀─ {Operator:'Ack', MsgId:'m1'}   (when `ack` is on)
 *
 * It records every frame it receives, in arrival order. A frame whose id was already seen from the
 * same user (the `openId` of its login, or the connection when it has not logged in) is a duplicate:
 * it is acked again but not recorded twice, and counted in `duplicates()`.
 */
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'

export interface TestServerOptions {
  /** @default 0 (any free port) */
  port?: number
  /** Ack frames that carry an id. `false` turns acks off. @default { op: 'Ack', idKey: 'MsgId' } */
  ack?: { op?: string; idKey?: string } | false
  /**
   * Decides a login: return fields to merge into the `LoginOK` reply, or `null` to refuse it with
   * `{Operator: 'LoginError'}`. @default every login succeeds
   */
  loginOk?: (frame: any) => object | null
}

export interface ReceivedFrame {
  /** The connection it came on: 1, 2, … in order of connection, never reused (even across restarts). */
  client: number
  /** The parsed JSON, or the raw text when it is not JSON, or a Buffer for a binary frame. */
  frame: any
  /** `Date.now()` when it arrived. */
  at: number
}

/** Return `true` to mark the frame handled: the built-in reply (LoginOK, HeartOK, Ack) is skipped. */
export type FrameHook = (
  frame: any,
  reply: (frame: object | string) => void,
  client: number,
) => undefined | boolean

export interface TestServer {
  readonly port: number
  /** `ws://127.0.0.1:PORT` */
  readonly url: string
  readonly received: ReceivedFrame[]
  /** Connected clients. */
  clients(): number
  /** Frames that repeated an id already recorded for the same user. */
  duplicates(): number
  /** Sends to every client: an object as JSON, a string as is, binary as a binary frame. */
  broadcast(frame: object | string | ArrayBuffer | Uint8Array): void
  sendTo(client: number, frame: object | string | ArrayBuffer | Uint8Array): void
  /** Server-initiated close of every client. @default code 1000 */
  closeAll(code?: number, reason?: string): void
  onFrame(hook: FrameHook): () => void
  /** Resolves with the first received frame (already recorded or still to come) that matches. */
  waitFor(match: (entry: ReceivedFrame) => boolean, timeout?: number): Promise<ReceivedFrame>
  /** A crash: every connection is dropped without a close frame (clients see 1006) and the port closes. */
  stop(): Promise<void>
  /** Listens again on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

export async function createTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const ack = options.ack === false ? undefined : { op: 'Ack', idKey: 'MsgId', ...options.ack }
  const loginOk = options.loginOk ?? (() => ({}))
  const received: ReceivedFrame[] = []
  const hooks = new Set<FrameHook>()
  const sockets = new Map<number, WebSocket>()
  /** Ids seen per user, for duplicate detection. */
  const seen = new Map<string, Set<string>>()
  const waiters = new Set<(entry: ReceivedFrame) => void>()
  let duplicates = 0
  let nextClient = 1
  let port = options.port ?? 0
  let wss: WebSocketServer | undefined

  function send(ws: WebSocket, frame: object | string | ArrayBuffer | Uint8Array): void {
    if (ws.readyState !== WebSocket.OPEN) return
    if (typeof frame === 'string') ws.send(frame)
    else if (frame instanceof ArrayBuffer || ArrayBuffer.isView(frame)) ws.send(frame, { binary: true })
    else ws.send(JSON.stringify(frame))
  }

  function onConnection(ws: WebSocket): void {
    const client = nextClient++
    let user = `client:${client}`
    sockets.set(client, ws)
    ws.on('close', () => sockets.delete(client))
    ws.on('error', () => {})
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let frame: any = isBinary ? data : data.toString('utf8')
      if (!isBinary) {
        try {
          frame = JSON.parse(frame)
        } catch {}
      }
      const reply = (f: object | string) => send(ws, f)
      const op = frame && typeof frame === 'object' ? frame.Operator : undefined
      if (op === 'userLogin') user = `user:${frame.userOpenId ?? user}`

      const id = ack && op !== undefined ? frame[ack.idKey] : undefined
      let fresh = true
      if (id !== undefined) {
        const ids = seen.get(user) ?? new Set<string>()
        seen.set(user, ids)
        fresh = !ids.has(String(id))
        ids.add(String(id))
      }
      if (fresh) {
        const entry = { client, frame, at: Date.now() }
        received.push(entry)
        for (const w of Array.from(waiters)) w(entry)
      } else duplicates++

      let builtIn = true
      for (const hook of Array.from(hooks)) if (hook(frame, reply, client) === true) builtIn = false
      if (!builtIn) return
      if (op === 'userLogin') {
        const extra = loginOk(frame)
        if (extra === null) reply({ Operator: 'LoginError' })
        else {
          const openId = frame.userOpenId ?? `openid-${client}`
          user = `user:${openId}`
          reply({ Operator: 'LoginOK', openId, ...extra })
        }
      } else if (op === 'Heart') reply({ Operator: 'HeartOK' })
      if (ack && id !== undefined) reply({ Operator: ack.op, [ack.idKey]: id })
    })
  }

  async function start(): Promise<void> {
    if (wss) return
    const server = new WebSocketServer({ host: '127.0.0.1', port })
    wss = server
    server.on('connection', onConnection)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.once('listening', () => {
        server.off('error', reject)
        resolve()
      })
    })
    port = (server.address() as AddressInfo).port
  }

  async function stop(): Promise<void> {
    const server = wss
    wss = undefined
    for (const ws of sockets.values()) ws.terminate()
    sockets.clear()
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  await start()

  return {
    get port() {
      return port
    },
    get url() {
      return `ws://127.0.0.1:${port}`
    },
    received,
    clients: () => sockets.size,
    duplicates: () => duplicates,
    broadcast(frame) {
      for (const ws of sockets.values()) send(ws, frame)
    },
    sendTo(client, frame) {
      const ws = sockets.get(client)
      if (ws) send(ws, frame)
    },
    closeAll(code = 1000, reason = '') {
      for (const ws of sockets.values()) ws.close(code, reason)
    },
    onFrame(hook) {
      hooks.add(hook)
      return () => void hooks.delete(hook)
    },
    waitFor(match, timeout = 2000) {
      const found = received.find(match)
      if (found) return Promise.resolve(found)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`test server: no matching frame within ${timeout} ms`))
        }, timeout)
        const check = (entry: ReceivedFrame) => {
          if (!match(entry)) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(entry)
        }
        waiters.add(check)
      })
    },
    stop,
    start,
    close: stop,
  }
}

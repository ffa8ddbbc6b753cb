/**
 * The reference server: a `ws` server that speaks the protocol of docs/protocol.md, JSON frames
 * routed by their `Operator` field. It is the test kit's server, the demo's server, and the place to
 * start a Node backend from.
 *
 *   client ─ {Operator:'userLogin', userCode?, userOpenId?} ─▶  ◀─ {Operator:'LoginOK', openId}
 *   client ─ {Operator:'Heart'} ────────────────────────────▶  ◀─ {Operator:'HeartOK'}
 *   client ─ {Operator:…, MsgId:'m1', …} ───────────────────▶  ◀─ {Operator:'Ack', MsgId:'m1'}  (when `ack` is on)
 *                                                                  ◀─ {Operator:'Ack', MsgIds:['m1','m2']}  (`ack.batch`)
 *
 * What happens to one frame, in order:
 * 1. Duplicate removal. A frame with an id (`MsgId`) whose id is in its user's window of recent ids
 *    is a repeat: a client resends what it sent but never saw acknowledged (a reset, a frozen link).
 *    It is acked again (the client needs that Ack to let the message go) but recorded and routed
 *    only once. The user is the `openId` of the connection's login, or the connection itself before
 *    one. The window is bounded: the last `dedupWindow` ids per user, oldest forgotten first. mpbus
 *    resends only what is still in its outbox, at most `outbox.maxMessages` (1000 by default), so a
 *    window ten times that catches every repeat.
 * 2. `onFrame` hooks (tests): they see every frame, repeats included, and can take it over.
 * 3. The route for its operator, from a `Map` (an operator named `__proto__` is an ordinary key):
 *    `userLogin` and `Heart` are built in; add yours with `routes` or `route()`.
 * 4. The Ack, after the route ran: acknowledge only what you have taken responsibility for.
 *    `withholdAcks()` keeps it from leaving for chosen users (the demo's "acks lost" fault).
 *
 * What a production server must add (this one keeps everything in memory, in one process):
 * - Authentication. This server believes the `userOpenId` a client sends. A real one exchanges the
 *   `wx.login` code for the openId on its side (WeChat's `code2session`) and trusts only that, or a
 *   session token it issued.
 * - A persistent seen-id window. Here `stop()`/`start()` keep the window because the process lives
 *   on; a real restart would forget it and let every in-flight resend through twice. Store it
 *   (Redis `SET seen:{openId}:{MsgId} 1 NX EX 604800` is an atomic check-and-remember; or a capped
 *   sorted set per user) and write it in the same transaction as the message's effect when you can.
 * - Several nodes: a client reconnects to whichever node the load balancer picks, so the window must
 *   be shared between them (the same Redis), not kept per process.
 * - Bounds on users: the window is bounded per user, but this server never forgets a user.
 */
import type { AddressInfo } from 'node:net'
import { WebSocket, WebSocketServer } from 'ws'
import { ACK, HEART, HEART_OK, ID, LOGIN, LOGIN_ERROR, LOGIN_OK, OP } from '../protocol'
import { createAcks } from '../server/acks'

export interface TestServerOptions {
  /** @default 0 (any free port) */
  port?: number
  /**
   * Ack frames that carry an id. `false` turns acks off (and duplicate removal, which needs ids).
   * `batch: true` coalesces the acks of one macrotask per connection into one frame,
   * `{Operator:'Ack', MsgIds:[…]}` (the id field's name with an `s`; a lone id still goes as
   * `MsgId`), as a server under load would (docs/protocol.md).
   * @default { op: 'Ack', idKey: 'MsgId', batch: false }
   */
  ack?: { op?: string; idKey?: string; batch?: boolean } | false
  /**
   * Decides a login: return fields to merge into the `LoginOK` reply, or `null` to refuse it with
   * `{Operator: 'LoginError'}`. An `openId` among the fields names the user (a `code2session`
   * stand-in); otherwise it is the frame's `userOpenId`, or one made up from the connection number.
   * @default every login succeeds
   */
  loginOk?: (frame: any) => object | null
  /** How many recent message ids are remembered per user for duplicate removal. @default 10000 */
  dedupWindow?: number
  /**
   * Reads a per-user sequence number from a frame, for the order check in `stats()`: a first
   * arrival numbered below one already seen from the same user counts as out of order.
   * @default none (no order check)
   */
  sequence?: (frame: any) => number | undefined
  /** More routes, by operator; they replace a built-in route of the same name. */
  routes?: Map<string, Route>
}

export interface ReceivedFrame {
  /** The connection it came on: 1, 2, … in order of connection, never reused (even across restarts). */
  client: number
  /** The parsed JSON, or the raw text when it is not JSON, or a Buffer for a binary frame. */
  frame: any
  /** `Date.now()` when it arrived. */
  at: number
}

/** What a route gets besides the frame. */
export interface RouteContext {
  /** The connection number. */
  client: number
  /** The user the connection belongs to: its login's `openId`, or `client:N` before a login. */
  user: string
  reply(frame: object | string): void
  /** Makes `openId` the connection's user from now on (what a login route does). */
  login(openId: string): void
}

export type Route = (frame: any, context: RouteContext) => void

/** Return `true` to mark the frame handled: the route (LoginOK, HeartOK, yours) and the Ack are skipped. */
export type FrameHook = (
  frame: any,
  reply: (frame: object | string) => void,
  client: number,
) => undefined | boolean

/** Counts for one user (see `stats()`). */
export interface UserStats {
  /** Distinct messages (frames with an id) received. */
  received: number
  /** Repeats of an id still in the window: acked again, not recorded or routed again. */
  duplicates: number
  /** First arrivals numbered (by `sequence`) below the highest number already seen. */
  outOfOrder: number
  /** The highest `sequence` number seen, or -Infinity. */
  highest: number
}

export interface TestServer {
  readonly port: number
  /** `ws://127.0.0.1:PORT` */
  readonly url: string
  /** Every frame received, repeats excepted, in arrival order. */
  readonly received: ReceivedFrame[]
  /** Connected clients. */
  clients(): number
  /** Frames that repeated an id already recorded for the same user (all users). */
  duplicates(): number
  /** Counts per user, keyed by openId (or `client:N` for frames before a login). */
  stats(): Map<string, UserStats>
  /** Adds or replaces the route of an operator; returns the function that removes it. */
  route(op: string, handler: Route): () => void
  /** Sends to every client: an object as JSON, a string as is, binary as a binary frame. */
  broadcast(frame: object | string | ArrayBuffer | Uint8Array): void
  sendTo(client: number, frame: object | string | ArrayBuffer | Uint8Array): void
  /** Server-initiated close of every client. @default code 1000 */
  closeAll(code?: number, reason?: string): void
  /**
   * Drops every connection of `user` (an openId, or `client:N`) without a close frame, as a
   * network does: its client sees 1006. Returns how many connections it dropped.
   */
  terminate(user: string): number
  /**
   * Lost acknowledgements: while on, frames from the users `match` accepts are recorded and routed
   * as usual, but their Acks are not sent, as if they died on the way back. The client keeps those
   * messages and, on its next link, resends them with the same ids: repeats, which are dropped and
   * acked (once this is off). Heartbeat and login replies still go out, so the link looks healthy:
   * pair it with `terminate()` to make the client reconnect. Returns the function that turns it off.
   */
  withholdAcks(match: (user: string) => boolean): () => void
  onFrame(hook: FrameHook): () => void
  /** Resolves with the first received frame (already recorded or still to come) that matches. */
  waitFor(match: (entry: ReceivedFrame) => boolean, timeout?: number): Promise<ReceivedFrame>
  /**
   * A crash: every connection is dropped without a close frame (clients see 1006) and the port
   * closes. The seen-id windows survive, as a production server's persisted window would.
   */
  stop(): Promise<void>
  /** Listens again on the same port. */
  start(): Promise<void>
  close(): Promise<void>
}

const DEFAULTS = { dedupWindow: 10_000 }

/** A user's window of recent ids: a Set iterates in insertion order, so its first entry is the oldest. */
interface Seen {
  ids: Set<string>
  stats: UserStats
}

export async function createTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const ack = options.ack === false ? undefined : { op: ACK, idKey: ID, ...options.ack }
  const loginOk = options.loginOk ?? (() => ({}))
  const dedupWindow = options.dedupWindow ?? DEFAULTS.dedupWindow
  const received: ReceivedFrame[] = []
  const hooks = new Set<FrameHook>()
  /** Open connections by number, with the context that knows their user. */
  const sockets = new Map<number, { ws: WebSocket; context: RouteContext }>()
  const withheld = new Set<(user: string) => boolean>()
  const seen = new Map<string, Seen>()
  const waiters = new Set<(entry: ReceivedFrame) => void>()
  let duplicates = 0
  let nextClient = 1
  let port = options.port ?? 0
  let wss: WebSocketServer | undefined

  const routes = new Map<string, Route>([
    [
      LOGIN,
      (frame, context) => {
        const extra: any = loginOk(frame)
        if (extra === null) return context.reply({ [OP]: LOGIN_ERROR })
        const openId = extra.openId ?? frame.userOpenId ?? `openid-${context.client}`
        context.login(openId)
        context.reply({ [OP]: LOGIN_OK, openId, ...extra })
      },
    ],
    [HEART, (_frame, context) => context.reply({ [OP]: HEART_OK })],
  ])
  if (options.routes) for (const [op, route] of options.routes) routes.set(op, route)

  function send(ws: WebSocket, frame: object | string | ArrayBuffer | Uint8Array): void {
    if (ws.readyState !== WebSocket.OPEN) return
    if (typeof frame === 'string') ws.send(frame)
    else if (frame instanceof ArrayBuffer || ArrayBuffer.isView(frame)) ws.send(frame, { binary: true })
    else ws.send(JSON.stringify(frame))
  }

  function seenOf(user: string): Seen {
    let entry = seen.get(user)
    if (!entry) {
      entry = { ids: new Set(), stats: { received: 0, duplicates: 0, outOfOrder: 0, highest: -Infinity } }
      seen.set(user, entry)
    }
    return entry
  }

  /** Remembers `id` for `user`; false when it was already in the window (a repeat). */
  function remember(user: string, id: string, frame: any): boolean {
    const { ids, stats } = seenOf(user)
    if (ids.has(id)) {
      stats.duplicates++
      return false
    }
    ids.add(id)
    if (ids.size > dedupWindow) ids.delete(ids.values().next().value as string)
    stats.received++
    const n = options.sequence?.(frame)
    if (typeof n === 'number') {
      if (n < stats.highest) stats.outOfOrder++
      else stats.highest = n
    }
    return true
  }

  function onConnection(ws: WebSocket): void {
    const client = nextClient++
    let user = `client:${client}`
    const reply = (f: object | string) => send(ws, f)
    const acknowledge = ack ? createAcks(reply, !!ack.batch, ack.op, ack.idKey) : () => {}
    const context: RouteContext = {
      client,
      get user() {
        return user
      },
      reply,
      login(openId) {
        user = openId
      },
    }
    sockets.set(client, { ws, context })
    ws.on('close', () => sockets.delete(client))
    ws.on('error', () => {})
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      let frame: any = isBinary ? data : data.toString('utf8')
      if (!isBinary) {
        try {
          frame = JSON.parse(frame)
        } catch {}
      }
      const op = frame && typeof frame === 'object' && !isBinary ? frame[OP] : undefined
      // The openId a login claims names the user at once, even when a hook answers the login.
      if (op === LOGIN && frame.userOpenId !== undefined) user = String(frame.userOpenId)

      const id = ack && op !== undefined ? frame[ack.idKey] : undefined
      const fresh = id === undefined || remember(user, String(id), frame)
      if (fresh) {
        const entry = { client, frame, at: Date.now() }
        received.push(entry)
        for (const w of Array.from(waiters)) w(entry)
      } else duplicates++

      let handled = false
      for (const hook of Array.from(hooks)) if (hook(frame, reply, client) === true) handled = true
      if (handled) return
      // A repeat is not routed again: its effect already happened the first time.
      const route = fresh && typeof op === 'string' ? routes.get(op) : undefined
      if (route) route(frame, context)
      if (ack && id !== undefined && !Array.from(withheld).some((m) => m(user))) acknowledge(id)
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
    for (const { ws } of sockets.values()) ws.terminate()
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
    stats() {
      const out = new Map<string, UserStats>()
      for (const [user, entry] of seen) out.set(user, { ...entry.stats })
      return out
    },
    route(op, handler) {
      routes.set(op, handler)
      return () => {
        if (routes.get(op) === handler) routes.delete(op)
      }
    },
    broadcast(frame) {
      for (const { ws } of sockets.values()) send(ws, frame)
    },
    sendTo(client, frame) {
      const connection = sockets.get(client)
      if (connection) send(connection.ws, frame)
    },
    closeAll(code = 1000, reason = '') {
      for (const { ws } of sockets.values()) ws.close(code, reason)
    },
    terminate(user) {
      let dropped = 0
      for (const [client, { ws, context }] of Array.from(sockets)) {
        if (context.user !== user) continue
        ws.terminate()
        sockets.delete(client)
        dropped++
      }
      return dropped
    },
    withholdAcks(match) {
      // A wrapper, so the same function passed twice is two switches, each turned off by its own call.
      const entry = (user: string) => match(user)
      withheld.add(entry)
      return () => void withheld.delete(entry)
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

/**
 * The test kit's server: `mpbus/server`'s connection handling (src/server/connection.ts) on the
 * memory engine, with hooks around it that record what arrives and inject server-side faults.
 * It speaks docs/protocol.md as `mpbus/server` does (the login answer carries the stream tips;
 * duplicates are acked again and not routed again; acks leave after the route ran) and passes the
 * conformance check with `anonymous: false`. Start a Node backend from `mpbus/server`, not here.
 *
 *   client ─ {Operator:'userLogin', userCode?, userOpenId?} ─▶  ◀─ {Operator:'LoginOK', openId, Streams}
 *   client ─ {Operator:'Heart'} ────────────────────────────▶  ◀─ {Operator:'HeartOK'}
 *   client ─ {Operator:…, MsgId:'m1', …} ───────────────────▶  ◀─ {Operator:'Ack', MsgId:'m1'}  (when `ack` is on)
 *                                                                  ◀─ {Operator:'Ack', MsgIds:['m1','m2']}  (`ack.batch`)
 *
 * What happens to one inbound frame, in order:
 * 1. Recording (`received`, `stats()`, `waitFor`): every frame as it came (JSON parsed, other text
 *    as is, binary as a Buffer), except a repeat of an id still in its user's window of the last
 *    `dedupWindow` ids, which is counted (`duplicates()`). The user is the connection's login's
 *    `openId`, or `client:N` before one.
 * 2. `onFrame` hooks: they see every frame, repeats included, and can take it over.
 * 3. Anything that is not a JSON object with an operator is recorded and otherwise ignored here
 *    (`mpbus/server` would close with 1007): the kit also serves raw-text clients (mpbus/compat).
 * 4. The protocol, as `mpbus/server`: the login (decided by `loginOk`), the heartbeat's reply, the
 *    route for the operator (`routes`, `route()`) run once per id, and the ack after it, unless
 *    `withholdAcks()` loses it. A client that sends no login (a bus without `login`) is served
 *    as `client:N` from its first frame, unless `anonymous: false`.
 */
import type { AddressInfo } from 'node:net'
import { type RawData, WebSocket, WebSocketServer } from 'ws'
import type { MpbusError } from '../errors'
import { ACK, ID, isFrame, LOGIN, OP } from '../protocol'
import { accept, type Connection, type Node } from '../server/connection'
import { createFanout, hear } from '../server/fanout'
import { memoryEngine } from '../server/memory-engine'
import { close, flush } from '../server/send'
import { frameOf, userStream } from '../server/streams'
import type { LoginDecision } from '../server/types'

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
   * `{Operator: 'LoginError'}` and a close (1008). An `openId` among the fields names the user (a
   * `code2session` stand-in); otherwise it is the frame's `userOpenId`, or one made up from the
   * connection number.
   * @default every login succeeds
   */
  loginOk?: (frame: any) => object | null
  /**
   * Serves a connection whose first frame is no login (a bus without `login`, a raw transport) as
   * the user `client:N`. `false`: such a connection is refused with 1008, as `mpbus/server` does.
   * @default true
   */
  anonymous?: boolean
  /** How many recent message ids per user the recording remembers: a repeat of one is not recorded again. @default 10000 */
  dedupWindow?: number
  /**
   * Reads a per-user sequence number from a frame, for the order check in `stats()`: a first
   * arrival numbered below one already seen from the same user counts as out of order.
   * @default none (no order check)
   */
  sequence?: (frame: any) => number | undefined
  /** Routes, by operator (the login and the heartbeat are the protocol's: see `loginOk`). */
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
  /** Makes `openId` the connection's user for the recording and the fault hooks from now on. */
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

const DEFAULTS = { dedupWindow: 10_000, anonymous: true }

/** A user's window of recent ids: a Set iterates in insertion order, so its first entry is the oldest. */
interface Seen {
  ids: Set<string>
  stats: UserStats
}

/** What the kit keeps per connection besides the protocol's state. */
interface Peer {
  client: number
  /** The recording's user: the login's `openId` once claimed or decided, else `client:N`. */
  user: string
  /** `loginOk`'s decision, made as the login arrived (so the frames behind it count for that user). */
  decision?: LoginDecision
  context: RouteContext
}

export async function createTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const ack = options.ack === false ? undefined : { op: ACK, idKey: ID, batch: false, ...options.ack }
  const loginOk = options.loginOk ?? (() => ({}))
  const dedupWindow = options.dedupWindow ?? DEFAULTS.dedupWindow
  const received: ReceivedFrame[] = []
  const hooks = new Set<FrameHook>()
  const routes = new Map<string, Route>(options.routes || [])
  /** Open connections by number. */
  const sockets = new Map<number, { ws: WebSocket; c: Connection; peer: Peer }>()
  const peers = new WeakMap<Connection, Peer>()
  const withheld = new Set<(user: string) => boolean>()
  const seen = new Map<string, Seen>()
  const waiters = new Set<(entry: ReceivedFrame) => void>()
  let duplicates = 0
  let nextClient = 1
  let port = options.port ?? 0
  let wss: WebSocketServer | undefined
  // Survives stop() and start(), as a production server's store would: the duplicate window, the streams.
  const engine = memoryEngine()
  // The test kit bounds nothing: its tests inject the faults themselves.
  const fanout = createFanout(engine, () => {})
  engine.subscribe((event) => hear(fanout, event))

  function send(ws: WebSocket, frame: object | string | ArrayBuffer | Uint8Array): void {
    if (ws.readyState !== WebSocket.OPEN) return
    // Behind what the protocol's side has waiting for a client that takes batches, never before it.
    flush(ws)
    if (typeof frame === 'string') ws.send(frame)
    else if (frame instanceof ArrayBuffer || ArrayBuffer.isView(frame)) ws.send(frame, { binary: true })
    else ws.send(JSON.stringify(frame))
  }

  /** Remembers `id` for `user`; false when it was already in the window (a repeat). */
  function remember(user: string, id: string, frame: any): boolean {
    let entry = seen.get(user)
    if (!entry) {
      entry = { ids: new Set(), stats: { received: 0, duplicates: 0, outOfOrder: 0, highest: -Infinity } }
      seen.set(user, entry)
    }
    const { ids, stats } = entry
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

  /** Decides a login as it arrives; the protocol's `authenticate` then answers with this decision. */
  function decide(peer: Peer, frame: any): LoginDecision {
    const extra: any = loginOk(frame)
    if (extra === null) return null
    const openId = String(extra.openId ?? frame.userOpenId ?? `openid-${peer.client}`)
    peer.user = openId
    return { user: openId, fields: { openId, ...extra } }
  }

  /** Recording and hooks, before the protocol; `true` when the protocol is to do nothing with the frame. */
  function tap(c: Connection, data: RawData, binary: boolean): boolean {
    const peer = peers.get(c)!
    let frame: any = binary ? data : data.toString()
    if (!binary) {
      try {
        frame = JSON.parse(frame)
      } catch {}
    }
    const op = isFrame(frame, OP) && !binary ? frame[OP] : undefined
    // The openId a login claims names the user at once, even when a hook answers the login.
    if (op === LOGIN && frame.userOpenId !== undefined) peer.user = String(frame.userOpenId)
    const id = ack && op !== undefined ? frame[ack.idKey] : undefined
    const fresh = id === undefined || remember(peer.user, String(id), frame)
    if (fresh) {
      const entry = { client: peer.client, frame, at: Date.now() }
      received.push(entry)
      for (const w of Array.from(waiters)) w(entry)
    } else duplicates++
    let taken = false
    for (const hook of Array.from(hooks))
      if (hook(frame, peer.context.reply, peer.client) === true) taken = true
    if (taken || !op) return true
    if (op === LOGIN && c.phase === 'login') peer.decision = decide(peer, frame)
    return false
  }

  const acknowledgeOnly = () => {}
  const node: Node = {
    authenticate: (_login, c) => peers.get(c)!.decision,
    handler(op, c) {
      const route = routes.get(op)
      const peer = peers.get(c)!
      // A test server records and acknowledges; it refuses nothing for want of a route.
      return route ? (frame) => route(frame, peer.context) : acknowledgeOnly
    },
    batchAcks: !!(ack && ack.batch),
    ackOp: ack ? ack.op : ACK,
    idKey: ack ? ack.idKey : false,
    rate: { frames: Infinity, interval: 1000 },
    backlog: { frames: Infinity, bytes: Infinity },
    maxIdLength: Infinity,
    loginTimeout: Infinity,
    alive: new WeakSet(),
    engine,
    fanout,
    running: new Set(),
    report: (_error: MpbusError) => {},
    store: async (_user, call) => call(),
    push: async (user, op, payload) => engine.append(userStream(user), frameOf(op, payload)),
    tap,
    anonymous: (options.anonymous ?? DEFAULTS.anonymous) ? (c) => peers.get(c)!.user : undefined,
    withholdAck: (c) => Array.from(withheld).some((match) => match(peers.get(c)!.user)),
  }

  function onConnection(ws: WebSocket): void {
    const client = nextClient++
    const reply = (f: object | string) => send(ws, f)
    const peer: Peer = {
      client,
      user: `client:${client}`,
      context: {
        client,
        get user() {
          return peer.user
        },
        reply,
        login(openId) {
          peer.user = openId
        },
      },
    }
    const c = accept(node, ws)
    peers.set(c, peer)
    sockets.set(client, { ws, c, peer })
    ws.on('close', () => sockets.delete(client))
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
      for (const { ws } of sockets.values()) close(ws, code, reason)
    },
    terminate(user) {
      let dropped = 0
      for (const [client, { ws, peer }] of Array.from(sockets)) {
        if (peer.user !== user) continue
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

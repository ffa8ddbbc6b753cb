/**
 * `mpbus/server`: the other end of an mpbus client, on `ws` (Node only). It speaks
 * docs/protocol.md: login first and nothing else before its answer, the heartbeat reply, an ack
 * for every message with an id, duplicates dropped by (user, id), the session end, and pushes that
 * carry their stream position so that a client resumes what it missed, even after a cold start.
 */
import { createServer as createHttpServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { asMpbusError, describe, MpbusError } from '../errors'
import { ACK, type Frame, ID } from '../protocol'
import { uncork } from '../task'
import { accept, type Node } from './connection'
import { createFanout, hear, readersOf } from './fanout'
import { memoryEngine } from './memory-engine'
import { DEFAULTS, type MpbusServer, type ServerOptions } from './options'
import { flush } from './send'
import { frameOf, roomStream, userStream } from './streams'
import type { OpMap, ServerHandler } from './types'

export type { ConformanceOptions, ConformanceResult } from './conformance'
export { checkConformance } from './conformance'
export type { EngineOptions } from './engine-options'
export type { MemoryEngine, MemoryEngineOptions } from './memory-engine'
export { memoryEngine } from './memory-engine'
export type { MpbusServer, ServerOptions } from './options'
export type { RedisEngine, RedisEngineOptions } from './redis-engine'
export { redisEngine } from './redis-engine'
export { Refusal, refuse } from './refusal'
export { roomStream, userStream } from './streams'
export type {
  Awaitable,
  Engine,
  EngineEvent,
  HandlerContext,
  Handlers,
  LoginDecision,
  OpMap,
  PayloadOf,
  Position,
  ServerHandler,
  Stored,
} from './types'

export async function createServer<Out extends OpMap = OpMap, In extends OpMap = OpMap>(
  options: ServerOptions<Out, In>,
): Promise<MpbusServer<In>> {
  if (!options || typeof options.authenticate !== 'function')
    throw new MpbusError('BAD_OPTION', 'authenticate must be a function')
  const given = <K extends keyof typeof DEFAULTS>(key: K) =>
    options[key] === undefined ? DEFAULTS[key] : (options[key] as (typeof DEFAULTS)[K])
  const rate = given('rate')
  const backlog = given('backlog')
  const maxPayload = given('maxFrameBytes')
  const pingInterval = given('pingInterval')
  const upgradeTimeout = given('upgradeTimeout')
  for (const [name, value, min] of [
    ['rate.frames', rate.frames, 1],
    ['rate.interval', rate.interval, 1],
    ['maxFrameBytes', maxPayload, 1],
    ['maxIdLength', given('maxIdLength'), 1],
    ['maxBufferedBytes', given('maxBufferedBytes'), 1],
    ['backlog.frames', backlog.frames, 1],
    ['backlog.bytes', backlog.bytes, 1],
    ['pingInterval', pingInterval, 0],
    ['loginTimeout', given('loginTimeout'), 1],
    ['upgradeTimeout', upgradeTimeout, 1],
    ['closeTimeout', given('closeTimeout'), 0],
  ] as const)
    if (!(typeof value === 'number' && value >= min))
      throw new MpbusError('BAD_OPTION', `${name} must be a number >= ${min}: ${value}`)
  const engine = options.engine || memoryEngine()
  const report = options.onError || (() => {})
  const fanout = createFanout(engine, report, given('maxBufferedBytes'))
  let closed = false

  /**
   * Runs an engine call; a failure is reported and rethrown, never swallowed. The Promise is marked
   * handled: a caller that does not await `push()` (fire and forget, during a Redis blip) has the
   * failure in `onError`, not an unhandled rejection that ends the process.
   */
  function store<T>(user: string | undefined, call: () => T | PromiseLike<T>): Promise<T> {
    const result = (async () => {
      if (closed) throw new MpbusError('CLOSED', 'the server is closed')
      try {
        return await call()
      } catch (e) {
        const error = asMpbusError('ENGINE_DOWN', e)
        report(error, user)
        throw error
      }
    })()
    result.catch(() => {})
    return result
  }

  /**
   * A frame to keep in a stream: one JSON cannot encode (a BigInt, a cycle) is refused now, with
   * BAD_PAYLOAD, or every later resume of its readers would fail on it until it is trimmed.
   */
  function storable(op: string, payload: Record<string, unknown> | undefined): Frame {
    const frame = frameOf(op, payload)
    try {
      JSON.stringify(frame)
    } catch (e) {
      throw new MpbusError('BAD_PAYLOAD', `${op}: not JSON (${describe(e)})`, e)
    }
    return frame
  }

  const handlers = new Map<string, ServerHandler>(Object.entries(options.handlers || {}))
  const node: Node = {
    authenticate: (login) => options.authenticate(login),
    handler: (op) => handlers.get(op),
    batchAcks: given('batchAcks'),
    ackOp: ACK,
    idKey: ID,
    rate,
    backlog,
    maxIdLength: given('maxIdLength'),
    loginTimeout: given('loginTimeout'),
    alive: new WeakSet(),
    engine,
    fanout,
    running: new Set(),
    report,
    store,
    push: (user, op, payload) => store(user, () => engine.append(userStream(user), storable(op, payload))),
  }

  // Before the first connection: a node hears everything appended after it accepts a login.
  const unsubscribe = await engine.subscribe((event) => hear(fanout, event))
  // Listening itself, the HTTP request of the upgrade is bounded too (a slowloris sends its
  // headers a byte at a time); Node checks these timeouts every connectionsCheckingInterval.
  const http =
    options.server ||
    createHttpServer({
      headersTimeout: upgradeTimeout,
      requestTimeout: upgradeTimeout,
      connectionsCheckingInterval: Math.min(upgradeTimeout, 1000),
    })
  const wss = new WebSocketServer({ server: http, maxPayload })
  if (!options.server)
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject)
      http.listen(given('port'), options.host, () => {
        http.off('error', reject)
        resolve()
      })
    })
  const address = http.address() as AddressInfo | null
  wss.on('connection', (ws) => accept(node, ws))

  /**
   * The liveness check: a connection that answered no ping since the last one is dropped (a
   * frame from it is no answer: a peer that sends but never reads is not alive), and so is one
   * whose close did not complete within an interval (its peer reads nothing, not even that). A
   * connection whose reading the server paused (rate gate, backlog) cannot be heard answering:
   * it is skipped until reading resumes.
   */
  const pinging =
    pingInterval > 0
      ? setInterval(() => {
          for (const ws of wss.clients) {
            if (ws.isPaused && ws.readyState === ws.OPEN) continue
            if (!node.alive.has(ws) || ws.readyState === ws.CLOSING) {
              report(
                new MpbusError('TIMEOUT', `no answer to a ping within ${pingInterval} ms: dropped`),
                undefined,
              )
              uncork(ws)
              ws.terminate()
              continue
            }
            node.alive.delete(ws)
            ws.ping()
          }
        }, pingInterval)
      : undefined
  if (pinging) pinging.unref()

  // Typed by `In` for the app; inside, the operators are any names.
  const server: MpbusServer = {
    port: address ? address.port : 0,
    push: node.push,
    publish: (room, op, payload) =>
      store(undefined, () => engine.append(roomStream(room), storable(op, payload))),
    join: (user, room) => store(user, () => engine.join(user, room)),
    leave: (user, room) => store(user, () => engine.leave(user, room)),
    end: (user, reason) => store(user, () => engine.end(user, reason)),
    // A connection whose login is still being served (its resume read) is not logged in yet.
    connections: (user) => readersOf(fanout, user).filter((c) => c.phase === 'ready').length,
    async close() {
      closed = true
      if (pinging) clearInterval(pinging)
      unsubscribe()
      await new Promise<void>((resolve) => {
        for (const ws of wss.clients) {
          flush(ws)
          uncork(ws)
          ws.terminate()
        }
        wss.close(() => (options.server ? resolve() : http.close(() => resolve())))
      })
      // Frames queued behind are skipped (their connections are closed); the one running finishes.
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([
        Promise.all(Array.from(node.running)),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, given('closeTimeout'))
        }),
      ])
      clearTimeout(timer)
      if (engine.close) await engine.close()
    },
  }
  return server as MpbusServer<In>
}

/**
 * Every option of a bus, declared once with its default, and `resolveOptions`, the one place
 * where defaults are applied and ranges checked: a value out of range fails `createBus` with
 * `BAD_OPTION` naming the option, rather than a bus that quietly never sends or pings 600 times
 * a second.
 */
import { withDefaults } from '../defaults'
import { MpbusError } from '../errors'
import { HEARTBEAT_DEFAULTS, type HeartbeatOptions } from '../heartbeat'
import type { OutboxOptions } from '../outbox'
import { detectPlatform, toPlatform } from '../platform/detect'
import type { CloseInfo, Platform, SocketData, Storage } from '../platform/types'
import { RECONNECT_DEFAULTS, type ReconnectOptions } from '../transport'

/** A login frame: `op` becomes the operator field, `payload` the rest of the frame. */
export interface LoginFrame {
  op: string
  payload?: Record<string, unknown>
}

export interface Codec {
  /** Turns an outbound frame (operator and id fields included) into what the socket sends. @default JSON.stringify */
  encode(frame: Record<string, unknown>): SocketData
  /** Turns an inbound frame into an object; throw to refuse it (`BAD_FRAME`). @default JSON.parse of text; binary refused */
  decode(data: SocketData): unknown
}

export interface BusOptions {
  /**
   * The server, or a function called for every connect that returns it or a Promise of it
   * (a freshly fetched token in the query). A throw or rejection is `URL_ERROR` and backs off.
   */
  url: string | (() => string | PromiseLike<string>)
  /** A platform's API object (`wx`, `my`, `swan`, `tt`, `qq`, `uni`, `Taro`) or a `Platform`. @default detected */
  platform?: Platform | object
  /** Where the outbox persists. @default the platform's storage, else memory only */
  storage?: Storage
  /**
   * Sent first on every open (cold start, reconnect, app reopen), straight to the socket and never stored.
   * May return a Promise (for `wx.login`); return `null` to send nothing. A throw or rejection is
   * `LOGIN_ERROR` and backs off; so is a Promise that does not settle within `ready.timeout`.
   */
  login?: () => LoginFrame | null | undefined | PromiseLike<LoginFrame | null | undefined>
  /** When set, the outbox flushes only after `ok`; `fail` makes the bus `unauthorized` (no reconnect loop). */
  ready?: {
    ok: string
    /** @default [] */
    fail?: string[]
    /**
     * ms from the socket's open to `ok`, the login itself included; a timeout (`TIMEOUT`) counts as a
     * failed connect and backs off. Without `ready`, the same default bounds the login alone. @default 10000
     */
    timeout?: number
  }
  /**
   * At-least-once delivery: a message leaves the outbox only when the server answers `{[opKey]: op, [idKey]: id}`
   * (docs/protocol.md). `true` means `{ op: 'Ack' }`.
   * @default false: a message leaves when the socket reports its send succeeded
   */
  ack?:
    | boolean
    | {
        /** @default 'Ack' */
        op?: string
        /**
         * ms a message in flight may wait for its ack; then the link counts as broken (`ACK_TIMEOUT`):
         * it is dropped and everything in flight is sent again, in order, with the same ids. @default 10000
         */
        timeout?: number
      }
  /** The field that carries every durable message's id (and a request's, for its reply). @default 'MsgId' */
  idKey?: string
  /** The field that names the operator of a frame. @default 'Operator' */
  opKey?: string
  /**
   * The operator of the frame a server sends to end the session for good (logged in elsewhere,
   * account closed): the bus goes to `failed` (`SESSION_ENDED`) and does not reconnect, whatever
   * close code follows. `false`: none. @default 'SessionEnd'
   */
  sessionEnd?: string | false
  /** Ping after `interval` ms of silence; dead when nothing arrives `timeout` ms later. `false` turns it off. */
  heartbeat?: Partial<HeartbeatOptions> | false
  reconnect?: Partial<ReconnectOptions>
  /** ms a socket may take to open (the `url` Promise included). @default 10000 */
  connectTimeout?: number
  /** Whether a close from the server should be followed by a reconnect; a throw is reported and the default decides. @default not one of `stopCodes` */
  shouldReconnect?: (close: CloseInfo) => boolean
  /** Close codes that end the session under the default `shouldReconnect` (best effort: not every platform reports codes). @default [4001] */
  stopCodes?: number[]
  /** Bounds and policies of the outbox: `prefix`, `maxMessages`, `maxBytes`, `ttl`, `overflow`, `window`. */
  outbox?: Omit<OutboxOptions, 'storage' | 'ack' | 'now'>
  /** Inbound frames larger than this are refused with `FRAME_TOO_LARGE`. @default 1048576 (1 MB) */
  maxInboundBytes?: number
  /** @default JSON */
  codec?: Codec
  /** `true` logs to the console; a function receives the same lines. @default false */
  debug?: boolean | ((...args: unknown[]) => void)
}

/** What the parts of a bus read: every default applied, every range checked. */
export interface Resolved {
  url: BusOptions['url']
  platform: Platform
  storage: Storage | undefined
  login: BusOptions['login']
  ready: { ok: string; fail: string[]; timeout: number } | undefined
  /** Bounds the login (and the wait for `ready.ok`). */
  sessionTimeout: number
  ack: { op: string; timeout: number } | undefined
  idKey: string
  opKey: string
  sessionEnd: string | false
  heartbeat: HeartbeatOptions | false
  reconnect: ReconnectOptions
  connectTimeout: number
  shouldReconnect: BusOptions['shouldReconnect']
  stopCodes: number[]
  outbox: OutboxOptions
  maxInboundBytes: number
  codec: Codec | undefined
  log: ((...args: unknown[]) => void) | undefined
}

const DEFAULTS = {
  idKey: 'MsgId',
  opKey: 'Operator',
  sessionEnd: 'SessionEnd' as string | false,
  connectTimeout: 10_000,
  stopCodes: [4001],
  maxInboundBytes: 1024 * 1024,
}
const READY_DEFAULTS = { ok: '', fail: [] as string[], timeout: 10_000 }
const ACK_DEFAULTS = { op: 'Ack', timeout: 10_000 }

/** The longest delay a timer can take: setTimeout fires at once for anything longer (and for Infinity). */
const LONGEST = 2147483647

/** Throws `BAD_OPTION` unless `value` is a number from `min` to `max` (a whole one, when asked). */
function range(name: string, value: number, min: number, integer?: boolean, max = Infinity): void {
  if (
    typeof value !== 'number' ||
    !(value >= min && value <= max) ||
    (integer && value !== Infinity && value !== Math.floor(value))
  )
    throw new MpbusError('BAD_OPTION', `${name} not in ${min}..${max}: ${value}`)
}

/** A delay some timer waits: at least `min` ms, and short enough for setTimeout. */
const delay = (name: string, value: number, min = 1) => range(name, value, min, false, LONGEST)

function name(option: string, value: unknown): void {
  if (typeof value !== 'string' || !value) throw new MpbusError('BAD_OPTION', `${option}: not a name`)
}

/** Throws `BAD_OPTION` unless `value` is undefined or of the JavaScript type `type`. */
function kind(option: string, value: unknown, type: string): void {
  if (value !== undefined && (type === 'array' ? !Array.isArray(value) : typeof value !== type))
    throw new MpbusError('BAD_OPTION', `${option}: not ${type}`)
}

/** Applies the defaults and checks every range, once; throws `BAD_OPTION` naming the option. */
export function resolveOptions(options: BusOptions): Resolved {
  if (!options || !options.url || (typeof options.url !== 'string' && typeof options.url !== 'function'))
    throw new MpbusError('BAD_OPTION', 'url')
  const top = withDefaults(DEFAULTS, options)
  name('idKey', top.idKey)
  name('opKey', top.opKey)
  delay('connectTimeout', top.connectTimeout)
  range('maxInboundBytes', top.maxInboundBytes, 1)
  kind('stopCodes', top.stopCodes, 'array')
  kind('login', options.login, 'function')
  kind('shouldReconnect', options.shouldReconnect, 'function')
  if (typeof options.debug !== 'boolean') kind('debug', options.debug, 'function')
  if (options.codec)
    for (const fn of ['encode', 'decode'] as const) kind(`codec.${fn}`, options.codec[fn], 'function')
  const ready = options.ready && withDefaults(READY_DEFAULTS, options.ready)
  if (ready) {
    name('ready.ok', ready.ok)
    kind('ready.fail', ready.fail, 'array')
    delay('ready.timeout', ready.timeout)
  }
  const ack = options.ack ? withDefaults(ACK_DEFAULTS, options.ack === true ? {} : options.ack) : undefined
  if (ack) {
    name('ack.op', ack.op)
    delay('ack.timeout', ack.timeout)
  }
  const heartbeat =
    options.heartbeat !== false &&
    withDefaults(
      // The ping speaks the bus's operator field.
      Object.assign({}, HEARTBEAT_DEFAULTS, { message: JSON.stringify({ [top.opKey]: 'Heart' }) }),
      options.heartbeat,
    )
  if (heartbeat) {
    delay('heartbeat.interval', heartbeat.interval)
    delay('heartbeat.timeout', heartbeat.timeout)
  }
  const reconnect = withDefaults(RECONNECT_DEFAULTS, options.reconnect)
  delay('reconnect.minDelay', reconnect.minDelay, 0)
  delay('reconnect.maxDelay', reconnect.maxDelay, reconnect.minDelay)
  range('reconnect.factor', reconnect.factor, 1)
  range('reconnect.maxAttempts', reconnect.maxAttempts, 0, reconnect.maxAttempts !== Infinity)
  range('reconnect.stableAfter', reconnect.stableAfter, 0)
  const outbox = options.outbox || {}
  for (const [option, min, integer] of [
    ['maxMessages', 1, true],
    ['maxBytes', 1],
    ['ttl', 1],
    ['window', 1, true],
  ] as const) {
    const value = outbox[option]
    if (value !== undefined) range(`outbox.${option}`, value, min, integer)
  }
  if (outbox.overflow !== undefined && outbox.overflow !== 'reject' && outbox.overflow !== 'dropOldest')
    throw new MpbusError('BAD_OPTION', `outbox.overflow: ${outbox.overflow}`)
  const platform = options.platform ? toPlatform(options.platform) : detectPlatform()
  const debug = options.debug
  return {
    url: options.url,
    platform,
    storage: options.storage || platform.storage,
    login: options.login,
    ready,
    sessionTimeout: ready ? ready.timeout : READY_DEFAULTS.timeout,
    ack,
    idKey: top.idKey,
    opKey: top.opKey,
    sessionEnd: top.sessionEnd,
    heartbeat,
    reconnect,
    connectTimeout: top.connectTimeout,
    shouldReconnect: options.shouldReconnect,
    stopCodes: top.stopCodes,
    outbox: Object.assign({}, outbox, { storage: options.storage || platform.storage, ack: !!ack }),
    maxInboundBytes: top.maxInboundBytes,
    codec: options.codec,
    // A debug function that throws must not break what it logs.
    log: debug
      ? (...args: unknown[]) => {
          try {
            typeof debug === 'function' ? debug(...args) : console.log('[mpbus]', ...args)
          } catch {}
        }
      : undefined,
  }
}

/**
 * Every option of a bus, declared once with its documentation and its default, and
 * `resolveOptions`, the one place where defaults are applied, after the checks of
 * option-checks.ts (names, types and ranges: `BAD_OPTION` naming the option).
 */
import type { HeartbeatOptions } from '../heartbeat'
import type { OutboxOptions, OutboxSettings } from '../outbox'
import { detectPlatform, toPlatform } from '../platform/detect'
import type { CloseInfo, Platform, SocketData, Storage } from '../platform/types'
import type { ReconnectOptions } from '../transport'
import { check, checkOptions, LONGEST } from './option-checks'

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
  outbox?: Omit<OutboxOptions, 'storage' | 'ack' | 'now' | 'share'>
  /** Inbound frames larger than this are refused with `FRAME_TOO_LARGE`. @default 1048576 (1 MB) */
  maxInboundBytes?: number
  /** @default JSON */
  codec?: Codec
  /**
   * `true` logs to the console the state changes, errors, and every frame in and out (its
   * operator, id and size in bytes); `'payloads'` adds each frame's data; a function receives the
   * lines of `true`. @default false
   */
  debug?: boolean | 'payloads' | ((...args: unknown[]) => void)
  /**
   * Whether an error no `error` listener hears is a console warning (once, and again only when
   * its reason changes), and so is an outbox kept in memory only (no `storage`). With `debug`,
   * they are debug lines instead. @default true
   */
  warn?: boolean
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
  outbox: OutboxSettings
  maxInboundBytes: number
  codec: Codec | undefined
  log: ((...args: unknown[]) => void) | undefined
  /** Whether the frames' data is logged too. */
  payloads: boolean
  /** Where warnings go: `log`, else the console's warn, unless `warn: false`. */
  warn: ((...args: unknown[]) => void) | undefined
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
/** The ping frame's default is made from `opKey` (`{"Operator":"Heart"}`). */
const HEARTBEAT_DEFAULTS = { interval: 25_000, timeout: 10_000 }
const RECONNECT_DEFAULTS: ReconnectOptions = {
  minDelay: 500,
  maxDelay: 30_000,
  factor: 2,
  maxAttempts: Infinity,
  stableAfter: 5_000,
}
const OUTBOX_DEFAULTS: Omit<OutboxSettings, 'storage' | 'share'> = {
  prefix: 'mpbus',
  maxMessages: 1000,
  maxBytes: 512 * 1024,
  ttl: 7 * 24 * 3600e3,
  overflow: 'reject',
  ack: false,
  window: 256,
  now: Date.now,
}
/** A request's `timeout` (`bus.request`), in ms. */
export const REQUEST_TIMEOUT = 10_000

/**
 * `{ ...defaults, ...given }`, except that a field given as `undefined` keeps its default: an
 * option left out often arrives as `undefined`. Only the fields of `defaults` are read.
 */
function withDefaults<T extends object>(defaults: T, given?: Partial<T>): T {
  const out = {} as T
  for (const key in defaults) out[key] = given && given[key] !== undefined ? given[key]! : defaults[key]
  return out
}

/** The outbox's settings: `given` over the defaults (the bus's, and the outbox's own tests'). */
export const outboxSettings = (given?: OutboxOptions): OutboxSettings =>
  Object.assign({}, given, withDefaults(OUTBOX_DEFAULTS, given))

/** Applies the defaults and checks every range, once; throws `BAD_OPTION` naming the option. */
export function resolveOptions(options: BusOptions): Resolved {
  checkOptions(options)
  const top = withDefaults(DEFAULTS, options)
  const ready = options.ready && withDefaults(READY_DEFAULTS, options.ready)
  const ack = options.ack ? withDefaults(ACK_DEFAULTS, options.ack === true ? {} : options.ack) : undefined
  const heartbeat =
    options.heartbeat !== false &&
    withDefaults(
      // The ping speaks the bus's operator field.
      Object.assign({ message: JSON.stringify({ [top.opKey]: 'Heart' }) }, HEARTBEAT_DEFAULTS),
      options.heartbeat,
    )
  const reconnect = withDefaults(RECONNECT_DEFAULTS, options.reconnect)
  const outbox = options.outbox || {}
  const debug = options.debug
  // Required with `ready`, and not below `minDelay`: checked with the defaults applied.
  if (ready) check('ready.ok', ready.ok, 'name')
  check('reconnect.maxDelay', reconnect.maxDelay, [reconnect.minDelay, LONGEST])
  // A debug function that throws must not break what it logs.
  const log = debug
    ? (...args: unknown[]) => {
        try {
          typeof debug === 'function' ? debug(...args) : console.log('[mpbus]', ...args)
        } catch {}
      }
    : undefined
  const platform = options.platform ? toPlatform(options.platform) : detectPlatform()
  const storage = options.storage || platform.storage
  // `top` holds idKey, opKey, sessionEnd, connectTimeout, stopCodes and maxInboundBytes.
  return Object.assign(top, {
    url: options.url,
    platform,
    storage,
    login: options.login,
    ready,
    sessionTimeout: ready ? ready.timeout : READY_DEFAULTS.timeout,
    ack,
    heartbeat,
    reconnect,
    shouldReconnect: options.shouldReconnect,
    outbox: Object.assign(outboxSettings(outbox), {
      storage,
      ack: !!ack,
      // Other buses may share the storage and prefix (src/outbox/owner.ts); the platform's own
      // means across contexts (browsers: Web Locks) guard its own storage only.
      share: (storage === platform.storage && platform.share) || (true as const),
    }),
    codec: options.codec,
    log,
    payloads: debug === 'payloads',
    warn:
      log || (options.warn !== false ? (...args: unknown[]) => console.warn('[mpbus]', ...args) : undefined),
  })
}

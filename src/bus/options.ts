/**
 * Every option of a bus, declared once with its default, and `resolveOptions`, the one place
 * where defaults are applied and ranges checked: a value out of range fails `createBus` with
 * `BAD_OPTION` naming the option, rather than a bus that quietly never sends or pings 600 times
 * a second.
 */
import { MpbusError } from '../errors'
import type { HeartbeatOptions } from '../heartbeat'
import type { OutboxOptions, OutboxSettings } from '../outbox'
import { detectPlatform, toPlatform } from '../platform/detect'
import type { CloseInfo, Platform, SocketData, Storage } from '../platform/types'
import { type ReconnectOptions, URL_RULE } from '../transport'

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

/** The longest delay a timer can take: setTimeout fires at once for anything longer (and for Infinity). */
const LONGEST = 2147483647

/**
 * What an option must be: a name (a non-empty string), a function, an array, one of some `typeof`s
 * (`'boolean object'`; null is no object), or a number in `[min, max]` (a whole one, when asked).
 */
type Rule = 'name' | 'function' | 'array' | [types: string] | [min: number, max: number, integer?: boolean]

/**
 * Every check, by rule, over the options' paths. A value left undefined is not checked: where an
 * option has a default it is never undefined here, and the outbox's are applied after the checks.
 * `reconnect.maxDelay` is also checked against `minDelay` below.
 */
const RULES: [Rule, string][] = [
  ['name', 'idKey opKey ready.ok ack.op'],
  ['function', 'login shouldReconnect codec.encode codec.decode'],
  ['array', 'stopCodes ready.fail'],
  [['object'], 'platform storage ready reconnect outbox'],
  [['boolean object'], 'ack heartbeat'],
  [['boolean function payloads'], 'debug'],
  [['boolean'], 'warn'],
  [['string boolean'], 'sessionEnd'],
  // Delays some timer waits: at least 1 ms (0 for the backoff's), and short enough for setTimeout.
  [[1, LONGEST], 'connectTimeout ready.timeout ack.timeout heartbeat.interval heartbeat.timeout'],
  [[0, LONGEST], 'reconnect.minDelay reconnect.maxDelay'],
  [[1, Infinity], 'maxInboundBytes reconnect.factor outbox.maxBytes outbox.ttl'],
  [[0, Infinity], 'reconnect.stableAfter'],
  [[0, Infinity, true], 'reconnect.maxAttempts'],
  [[1, Infinity, true], 'outbox.maxMessages outbox.window'],
]

/**
 * The option names, for the unknown-name check (a misspelt name would otherwise be ignored and
 * its default used): the top level's, then each nested option's after its name.
 */
const NAMES =
  'url platform storage login ready ack idKey opKey sessionEnd heartbeat reconnect connectTimeout ' +
  'shouldReconnect stopCodes outbox maxInboundBytes codec debug warn|ready ok fail timeout|' +
  'ack op timeout|heartbeat interval timeout message|reconnect minDelay maxDelay factor maxAttempts ' +
  'stableAfter|outbox prefix maxMessages maxBytes ttl overflow window|codec encode decode'

/** How a wrong value reads in a message: a string quoted, so `'1000'` is told from `1000`. */
function shown(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'an array' : String(value)
}

/** Edits (insert, delete, replace) from `a` to `b`, case aside: how close a misspelt name is. */
function distance(a: string, b: string): number {
  a = a.toLowerCase()
  b = b.toLowerCase()
  let row = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const next = [i]
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    row = next
  }
  return row[b.length]!
}

/** Throws `BAD_OPTION` naming any key of `given` not in `known`, and the known name closest to it. */
function checkNames(given: any, known: string[], path: string): void {
  if (!given || typeof given !== 'object') return
  for (const key in given) {
    if (known.indexOf(key) >= 0) continue
    let best = known[0]!
    for (const name of known) if (distance(key, name) < distance(key, best)) best = name
    const near = distance(key, best) <= Math.max(2, key.length / 3)
    throw new MpbusError(
      'BAD_OPTION',
      `${path}${key}: unknown option${near ? `; did you mean ${best}?` : ''}`,
    )
  }
}

/** Throws `BAD_OPTION` naming `option`, what it must be, and what it got, unless `value` keeps `rule` (Infinity counts as whole). */
function check(option: string, value: any, rule: Rule): void {
  const types = rule.length === 1 && (rule[0] as string)
  const list = types ? types.split(' ') : []
  if (
    types
      ? // A word of the list is a `typeof`, or the one string allowed (`debug: 'payloads'`).
        list.indexOf(value === null ? 'null' : typeof value) < 0 && list.indexOf(value) < 0
      : typeof rule === 'string'
        ? rule === 'name'
          ? typeof value !== 'string' || !value
          : rule === 'array'
            ? !Array.isArray(value)
            : typeof value !== rule
        : typeof value !== 'number' ||
          !(value >= (rule[0] as number) && value <= rule[1]!) ||
          (rule[2] && value !== Infinity && value !== Math.floor(value))
  )
    throw new MpbusError(
      'BAD_OPTION',
      `${option}: expected ${
        types
          ? types.replace(/ /g, ' or ')
          : typeof rule === 'string'
            ? rule === 'name'
              ? 'a non-empty string'
              : rule === 'array'
                ? 'an array'
                : 'a function'
            : `a${rule[2] ? ' whole' : ''} number in ${rule[0]}..${rule[1]}`
      }, got ${shown(value)}`,
    )
}

/** Applies the defaults and checks every range, once; throws `BAD_OPTION` naming the option. */
export function resolveOptions(options: BusOptions): Resolved {
  const url = options && options.url
  if (typeof url !== 'function' && !URL_RULE.test(url as string))
    throw new MpbusError(
      'BAD_OPTION',
      `url: expected ws://… or wss://…, or a function that returns it; got ${shown(url)}`,
    )
  const [names, ...nested] = NAMES.split('|').map((list) => list.split(' '))
  checkNames(options, names!, '')
  for (const [name, ...known] of nested) checkNames((options as any)[name!], known, `${name}.`)
  for (const [rule, paths] of RULES)
    for (const path of paths.split(' ')) {
      const value = (options as any)[path]
      if (value !== undefined && rule.length === 1) check(path, value, rule)
    }
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
  // What the paths of RULES are read from.
  const all: any = Object.assign({}, options, top, {
    ready,
    ack,
    heartbeat,
    reconnect,
    outbox,
  })
  for (const [rule, paths] of RULES)
    for (const path of paths.split(' ')) {
      const value = path.split('.').reduce((o, key) => (o == null ? undefined : o[key]), all)
      // The `typeof` rules were checked on the options as given.
      if (value !== undefined && rule.length > 1) check(path, value, rule)
    }
  check('reconnect.maxDelay', reconnect.maxDelay, [reconnect.minDelay, LONGEST])
  if (outbox.overflow !== undefined && outbox.overflow !== 'reject' && outbox.overflow !== 'dropOldest')
    throw new MpbusError('BAD_OPTION', `outbox.overflow: ${outbox.overflow}`)
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

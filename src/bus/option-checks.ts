/**
 * The checks of a bus's options (options.ts declares them): a misspelt name fails with the
 * closest known one, a value of the wrong type or out of range fails saying what it must be and
 * what it got, all `BAD_OPTION` naming the option, rather than a bus that quietly uses a default,
 * never sends, or pings 600 times a second. One table, over the options' paths, says it all: the
 * known names are its paths.
 */
import { MpbusError } from '../errors'
import { URL_RULE } from '../transport'

/** The longest delay a timer can take: setTimeout fires at once for anything longer (and for Infinity). */
export const LONGEST = 2147483647

/**
 * What an option must be: a name (a non-empty string), a function, an array, one of some `typeof`s
 * or strings (`'boolean object'`; null is no object), or a number in `[min, max]` (a whole one,
 * when asked).
 */
type Rule = 'name' | 'function' | 'array' | [types: string] | [min: number, max: number, integer?: boolean]

/**
 * Every check, by rule, over the options' paths, on the options as given: a value left undefined
 * takes its default, which keeps the rule. `ready.ok` (required with `ready`) and
 * `reconnect.maxDelay` (not below `minDelay`) are also checked after the defaults (options.ts).
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
  [['reject dropOldest'], 'outbox.overflow'],
  // Delays some timer waits: at least 1 ms (0 for the backoff's), and short enough for setTimeout.
  [[1, LONGEST], 'connectTimeout ready.timeout ack.timeout heartbeat.interval heartbeat.timeout'],
  [[0, LONGEST], 'reconnect.minDelay reconnect.maxDelay'],
  [[1, Infinity], 'maxInboundBytes reconnect.factor outbox.maxBytes outbox.ttl'],
  [[0, Infinity], 'reconnect.stableAfter'],
  [[0, Infinity, true], 'reconnect.maxAttempts'],
  [[1, Infinity, true], 'outbox.maxMessages outbox.window'],
]

/** Every option's path: those of RULES, and those checked elsewhere (`url`) or taken as they are. */
const PATHS = `${RULES.map((rule) => rule[1]).join(' ')} url codec heartbeat.message outbox.prefix`.split(' ')

/** How a wrong value reads in a message: a string quoted, so `'1000'` is told from `1000`. */
const shown = (value: unknown): string =>
  typeof value === 'string' ? JSON.stringify(value) : Array.isArray(value) ? 'an array' : String(value)

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

/**
 * Throws `BAD_OPTION` naming any key of the object `given` (at `path`, `''` or `'ready.'`) that
 * no option's path has there, and the known name closest to it.
 */
function checkNames(given: any, path: string): void {
  const known = PATHS.filter((p) => p.indexOf(path) === 0).map((p) => p.slice(path.length).split('.')[0]!)
  if (!given || typeof given !== 'object' || !known.length) return
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
export function check(option: string, value: any, rule: Rule): void {
  const types = rule.length === 1 && (rule[0] as string)
  const list = types ? types.split(' ') : []
  if (
    types
      ? // A word of the list is a `typeof`, or a string allowed as it is (`debug: 'payloads'`).
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

/** Checks the options as given: `url`, the names, then every rule of RULES, in order. */
export function checkOptions(options: any): void {
  const url = options && options.url
  if (typeof url !== 'function' && !URL_RULE.test(url))
    throw new MpbusError(
      'BAD_OPTION',
      `url: expected ws://… or wss://…, or a function that returns it; got ${shown(url)}`,
    )
  checkNames(options, '')
  for (const path of PATHS) checkNames(options[path], `${path}.`)
  for (const [rule, paths] of RULES)
    for (const path of paths.split(' ')) {
      const value = path.split('.').reduce((o, key) => (o == null ? undefined : o[key]), options)
      if (value !== undefined) check(path, value, rule)
    }
}

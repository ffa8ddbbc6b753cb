/**
 * The transport keeps one WebSocket alive through everything a phone does to it.
 *
 * One state value and one timer: the connect timeout while `connecting`, the backoff delay while
 * `backoff`, the heartbeat's ping or deadline while `open`. Every transition goes through `set()`,
 * which cancels it first, so a timer cannot outlive the state that armed it.
 *
 *   idle ──start()──> connecting ──open──> open ──close/error/dead──> connecting (first time)
 *                        │    ^                                  └──> backoff ──delay──> connecting
 *                        └────┴── timeout/error ──> backoff
 *   offline: network down, no attempts.  suspended: app hidden (a frozen page), no attempts, no heartbeat.
 *   failed: a stop code, `halt()` or `maxAttempts`; only `reconnect()` leaves it.  closed: terminal.
 *
 * Events are queued and delivered after each entry point (platform callback, timer, public call)
 * has finished changing state, so a listener that calls back in (`close()` from a `close` listener)
 * always meets a consistent transport and its own events come after the ones that caused them.
 */
import mitt, { type Emitter } from 'mitt'
import { describe, MpbusError, type MpbusErrorCode } from '../errors'
import type { HeartbeatOptions } from '../heartbeat'
import type { CloseInfo, Platform, Socket, SocketData } from '../platform/types'

export type TransportState =
  | 'idle'
  | 'connecting'
  | 'open'
  | 'backoff'
  | 'offline'
  | 'suspended'
  | 'failed'
  | 'closed'

export interface ReconnectOptions {
  /** Upper bound of the first backoff delay, ms. @default 500 */
  minDelay: number
  /** Cap of the backoff delay, ms. @default 30000 */
  maxDelay: number
  /** Growth of the bound per failed attempt. @default 2 */
  factor: number
  /** Failed reconnect attempts in a row before the transport gives up (`failed`); 0: never reconnect. @default Infinity */
  maxAttempts: number
  /** ms a link must stay open before the attempt count resets. @default 5000 */
  stableAfter: number
}

/** The transport's options as the bus resolves them (src/bus/options.ts): nothing is defaulted here. */
export interface TransportOptions {
  platform: Platform
  /**
   * The URL, or a function called for every connect (a fresh token), which may return a Promise.
   * A throw or a rejection is `URL_ERROR`, a failed attempt; the connect timeout covers the wait.
   */
  url: string | (() => string | PromiseLike<string>)
  /** Heartbeat settings, or `false` for none. */
  heartbeat: HeartbeatOptions | false
  reconnect: ReconnectOptions
  /** ms a socket may take to open before it is abandoned (`CONNECT_TIMEOUT`). */
  connectTimeout: number
  /**
   * Whether a close from the server is followed by a reconnect; `false` ends in `failed`. A throw
   * is reported (`HANDLER_ERROR`) and the default decides: a code not in `stopCodes`.
   */
  shouldReconnect?: (close: CloseInfo) => boolean
  /** Close codes that end the transport (state `failed`) under the default policy. */
  stopCodes: number[]
  /** Source of the backoff jitter, in [0, 1): tests make it certain. @default Math.random */
  random?: () => number
}

/**
 * One opened socket, as the transport hands it to its user in the `open` event. Once the link has
 * ended (closed, dropped, replaced), every call on it does nothing, so a late callback of an old
 * link (a login resolving, a send result) cannot touch the link after it.
 */
export interface Link {
  /** True until this link ends. */
  readonly current: boolean
  /**
   * Hands a frame to the socket and returns true, while the link is current and the transport
   * `open` (not `suspended`); `done` is then called once with the platform's result, perhaps
   * synchronously. Otherwise returns false and `done` is never called.
   */
  send(data: SocketData, done?: (error?: MpbusError) => void): boolean
  /** Abandons this link as failed (a login that timed out) and backs off. */
  drop(error: MpbusError): void
  /** Abandons this link and goes to `failed` (unauthorized, session ended); only reconnect() leaves it. */
  halt(error: MpbusError): void
}

// A type alias, not an interface: mitt needs an index-compatible record.
export type TransportEvents = {
  state: { from: TransportState; to: TransportState }
  /** A socket opened: the handle to use it by. */
  open: Link
  /**
   * The link ended: emitted once for every socket that opened (and for a close the platform reports
   * on one that did not). A close from the platform carries its code and reason; a link we abandoned
   * carries code 4000 and why: the error's message ('heartbeat timeout'), 'offline', 'reconnect', 'closed'.
   */
  close: CloseInfo
  /** Socket errors, CONNECT_TIMEOUT, HEARTBEAT_TIMEOUT, URL_ERROR, HANDLER_ERROR, and the errors given to drop()/halt(). */
  error: MpbusError
  /** A raw inbound frame. */
  message: SocketData
  /** A reconnect is scheduled: attempt number since the last stable link, and its delay in ms (0: now). */
  reconnecting: { attempt: number; delay: number }
  /** The platform reported the close of an opened link (the server or the network ended it); its `close` follows. */
  lost: CloseInfo
}

export interface Transport {
  readonly state: TransportState
  /** While `failed`: the error that ended it there (`halt()`'s, or none for a stop code or `maxAttempts`). */
  readonly failure: MpbusError | undefined
  on: Emitter<TransportEvents>['on']
  off: Emitter<TransportEvents>['off']
  /** idle -> connecting (or offline / suspended, as the platform reports); a no-op otherwise. */
  start(): void
  /**
   * From any state but closed: abandons the current link if any, resets the attempt count and
   * connects now (or as soon as the network is up and the app visible).
   */
  reconnect(): void
  /** Terminal: cancels every timer, closes the socket, unsubscribes from the platform. */
  close(): void
}

/** What a URL must be: the platforms' sockets take `ws:` and `wss:` (mini programs `wss:` only, once released). */
export const URL_RULE = /^wss?:\/\//i

/**
 * Delay before the first retry after the app comes back: connects made while WeChat is still
 * resuming fail with "runningState=suspend" (docs/platforms.md), so the first retry comes soon.
 */
const RESUME_DELAY = 300

export function createTransport(options: TransportOptions): Transport {
  const {
    platform,
    url,
    shouldReconnect,
    connectTimeout,
    stopCodes,
    reconnect: backoff,
    random = Math.random,
  } = options
  const emitter = mitt<TransportEvents>()
  const queue: [keyof TransportEvents, any][] = []
  let flushing = false
  let depth = 0
  let state: TransportState = 'idle'
  let socket: Socket | undefined
  /** Bumped whenever a socket is let go, so events from an earlier socket are ignored. */
  let generation = 0
  /** When the current socket opened (Date.now()), 0 while it has not. */
  let opened = 0
  /** When the last inbound frame (or the open) came, and whether one came since the last ping. */
  let heard = 0
  let answered = true
  /** Reconnect attempts since the last stable link. */
  let attempt = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let online = true
  let visible = true
  /** The app just came back: the next failed connect is retried after RESUME_DELAY. */
  let resumed = false
  /** Why the state is `failed`, when halt() put it there. */
  let failure: MpbusError | undefined

  const emit = <K extends keyof TransportEvents>(type: K, event: TransportEvents[K]) => {
    queue.push([type, event])
  }
  /**
   * Wraps an entry point: it changes state, then the events it queued are delivered, unless an
   * outer entry point is delivering them (a listener called back in): that one delivers them next.
   */
  const entry =
    <A extends unknown[]>(fn: (...a: A) => void) =>
    (...a: A) => {
      // Counted, so a platform that calls a listener synchronously inside connect() (an entry
      // within an entry) has its events delivered after connect() returns and the socket is held.
      depth++
      try {
        fn(...a)
      } finally {
        depth--
      }
      if (!depth && !flushing) {
        flushing = true
        try {
          while (queue.length) emitter.emit(...(queue.shift() as [keyof TransportEvents, any]))
        } finally {
          flushing = false
        }
      }
    }

  const heartbeat = options.heartbeat || undefined

  /** The one place that changes the state; it cancels the timer, then arms the new state's one. */
  function set(to: TransportState, ms?: number, fn?: () => void): void {
    // Terminal: a user callback that called close() (shouldReconnect, heartbeat.message) must not
    // see the code that called it move the state on afterwards.
    if (state === 'closed') return
    clearTimeout(timer)
    failure = undefined
    if (to !== state) emit('state', { from: state, to })
    state = to
    if (fn) timer = setTimeout(entry(fn), ms)
  }

  /**
   * Lets go of the current socket at once, without waiting for its close event (on a frozen link
   * it can take 30 s or never come; the adapter delivers nothing after our close()), and reports
   * why. Returns when the link had opened, or 0.
   */
  function end(why?: MpbusError | string, info?: CloseInfo): number {
    const up = opened
    const s = socket
    opened = 0
    socket = undefined
    generation++
    if (s) s.close()
    if (typeof why === 'object') {
      emit('error', why)
      why = why.message
    }
    if (info || up) emit('close', info || { code: 4000, reason: why! })
    return up
  }

  /**
   * `open`, and the heartbeat: a ping after `interval` ms without any inbound frame. A TCP link can
   * freeze without a close event for 30 s or more (or for ever, on a phone that changed networks):
   * only an answer proves it alive. A frame only notes its time (`heard`); the timer, when it
   * fires, waits out the rest of the interval from there, so the ping still goes exactly
   * `interval` after the last frame, at the cost of one timer per interval instead of a
   * clearTimeout + setTimeout per inbound frame.
   */
  function idle(): void {
    heartbeat ? set('open', heartbeat.interval, check) : set('open')
  }

  function check(): void {
    const left = heard + heartbeat!.interval - Date.now()
    // min(): a clock set back must not push the ping beyond one interval.
    left > 0 ? set('open', Math.min(left, heartbeat!.interval), check) : ping()
  }

  /**
   * Pings now; some frame must arrive within `timeout` ms. Also used when the app comes back.
   * A deadline that runs a whole `timeout` late finds the page was not running (a hidden tab's
   * timers are throttled up to a minute, https://developer.chrome.com/blog/timer-throttling-in-chrome-88,
   * or the machine slept), and the answer may still be queued behind it: it pings once more
   * (`again`) rather than call the link dead; a second deadline without any frame ends it.
   */
  function ping(again?: boolean): void {
    const { message, timeout } = heartbeat!
    const armed = Date.now()
    const pinged = socket!
    answered = false
    // The deadline is armed before the ping is sent, so a ping whose send ends the link
    // synchronously leaves no timer behind.
    set('open', timeout, () => {
      // Some frame came after the ping: the next ping is due `interval` after the last one.
      if (answered) return check()
      // `!== true`: old Firefox passes setTimeout callbacks a lateness number.
      if (again !== true && Date.now() - armed >= 2 * timeout) return ping(true)
      // A ping that went unanswered: reconnect now, even when it was the ping on a return.
      resumed = false
      retry(end(new MpbusError('HEARTBEAT_TIMEOUT', 'heartbeat timeout')), true)
    })
    let frame: SocketData | undefined
    try {
      frame = typeof message === 'function' ? message() : message
    } catch (e) {
      // Nothing is sent: the deadline stands, so a link that is really dead is still noticed.
      emit('error', new MpbusError('HANDLER_ERROR', `heartbeat.message threw: ${describe(e)}`, e))
    }
    // heartbeat.message may have closed or replaced the link: ping only the socket it was made for.
    if (frame !== undefined && socket === pinged) pinged.send(frame)
  }

  /** Decides what follows when no socket is live. */
  function go(): void {
    if (state === 'closed') return
    if (!online) set('offline')
    else if (!visible) set('suspended')
    else connect()
  }

  /**
   * After a failed connect or a lost link (`up`: when it had opened). Full-jitter backoff:
   * delay(n) = random() * min(maxDelay, minDelay * factor^(n-1)) for attempt n = 1, 2, ...,
   * except that the first attempt after a link that had opened is immediate, and the first after
   * the app came back waits RESUME_DELAY. `stable` is false for drop(): that link does not count
   * as stable however long it was up, so a login that always times out still backs off.
   */
  function retry(up: number, stable?: boolean): void {
    if (up && stable && Date.now() - up >= backoff.stableAfter) attempt = 0
    if (!online || !visible) {
      go()
    } else if (++attempt > backoff.maxAttempts) {
      set('failed')
    } else {
      const now = up && attempt < 2 && !resumed
      const delay = resumed
        ? RESUME_DELAY
        : now
          ? 0
          : random() *
            Math.min(
              backoff.maxDelay,
              // Not `**`: esbuild lowers it to a Math.pow helper for ES2015 anyway.
              backoff.minDelay * Math.pow(backoff.factor, attempt - 1),
            )
      resumed = false
      emit('reconnecting', { attempt, delay })
      now ? go() : set('backoff', delay, go)
    }
  }

  /** Starts an attempt: the URL first (a provider may answer later), then the socket. */
  function connect(): void {
    const gen = ++generation
    set('connecting', connectTimeout, () => retry(end(new MpbusError('CONNECT_TIMEOUT', 'connect timeout'))))
    const failed = (code: MpbusErrorCode, e: unknown) => {
      // Unless it reported an error first (a `fail` called inside connectSocket): that attempt is counted.
      if (gen === generation) retry(end(new MpbusError(code, describe(e), e)))
    }
    let address: string | PromiseLike<string>
    try {
      address = typeof url === 'function' ? url() : url
    } catch (e) {
      failed('URL_ERROR', e)
      return
    }
    const dial = (to: string) => {
      if (gen !== generation) return
      if (!URL_RULE.test(to)) return failed('URL_ERROR', `not a ws:// or wss:// URL: ${describe(to)}`)
      try {
        open(gen, to)
      } catch (e) {
        failed('SOCKET_ERROR', e)
      }
    }
    const later = address as PromiseLike<string>
    if (later && typeof later.then === 'function')
      later.then(
        entry(dial),
        entry((e: unknown) => failed('URL_ERROR', e)),
      )
    else dial(address as string)
  }

  /** Asks the platform for a socket to `address`; its events count only while `gen` is current. */
  function open(gen: number, address: string): void {
    const live = <A extends unknown[]>(fn: (...a: A) => void) =>
      entry((...a: A) => gen === generation && fn(...a))
    const s = platform.connect(
      address,
      {
        open: live(() => {
          heard = opened = Date.now()
          resumed = false
          idle()
          emit('open', linkOf(gen))
        }),
        message: live((data: SocketData) => {
          // A frame proves a kept socket alive: a later loss is no longer part of the return.
          resumed = false
          heard = Date.now()
          answered = true
          emit('message', data)
        }),
        close: live((info: CloseInfo) => {
          if (opened) emit('lost', info)
          const up = end(undefined, info)
          const again = reconnects(info)
          // shouldReconnect may have called reconnect() (a socket is already on its way) or close().
          if (socket || state === 'closed') return
          again ? retry(up, true) : set('failed')
        }),
        error: live((error: MpbusError) => retry(end(error), true)),
      },
      // The platform gives up when we do, so an abandoned attempt frees its socket (docs/platforms.md).
      { timeout: connectTimeout },
    )
    // A platform that reported an end synchronously, inside connect(), already moved on.
    if (gen === generation) socket = s
    else s.close()
  }

  /** Whether a close from the server is followed by a reconnect. */
  function reconnects(info: CloseInfo): boolean {
    if (shouldReconnect) {
      try {
        return !!shouldReconnect(info)
      } catch (e) {
        emit('error', new MpbusError('HANDLER_ERROR', `shouldReconnect threw: ${describe(e)}`, e))
      }
    }
    return stopCodes.indexOf(info.code) < 0
  }

  /** The handle of the link that `gen` opened: it acts only while that link is current. */
  function linkOf(gen: number): Link {
    const current = () => gen === generation
    return {
      get current() {
        return current()
      },
      send(data, done) {
        if (!current() || state !== 'open') return false
        socket!.send(data, done)
        return true
      },
      drop: entry((error: MpbusError) => {
        if (current()) retry(end(error))
      }),
      halt: entry((error: MpbusError) => {
        if (!current()) return
        end(error)
        set('failed')
        failure = error
      }),
    }
  }

  /**
   * The network (`network`) or the app's visibility changed. Down: the network takes the link
   * (`offline`); a hidden app keeps an open socket, because the platform closes it itself about
   * 5 s later (docs/platforms.md) and a quick return finds it still usable, but lets go of one
   * still connecting (`suspended`). Up: leaves that state, probing a kept socket at once, since
   * the link may have died while we could not look.
   */
  const watch = (network: boolean) =>
    entry((up: boolean) => {
      const down = network ? 'offline' : 'suspended'
      if (network) online = up
      else visible = up
      if (!up && (/^(connecting|open|backoff)$/.test(state) || (network && state === 'suspended'))) {
        // For the app this ends only a link that never opened, which reports nothing.
        if (network || state !== 'open') end(down)
        set(down)
      } else if (up && state === down) {
        // Connects made while WeChat is still resuming fail (docs/platforms.md): see RESUME_DELAY.
        // Also with a kept socket: its close, held during the suspension, may come just after the show.
        if (!network) resumed = true
        if (socket) {
          heartbeat ? ping() : set('open')
        } else {
          attempt = 0
          go()
        }
      }
    })
  // `&&` rather than `?.`: the ES2015 output of an optional call is twice as long.
  const unwatch = [
    platform.watchNetwork && platform.watchNetwork(watch(true)),
    platform.watchApp && platform.watchApp(watch(false)),
  ]

  return {
    get state() {
      return state
    },
    get failure() {
      return failure
    },
    on: emitter.on,
    off: emitter.off,
    start: entry(() => {
      if (state === 'idle') go()
    }),
    reconnect: entry(() => {
      if (state === 'closed') return
      end('reconnect')
      attempt = 0
      go()
    }),
    close: entry(() => {
      if (state === 'closed') return
      end('closed')
      set('closed')
      for (const off of unwatch) if (off) off()
    }),
  }
}

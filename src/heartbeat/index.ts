/**
 * The app-level heartbeat: one deadline, reset by every inbound frame (the recipe in the `ws`
 * README). A TCP link can freeze without a close event for 30 s or more (or for ever, on a
 * phone that changed networks), so only an answer proves the link is alive.
 */
import type { SocketData } from '../platform/types'

export interface HeartbeatOptions {
  /** ms without any inbound frame before a ping. @default 25000 */
  interval: number
  /** ms after the ping within which some frame must arrive. @default 10000 */
  timeout: number
  /** the ping frame, or a function making it (called for every ping). @default '{"Operator":"Heart"}' */
  message: SocketData | (() => SocketData)
}

export const HEARTBEAT_DEFAULTS: HeartbeatOptions = {
  interval: 25_000,
  timeout: 10_000,
  message: '{"Operator":"Heart"}',
}

export interface Heartbeat {
  /** Arms the interval: a ping after `interval` ms unless a frame arrives first. */
  start(): void
  /** Cancels the pending ping or deadline. */
  stop(): void
  /** Any inbound frame: cancels the deadline and re-arms the interval. */
  alive(): void
  /** Pings now and arms the deadline (used when the app comes back and the link may be stale). */
  probe(): void
}

/**
 * `hooks.ping(message)` sends the ping; `hooks.dead()` is called when nothing arrived within
 * `timeout` ms of it. There is one timer, so `stop()` leaves nothing behind.
 */
export function createHeartbeat(
  options: HeartbeatOptions,
  hooks: { ping(message: SocketData): void; dead(): void },
): Heartbeat {
  const { interval, timeout, message } = options
  let timer: ReturnType<typeof setTimeout> | undefined
  const arm = (ms: number, fn: () => void) => {
    clearTimeout(timer)
    timer = setTimeout(fn, ms)
  }
  const start = () => arm(interval, probe)
  const probe = () => {
    // The deadline is armed before the ping is sent, so a ping whose send stops us synchronously
    // (a failed send that ends the link) leaves no timer behind.
    arm(timeout, hooks.dead)
    hooks.ping(typeof message === 'function' ? message() : message)
  }
  return { start, probe, alive: start, stop: () => clearTimeout(timer) }
}

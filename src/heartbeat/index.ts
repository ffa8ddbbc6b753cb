/**
 * The app-level heartbeat: a ping after `interval` ms without any inbound frame, and a deadline
 * `timeout` ms after it (the recipe in the `ws` README). Every frame notes its time; the timer
 * reads it when it fires, so a busy link costs no timer work per frame. A TCP link can freeze
 * without a close event for 30 s or more (or for ever, on a phone that changed networks), so only
 * an answer proves the link is alive.
 *
 * This module declares the policy; the transport runs it on its one state timer (see `idle`
 * and `ping` in src/transport), so the heartbeat can never outlive the open state that armed it,
 * and a second timer with its own start/stop bookkeeping is not needed.
 */
import type { SocketData } from '../platform/types'

export interface HeartbeatOptions {
  /** ms without any inbound frame before a ping. @default 25000 */
  interval: number
  /** ms after the ping within which some frame must arrive. @default 10000 */
  timeout: number
  /** the ping frame, or a function making it (called for every ping). @default `{"Operator":"Heart"}` in the bus's `opKey` */
  message: SocketData | (() => SocketData)
}

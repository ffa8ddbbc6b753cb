/**
 * The one small interface the rest of mpbus uses to reach a platform.
 * Each adapter in this folder maps one platform's API onto it; what each does
 * differently is in docs/platforms.md.
 */
import type { MpbusError } from '../errors'

/** A frame as platforms deliver it. Alipay's base64 (`isBuffer`) is decoded by its adapter. */
export type SocketData = string | ArrayBuffer

/**
 * Why a socket closed. `code` is always a number (Douyin sends a string; its adapter converts), but
 * often a synthetic one: Alipay reports no code (1005 here), Taro H5 reports 1006 for every close,
 * WeChat has delivered server codes as 1005 (docs/platforms.md). Treat it as best-effort.
 */
export interface CloseInfo {
  code: number
  reason: string
}

/**
 * What a socket reports. Contract every adapter keeps:
 * - `open` at most once, before any `message`;
 * - `close` or `error` at most once between them, and nothing at all after either;
 * - nothing at all after the caller's own `Socket.close()`.
 * So a task that is no longer current can never move the state of the bus,
 * even on WeChat where a task's listeners cannot be removed (no `off*`).
 */
export interface SocketListeners {
  open(): void
  message(data: SocketData): void
  close(info: CloseInfo): void
  error(error: MpbusError): void
}

export interface Socket {
  /**
   * Sends one frame. `done` is called exactly once: with nothing when the platform
   * reports the send succeeded, or with an `MpbusError` (`SOCKET_ERROR`) when it failed.
   * On WeChat `success` only means the call was accepted, not that the server got it.
   */
  send(data: SocketData, done?: (error?: MpbusError) => void): void
  /** Closes and detaches the socket; never throws, and no listener is called afterwards. */
  close(code?: number, reason?: string): void
}

/**
 * Key-value storage, idb-keyval style, synchronous where the platform is:
 * a synchronous write is what lets a queued message survive the app being killed.
 * Values are strings so their size in bytes is known before they are written.
 */
export interface Storage {
  /** The stored string, or `undefined` when the key is missing. Throws `MpbusError` (`STORAGE_ERROR`). */
  get(key: string): string | undefined
  /** Throws `MpbusError`: `STORAGE_FULL` for quota failures, `STORAGE_ERROR` otherwise. Nothing is lost silently. */
  set(key: string, value: string): void
  del(key: string): void
  keys(): string[]
}

/**
 * Asks for the lock called `name`, shared by every context of the storage's origin (browser tabs),
 * and held until the returned function is called or the context goes (closed or crashed: no lease
 * to expire). `wait` false: `granted(false)` at once when another holds it. `wait` true: queued
 * until it is free. `granted` is called once and never synchronously. The returned function
 * releases the lock, or cancels the request.
 */
export type Lock = (name: string, wait: boolean, granted: (held: boolean) => void) => () => void

/** The namespace an outbox writes under a shared prefix, as its `share` decides (src/outbox/owner.ts). */
export interface Owner {
  /** Where this outbox writes: '' (main) or '@id'; undefined while a lock is being asked for. */
  ns(): string | undefined
  /** Where messages queued before that answer are stored (only where the answer is asynchronous). */
  readonly scratch?: string
  /** The orphans to adopt now, given the keys in storage; each is returned once. */
  orphans(keys: string[]): string[]
  /** An adopted namespace's keys are gone (or it could not be read): it is no longer held. */
  swept(ns: string): void
  close(): void
}

/**
 * Makes the `Owner` of one outbox on `store` under `prefix`. `wake` runs when an asynchronous
 * answer came (load now) and when orphans turn up later (adopt them).
 */
export type Claim = (store: Storage, prefix: string, wake: () => void) => Owner

export interface ConnectOptions {
  /** The caller's connect timeout in ms. */
  timeout?: number
}

export interface Platform {
  /** `wx`, `my`, `swan`, `tt`, `qq`, `uni`, `taro`, `websocket`, or a name of the user's own. */
  readonly name: string
  /**
   * Opens a socket and attaches the listeners before returning (WeChat may miss `onOpen`
   * otherwise). May throw if the platform refuses the call; the caller treats that as a failed connect.
   * `options.timeout` (ms) is handed to platforms that take a connect timeout (wx ≥ 2.10.0, Alipay, tt:
   * docs/platforms.md), so an attempt the caller gave up on cannot hold a socket for the platform's 60 s.
   */
  connect(url: string, listeners: SocketListeners, options?: ConnectOptions): Socket
  /** The platform's own storage, when it has one. */
  readonly storage?: Storage
  /** Reports network changes (and the initial state, when it is offline). Returns the unsubscribe. */
  watchNetwork?(listener: (online: boolean) => void): () => void
  /** Reports the app going to the background (`false`) and coming back (`true`). Returns the unsubscribe. */
  watchApp?(listener: (visible: boolean) => void): () => void
  /**
   * The app or page may be killed next: persist now. `fn` runs synchronously in the platform's
   * event (mini programs: `onAppHide`; browsers: `visibilitychange` to hidden, `pagehide`,
   * `freeze`), so what it writes with synchronous storage is stored. Returns the unsubscribe.
   */
  watchHide?(fn: () => void): () => void
  /**
   * Tells the outboxes of other contexts on `storage` apart (browsers: Web Locks, src/platform/web-locks.ts).
   * Without it, two buses on one storage are told apart within one JS context (src/outbox/owner.ts).
   */
  share?: Claim
}

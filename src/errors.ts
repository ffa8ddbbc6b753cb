/**
 * Every failure mpbus reports is an `MpbusError` with a stable `code`.
 *
 * Misuse at call time throws at once (a bad option, a payload JSON cannot carry);
 * failures at run time (a bad inbound frame, full storage, a handler that threw)
 * are reported through the `error` event and never thrown into platform callbacks.
 *
 * Codes:
 * - `BAD_OPTION`: an option is missing or out of range.
 * - `NO_PLATFORM`: no platform was given and none could be detected.
 * - `BAD_PAYLOAD`: a payload JSON cannot carry faithfully (see src/payload.ts), or `codec.encode` threw on it.
 * - `BAD_OPERATOR`: `send`/`request` was given an operator that is not a non-empty string.
 * - `TOO_LARGE`: a single message is larger than one storage record may be.
 * - `OUTBOX_FULL`: the outbox is at `maxMessages`/`maxBytes` and the policy is `reject`.
 * - `STORAGE_FULL`: the platform refused a write for quota; the data stays in memory.
 * - `STORAGE_ERROR`: any other storage failure.
 * - `CORRUPT_RECORD`: a stored record could not be read; it was skipped.
 * - `EXPIRED`: a queued message outlived its `ttl` and was dropped.
 * - `DROPPED`: a message was dropped by the overflow policy, or a volatile one while offline.
 * - `BAD_FRAME`: an inbound frame is not JSON, not an object, or has no operator.
 * - `FRAME_TOO_LARGE`: an inbound frame is larger than `maxInboundBytes`.
 * - `HANDLER_ERROR`: a user callback threw (a handler, a lifecycle listener, `heartbeat.message`,
 *   `shouldReconnect`); the others still ran and the bus went on.
 * - `SOCKET_ERROR`: the platform reported a socket error or a failed send.
 * - `CONNECT_TIMEOUT`: a socket did not open within `connectTimeout`.
 * - `HEARTBEAT_TIMEOUT`: nothing arrived within `heartbeat.timeout` after a ping.
 * - `ACK_TIMEOUT`: with `ack` on, a message in flight got no ack within `ack.timeout`: the link was dropped.
 * - `URL_ERROR`: the URL provider threw, its Promise rejected, or it gave no string.
 * - `LOGIN_ERROR`: the `login` function threw or its Promise rejected; counts as a failed connect.
 * - `UNAUTHORIZED`: the server answered the login with one of `ready.fail`.
 * - `SESSION_ENDED`: the server sent the `sessionEnd` frame: no reconnect until `reconnect()` (a stop code also ends in `failed`, with no error).
 * - `TIMEOUT`: a request got no reply in time, or the login / `ready.ok` did not come within `ready.timeout`.
 * - `CLOSED`: the bus was closed before the operation could finish.
 * - `ENGINE_DOWN`: (`mpbus/server`) the engine cannot be reached (Redis down): a push rejects, a login is closed with 1013.
 *
 * `mpbus/server` reports to its `onError(error, user)` with these codes:
 * - `HANDLER_ERROR`: a handler threw or rejected; the message is not acked, and its resend runs it again.
 * - `LOGIN_ERROR`: `authenticate` threw or rejected; the login is refused.
 * - `BAD_FRAME`: a frame that is not a JSON object with a non-empty string operator: closed with 1007.
 * - `FRAME_TOO_LARGE`: a frame over `maxFrameBytes`: closed with 1009 (by `ws`).
 * - `LOGIN_REQUIRED`: a frame other than the login came first: closed with 1008.
 * - `IN_PROGRESS`: a resend came while its first copy is still being handled (here or on another
 *   node): closed with 1013; the client resends, and it is acked once that handler is done.
 * - `STREAM_GAP`: a connection would have skipped positions of a stream (an event the node missed,
 *   another epoch): closed with 1012; the client resumes.
 * - `ENGINE_DOWN`: an engine call failed (`cause` holds the engine's error).
 * - `SOCKET_ERROR`: `ws` reported an error on a connection.
 */
export type MpbusErrorCode =
  | 'BAD_OPTION'
  | 'NO_PLATFORM'
  | 'BAD_PAYLOAD'
  | 'BAD_OPERATOR'
  | 'TOO_LARGE'
  | 'OUTBOX_FULL'
  | 'STORAGE_FULL'
  | 'STORAGE_ERROR'
  | 'CORRUPT_RECORD'
  | 'EXPIRED'
  | 'DROPPED'
  | 'BAD_FRAME'
  | 'FRAME_TOO_LARGE'
  | 'HANDLER_ERROR'
  | 'SOCKET_ERROR'
  | 'CONNECT_TIMEOUT'
  | 'HEARTBEAT_TIMEOUT'
  | 'ACK_TIMEOUT'
  | 'URL_ERROR'
  | 'LOGIN_ERROR'
  | 'UNAUTHORIZED'
  | 'SESSION_ENDED'
  | 'TIMEOUT'
  | 'CLOSED'
  | 'ENGINE_DOWN'
  | 'LOGIN_REQUIRED'
  | 'IN_PROGRESS'
  | 'STREAM_GAP'

export class MpbusError extends Error {
  readonly code: MpbusErrorCode
  /** What caused it: the platform's own error object, a thrown value, the frame that was refused. */
  readonly cause?: unknown

  constructor(code: MpbusErrorCode, message: string, cause?: unknown) {
    super(message)
    this.name = 'MpbusError'
    this.code = code
    this.cause = cause
    // ES2015 output keeps the prototype chain, but some mini program runtimes
    // polyfill classes; setting it again is cheap and keeps `instanceof` honest.
    Object.setPrototypeOf(this, MpbusError.prototype)
  }
}

/**
 * Reads a message out of whatever a platform calls an error: `{errMsg}` (wx family), `{errorMessage}`
 * (Alipay), an Error, a string; any other object as JSON (Alipay's bare `{"error":12}`).
 */
export function describe(value: unknown): string {
  if (value && typeof value === 'object') {
    for (const key of ['errMsg', 'errorMessage', 'message']) {
      if ((value as any)[key] != null) return String((value as any)[key])
    }
    // Circular or holding a BigInt: only String() is left.
    try {
      return JSON.stringify(value)
    } catch {}
  }
  return String(value)
}

/** `value` if it is an `MpbusError` already, else one of `code` with its message and `value` as the cause. */
export const asMpbusError = (code: MpbusErrorCode, value: unknown): MpbusError =>
  value instanceof MpbusError ? value : new MpbusError(code, describe(value), value)

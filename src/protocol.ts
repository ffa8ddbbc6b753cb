/**
 * The protocol's names and shapes (docs/protocol.md), declared once: the client (src/bus,
 * src/compat), `mpbus/server`, its conformance check and the test kit all read them from here.
 * A leaf: it imports nothing, so either end can take it without the other.
 *
 * The names are the defaults; a client may rename the operator and id fields and the ack
 * operator (`opKey`, `idKey`, `ack.op`), so the client reads these only where it has no option.
 * Plain `const` strings, not an object: a bundle keeps only the ones it uses.
 */

/** The field that names what a frame is. */
export const OP = 'Operator'
/** The field that carries a durable message's id (and a request's, for its reply). */
export const ID = 'MsgId'
/** The field of a batched ack is the id field's name with this after it (`MsgIds`): a list of ids. */
export const BATCH = 's'

/** Operators. */
export const ACK = 'Ack'
export const LOGIN = 'userLogin'
export const LOGIN_OK = 'LoginOK'
export const LOGIN_ERROR = 'LoginError'
export const HEART = 'Heart'
export const HEART_OK = 'HeartOK'
export const SESSION_END = 'SessionEnd'
/** The server's history no longer covers a stream's gap: the client jumps to the position it carries. */
export const RESYNC = 'Resync'

/**
 * A refusal (docs/protocol.md, "Refusals"): an ack that also carries `refused`, a code, and
 * `reason`, text for people; the message is answered for good and not resent. `mpbus/server`
 * refuses a message no handler takes with the code `NO_HANDLER`.
 */
export const REFUSED = 'refused'
export const REASON = 'reason'
export const NO_HANDLER = 'NO_HANDLER'

/** The field of a pushed frame with its position (`{name, offset, epoch}`). */
export const STREAM = 'Stream'
/** The field of a login, and of its answer, with positions by stream name. */
export const STREAMS = 'Streams'
/**
 * The field of a login with the largest message, in bytes, the client takes: it takes batches
 * (several frames in one message, a JSON array). Sent with the positions.
 */
export const TAKES_BATCH = 'Batch'

/** Close codes of the server (docs/protocol.md, "Closes by the server"). */
export const CLOSE_NOT_A_FRAME = 1007
/** A frame before the login, or a refused login. */
export const CLOSE_POLICY = 1008
/** The connection may have missed live frames: reconnect and resume. */
export const CLOSE_RESUME = 1012
/** The engine cannot serve it now: back off and retry. */
export const CLOSE_TRY_LATER = 1013
/** The server failed in a way it did not expect while serving the connection: reconnect. */
export const CLOSE_INTERNAL = 1011
/** The session ended (after `SessionEnd`); also the client's default stop code. */
export const CLOSE_SESSION_ENDED = 4001
/** The client reads slower than it is pushed to: reconnect and resume. */
export const CLOSE_TOO_SLOW = 4002
/** No login completed in time: reconnect and log in again. */
export const CLOSE_LOGIN_TIMEOUT = 4003

/** A frame: a JSON object whose operator field is a string. */
export type Frame = Record<string, any>

/** Where a frame stands in its stream: offsets count from 1 within an epoch; a new epoch means the history was lost. */
export interface Position {
  offset: number
  epoch: string
}

/**
 * The position fields under the names above. The client reads them through this type by name
 * (`frame.Streams`, smaller in its bundle than `frame[STREAMS]`); renaming one here fails the
 * type check there.
 */
export interface PositionFields {
  /** In a login: the client's positions; in the login's answer: the tips of the streams it named none for. */
  [STREAMS]?: Record<string, Position>
  /** In a pushed frame and a `Resync`: its position, and the name of its stream. */
  [STREAM]?: Position & { name: string }
  /** In a login: the largest message, in bytes, the client takes as a batch. */
  [TAKES_BATCH]?: number
}

/** Whether a frame at `position` was already had by a reader last at `last`: at or before it, in the same epoch. */
export const isRepeat = (last: Position | undefined, position: Position): boolean =>
  !!last && last.epoch === position.epoch && position.offset <= last.offset

/**
 * Whether a decoded value is a frame: an object, not an array, with a string under `opKey`. The
 * client's framing (src/bus/framing.ts) writes the same test out: a call costs its bundle bytes.
 */
export const isFrame = (value: unknown, opKey: string): value is Frame =>
  !!value && typeof value === 'object' && !Array.isArray(value) && typeof (value as Frame)[opKey] === 'string'

/** An app's operations: operator name → payload type, as `createBus<Out, In>` and `createServer<Out, In>` take them. */
export type OpMap = Record<string, any>
/** A frame as a handler sees it: its payload's fields beside the operator's. */
export type FrameOf<P = Record<string, unknown>> = P & Record<string, unknown>

/** What the server keeps in its engine: stream histories, the duplicate window, room membership. */

/** Where a frame stands in its stream: offsets count from 1 within an epoch; a new epoch means the history was lost. */
export interface Position {
  offset: number
  epoch: string
}

export interface Stored {
  offset: number
  /** The frame as pushed, without its position. */
  frame: Record<string, unknown>
}

/**
 * Everything the server must share between nodes. Synchronous: the memory engine answers at
 * once, which keeps a resume and the live frames after it in order without a buffer.
 */
export interface Engine {
  /** Appends a frame to a stream and returns its position. */
  append(stream: string, frame: Record<string, unknown>): Position
  /** The position of the last frame of a stream (offset 0 before any). */
  tip(stream: string): Position
  /** The frames after `from`, in order; undefined when the history no longer covers them (trimmed, another epoch). */
  since(stream: string, from: Position): Stored[] | undefined
  /** Records a message id for a user: false if it is already in the window (a duplicate). */
  remember(user: string, id: string): boolean
  /** Takes an id out of the window again (its handler failed: the resend must run it). */
  forget(user: string, id: string): void
  join(user: string, room: string): void
  leave(user: string, room: string): void
  rooms(user: string): string[]
  members(room: string): string[]
}

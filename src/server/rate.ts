/**
 * The rate gate of one connection: at most `frames` inbound frames per `interval` ms. Past it the
 * connection is not read until the interval ends: TCP holds the client back, and nothing is
 * refused (a client replaying its outbox sends a whole window at once). Its one timer is its own:
 * `open()` at the interval's end, or `release()` at the connection's close.
 */
export interface Rate {
  frames: number
  interval: number
}

export interface Gate {
  /** When the window started, and how many frames came in it. */
  start: number
  count: number
  /** Set while reading is paused: opens when the interval ends (or at close). */
  held: { open(): void; timer: ReturnType<typeof setTimeout> } | undefined
}

export const createGate = (): Gate => ({ start: Date.now(), count: 0, held: undefined })

/**
 * Counts a frame. Past the rate it returns what to wait for before reading on (once per window):
 * the frames already read (one read's worth) run after it.
 */
export function admit(gate: Gate, rate: Rate): Promise<void> | undefined {
  const now = Date.now()
  if (now - gate.start >= rate.interval) {
    gate.start = now
    gate.count = 0
  }
  if (++gate.count <= rate.frames || gate.held) return
  return new Promise<void>((open) => {
    gate.held = { open, timer: setTimeout(open, gate.start + rate.interval - now) }
  }).then(() => {
    gate.held = undefined
    gate.start = Date.now()
    gate.count = 0
  })
}

/** Opens a held gate now and drops its timer (the connection closed). */
export function release(gate: Gate): void {
  if (!gate.held) return
  clearTimeout(gate.held.timer)
  gate.held.open()
}

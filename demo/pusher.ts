/**
 * Server → client traffic: every `interval` ms, one batch through the cluster: `Tick {k}` pushed
 * to every client's user (k counting per user) and `RoomTick {k}` published to the room they all
 * joined. One batch at a time, so each stream's frames are appended in k order whichever node
 * takes them. A batch no node took (the server is down) pushed nothing; its numbers are skipped,
 * as are those of a push that failed (on a Redis Cluster, while its stream's shard was down).
 *
 * What counts as pushed is what a node confirmed, with the position it got: the demo's ground
 * truth for the server → client table.
 */
import type { Cluster } from './cluster'
import type { Pos } from './server-node'

export interface PushRecord extends Pos {
  k: number
  /** ms since the start of the run when the batch was asked for (before the append). */
  at: number
}

export interface PusherOptions {
  cluster: Cluster
  /** The clients' users, by client index. */
  users: string[]
  interval: number
  clock: () => number
}

export function createPusher(options: PusherOptions) {
  const { cluster, users, clock } = options
  /** Confirmed pushes per client index, and the room's. */
  const user: PushRecord[][] = users.map(() => [])
  const room: PushRecord[] = []
  const next = users.map(() => 0)
  let nextRoom = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  let running = false
  let inFlight: Promise<void> = Promise.resolve()

  async function batch(): Promise<void> {
    const at = clock()
    const ks = next.slice()
    const roomK = nextRoom
    // Numbers are used once even when the batch fails: a frame a dying node pushed but never
    // confirmed must not share its k with a later one.
    for (let i = 0; i < next.length; i++) next[i]!++
    nextRoom++
    const result = await cluster.push(
      users.map((u, i) => ({ user: u, k: ks[i]! })),
      roomK,
    )
    if (!result) return
    result.users.forEach((p, i) => {
      if (p) user[i]!.push({ k: ks[i]!, at, offset: p.offset, epoch: p.epoch })
    })
    if (result.room) room.push({ k: roomK, at, offset: result.room.offset, epoch: result.room.epoch })
  }

  function schedule(): void {
    timer = setTimeout(() => {
      inFlight = batch().then(() => {
        if (running) schedule()
      })
    }, options.interval)
  }

  return {
    user,
    room,
    /** Confirmed pushes, over every stream, each counted once per client that should get it. */
    count: () => user.reduce((s, list) => s + list.length, 0) + room.length * users.length,
    start(): void {
      running = true
      schedule()
    },
    /** Stops, after the batch in flight is answered. */
    async stop(): Promise<void> {
      running = false
      clearTimeout(timer)
      await inFlight
    },
  }
}

export type Pusher = ReturnType<typeof createPusher>

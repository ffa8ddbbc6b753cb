/**
 * The faults, in the order the timeline plays them: what users' phones and networks (and
 * servers) do to a socket, one after another, with quiet time in between so each fault's effect
 * can be seen (and measured) on its own. Times are fractions of the run.
 */
import { roomStream, userStream } from '../src/server/streams'
import { type Client, userOf } from './client'
import type { Cluster, EngineKind } from './cluster'
import { ROOM } from './server-node'
import type { Fault } from './timeline'

export type FaultKind =
  | 'freeze'
  | 'reset'
  | 'acks'
  | 'refuse'
  | 'offline'
  | 'hide'
  | 'kill'
  | 'restart'
  | 'master'
  | 'node'

/** What a run's servers are: which faults it can play. */
export interface Setup {
  servers: number
  engine: EngineKind
}

export interface World {
  cluster: Cluster
  clients: Client[]
  random: () => number
  /** ms since the start of the run. */
  clock: () => number
}

export interface Stage {
  kind: FaultKind
  label: string
  /** Start and length as fractions of the run. */
  at: number
  length: number
  /** The share of clients it hits; every client when absent (a server-side or proxy fault). */
  share?: number
  /** Only in the runs it says yes to. @default every run */
  when?(setup: Setup): boolean
  /** Who it hits, in words, for the event line. @default the clients hit */
  who?: string
  /**
   * The clients can recover as soon as it begins (another node is up): recovery is measured from
   * the start, and the stage's end (the node back) is not the fault's end.
   */
  instant?: boolean
  /**
   * `ms` is the stage's length; `fault` is what the event line will show (a stage that picks
   * its target says which, and whom it hits, in `fault.who` and `fault.clients`, before its first
   * await). What `begin` resolves to is handed to `end`, and kept as the fault's `carried` when
   * it is a number.
   */
  begin(world: World, hit: Client[], ms: number, fault: Fault): unknown
  end?(world: World, hit: Client[], began: unknown): unknown
  /** Waits, after the fault's end, before the next stage may begin. */
  settle?(world: World, hit: Client[]): Promise<void>
}

export const STAGES: Stage[] = [
  {
    // A dead NAT mapping: no FIN, no RST, bytes vanish. Only the heartbeat can notice.
    kind: 'freeze',
    label: 'frozen link',
    at: 0.06,
    length: 0.09,
    begin: (w) => w.cluster.proxy.freeze(),
    end: (w) => w.cluster.proxy.pass(),
  },
  {
    // Every connection torn down with RST (a network switch, a load balancer restart).
    kind: 'reset',
    label: 'connections reset',
    at: 0.2,
    length: 0,
    begin: (w) => w.cluster.proxy.reset(),
  },
  {
    // The server got the messages but its Acks never came back (they died on the way, or the
    // server crashed between its work and its reply). The link still answers heartbeats, so
    // nothing looks wrong; the clients keep the messages. mpbus/server sends an ack only once the
    // handler returns, so the nodes' handler records the message (the work is done) and then
    // holds its return for these users; their later frames wait behind it, as frames of one
    // connection are handled in order. Then the phones' links drop (a network blip: offline and
    // straight back), and only then are the handlers let go, into dead links: the clients
    // reconnect, log in and resend with the original ids; the server has seen those ids (its
    // per-user window), so it drops them as repeats and acks them. At least once, no double.
    kind: 'acks',
    label: 'acks lost',
    at: 0.25,
    length: 0.08,
    share: 0.3,
    begin: (w, hit) => w.cluster.withhold(hit.map((c) => userOf(c.index))),
    end: (w, hit) => {
      for (const c of hit) {
        c.offline()
        c.online()
      }
      w.cluster.release()
    },
  },
  {
    // The server's address refuses connections for a while: reconnects must back off, not hammer.
    kind: 'refuse',
    label: 'refused outage',
    at: 0.38,
    length: 0.09,
    begin: (w) => w.cluster.proxy.refuse(),
    end: (w) => w.cluster.proxy.pass(),
  },
  {
    // Airplane mode, a lift: the phone knows it is offline; sends queue up in storage.
    kind: 'offline',
    label: 'network off',
    at: 0.52,
    length: 0.08,
    share: 0.3,
    begin: (_w, hit) => {
      for (const c of hit) c.offline()
    },
    end: (_w, hit) => {
      for (const c of hit) c.online()
    },
  },
  {
    // The user switches apps long enough for WeChat to close the socket (docs/platforms.md: suspended about 5 s after hide).
    kind: 'hide',
    label: 'app hidden',
    at: 0.63,
    length: 0.07,
    share: 0.3,
    begin: (_w, hit) => {
      for (const c of hit) c.hide()
    },
    end: (_w, hit) => {
      for (const c of hit) c.show()
    },
  },
  {
    // The app is killed and later launched again. It goes offline first, so its outbox holds
    // messages that never left the phone: the cold start must read them back from the storage
    // file and send them, before the new ones, once logged in. While it is dead the server keeps
    // pushing to it: the cold start must get those too, from the positions in the same file.
    kind: 'kill',
    label: 'app killed + cold start',
    at: 0.73,
    length: 0.07,
    share: 0.2,
    async begin(_w, hit, ms) {
      for (const c of hit) c.offline()
      await sleep(ms / 2)
      const queued = await Promise.all(hit.map((c) => c.kill()))
      return queued.reduce((a, b) => a + b, 0)
    },
    end: (_w, hit) => {
      for (const c of hit) c.coldStart()
    },
    // The next fault waits (up to 5 s) for the cold-started apps to be logged in again: a server
    // restart that came first would make what was pushed to them while dead a resync, and this
    // stage is there to show it recovered.
    async settle(_w, hit) {
      const until = Date.now() + 5000
      while (!hit.every((c) => c.ready) && Date.now() < until) await sleep(20)
      await sleep(200) // the replay right behind the login answer
    },
  },
  {
    // A deploy: every server process closes its sockets and exits (clients see their links
    // close), and new ones start on the same ports. On the memory engine the history and the
    // duplicate window went with the old process: the new one is a new epoch, so every client
    // that logs in with a position of the old one gets `resync` for it (counted in the table).
    // On Redis they outlive the processes: clients resume, no resync.
    kind: 'restart',
    label: 'server restart',
    at: 0.84,
    length: 0.05,
    begin: (w) => w.cluster.stopAll(),
    end: (w) => w.cluster.startAll(),
  },
  {
    // One master of the Redis Cluster crashes (SIGKILL) and is started again at the end of the
    // stage (Redis then holds a restarted master back 2 s before it serves: CLUSTER_WRITABLE_DELAY
    // in redis/src/cluster.c). Meanwhile the streams in its
    // slots can be neither written nor read: pushes to them fail, the connections reading them
    // are told to resume and their logins are refused until it is back, while the other
    // masters' streams go on. It comes back with its append-only file (demo/redis.ts): the
    // clients resume where they were, nothing resyncs.
    kind: 'master',
    label: 'Redis master killed',
    at: 0.9,
    length: 0.04,
    when: (setup) => setup.engine === 'redis-cluster',
    begin(w, _hit, _ms, fault) {
      const redis = w.cluster.redis!
      const i = Math.floor(w.random() * redis.masters)
      const shard = shardOf(w, i)
      fault.who = shard.who
      fault.clients = shard.clients
      return redis.killMaster(i).then(() => ({ master: i }))
    },
    end: (w, _hit, began) => w.cluster.redis!.restartMaster((began as { master: number }).master),
  },
  {
    // One node crashes (SIGKILL) while the other runs on: its clients' links die, they reconnect
    // through the proxy to the node that is up and resume there from Redis what they missed.
    // The dead node is started again at the end of the stage.
    kind: 'node',
    label: 'server node killed',
    at: 0.95,
    length: 0.04,
    when: (setup) => setup.servers > 1,
    instant: true,
    who: 'one node: its clients move to the other',
    async begin(w) {
      const i = Math.floor(w.random() * w.cluster.size)
      await w.cluster.kill(i)
      return { node: i }
    },
    end: (w, _hit, began) => w.cluster.start((began as { node: number }).node),
  },
]

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Which master, its slots, and whose streams they hold (the room's, the users' of the clients
 * named), in words; and the clients it hits. The engine gives a stream's keys and channel the
 * stream's name as hash tag (src/server/redis-scripts.ts), so the stream's name says its slot.
 */
function shardOf(w: World, i: number): { who: string; clients: number[] } {
  const redis = w.cluster.redis!
  const room = redis.owns(i, roomStream(ROOM))
  const there = w.clients.filter((c) => redis.owns(i, userStream(userOf(c.index)))).map((c) => c.index)
  const streams = [...(room ? ['the room'] : []), ...(there.length ? [`clients ${there.join(', ')}`] : [])]
  const who =
    `master ${i} of ${redis.masters}, slots ${redis.slotsOf(i)}: the streams there ` +
    `(${streams.join('; ') || 'none of the demo'}) unavailable until it is back`
  // Every client reads the room: with the room there, the fault hits them all.
  return { who, clients: room ? w.clients.map((c) => c.index) : there }
}

/** The faults a run plays, in order: "server node killed" only with several nodes, "Redis master killed" only on a Redis Cluster. */
export const faultKinds = (servers: number, engine: EngineKind = 'memory'): FaultKind[] =>
  STAGES.filter((s) => !s.when || s.when({ servers, engine })).map((s) => s.kind)

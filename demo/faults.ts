/**
 * The faults, in the order the timeline plays them: what users' phones and networks (and
 * servers) do to a socket, one after another, with quiet time in between so each fault's effect
 * can be seen (and measured) on its own. Times are fractions of the run.
 */
import { type Client, userOf } from './client'
import type { Cluster } from './cluster'

export type FaultKind =
  | 'freeze'
  | 'reset'
  | 'acks'
  | 'refuse'
  | 'offline'
  | 'hide'
  | 'kill'
  | 'restart'
  | 'node'

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
  /** Only with several server nodes. */
  multiNode?: boolean
  /** Who it hits, in words, for the event line. @default the clients hit */
  who?: string
  /**
   * The clients can recover as soon as it begins (another node is up): recovery is measured from
   * the start, and the stage's end (the node back) is not the fault's end.
   */
  instant?: boolean
  /**
   * `ms` is the stage's length. What `begin` resolves to is handed to `end`, and kept as the
   * fault's `carried` when it is a number.
   */
  begin(world: World, hit: Client[], ms: number): unknown
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
    length: 0.06,
    begin: (w) => w.cluster.stopAll(),
    end: (w) => w.cluster.startAll(),
  },
  {
    // One node crashes (SIGKILL) while the other runs on: its clients' links die, they reconnect
    // through the proxy to the node that is up and resume there from Redis what they missed.
    // The dead node is started again at the end of the stage.
    kind: 'node',
    label: 'server node killed',
    at: 0.91,
    length: 0.06,
    multiNode: true,
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

/** The faults a run plays, in order: "server node killed" only with several nodes. */
export const faultKinds = (servers: number): FaultKind[] =>
  STAGES.filter((s) => servers > 1 || !s.multiNode).map((s) => s.kind)

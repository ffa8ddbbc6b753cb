/**
 * `npm run demo`: N simulated mini programs keep sending, and the server keeps pushing to them and
 * publishing to their room, through frozen links, resets, lost acknowledgements, a refused outage,
 * network loss, app hide and kill, and a server restart; the tables at the end show, for both
 * directions, that nothing was lost or reordered.
 *
 *   npm run demo -- --duration 60 --clients 50 --seed 7
 *   npm run demo -- --duration 20 --servers 2 --engine redis   (two nodes on one Redis; a node is killed)
 *   npm run demo -- --servers 3 --engine redis-cluster   (three nodes on a Redis Cluster of three
 *                                                         masters; a node and a master are killed)
 *   npm run demo -- --url wss://your.server/ws     (a soak test of your backend: no faults injected)
 *
 * Exit code 1 when a message or a push was lost or reordered.
 */
import { parseArgs } from 'node:util'
import { renderPushTable } from './push-report'
import { renderTable, verdict } from './report'
import { type DemoOptions, type DemoResult, type DemoStatus, runDemo } from './run'

const HELP = `usage: npm run demo -- [--duration <s>] [--clients <n>] [--seed <n>] [--servers <n>]
                       [--engine memory|redis|redis-cluster] [--url <ws url>]

  --duration <s>   seconds of sending under faults (default 30)
  --clients <n>    simulated mini programs (default 20)
  --seed <n>       replay the same random choices
  --servers <n>    server processes behind the proxy (default 1); more than one needs --engine redis
                   or redis-cluster, and adds the fault "server node killed"
  --engine <name>  memory (default: nothing to install), redis (starts a redis-server), or
                   redis-cluster (starts a Redis Cluster of 3 masters: needs redis-server and
                   redis-cli 7 or later; adds the fault "Redis master killed")
  --url <ws url>   your server instead of the local one; no faults are injected
                   (it must speak the protocol: userLogin -> LoginOK, Heart -> HeartOK, Ack by MsgId)`

function number(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} wants a positive number, got '${value}'`)
  return n
}

function parse(argv: string[]): DemoOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      duration: { type: 'string' },
      clients: { type: 'string' },
      seed: { type: 'string' },
      url: { type: 'string' },
      servers: { type: 'string' },
      engine: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return undefined
  const clients = number(values.clients, 'clients')
  const servers = number(values.servers, 'servers')
  const engine = values.engine ?? 'memory'
  if (engine !== 'memory' && engine !== 'redis' && engine !== 'redis-cluster')
    throw new Error(`--engine is memory, redis or redis-cluster, got '${engine}'`)
  if (servers !== undefined && servers > 1 && engine === 'memory')
    throw new Error('several servers share their state through Redis: add --engine redis (or redis-cluster)')
  return {
    servers: servers === undefined ? undefined : Math.floor(servers),
    engine,
    duration: number(values.duration, 'duration'),
    clients: clients === undefined ? undefined : Math.floor(clients),
    seed: values.seed === undefined ? undefined : Math.floor(Number(values.seed)) || 0,
    url: values.url,
  }
}

function statusLine(s: DemoStatus): string {
  const fault = s.phase === 'draining' ? 'draining the outboxes' : (s.fault ?? 'none')
  return (
    `${(s.elapsed / 1000).toFixed(1).padStart(5)} s  connected ${s.connected}/${s.clients}  ` +
    `queued ${s.queued}  delivered ${s.delivered}  pushed ${s.pushed} seen ${s.seen}  fault: ${fault}`
  )
}

/** What the server → client table means where it is not obvious: resyncs, and what the killed apps got back. */
function explainPushes(result: DemoResult): void {
  const rows = result.pushRows!
  const resyncs = rows.reduce((s, r) => s + r.resyncs, 0)
  const behind = rows.reduce((s, r) => s + r.behindResync, 0)
  if (resyncs) {
    const why =
      result.engine === 'memory'
        ? "the memory engine's history went with the restarted process (a new epoch)"
        : 'the history no longer covered their gap'
    console.log(
      `Resyncs: ${resyncs}, because ${why}. The bus said so (the resync event) instead of pretending: ` +
        `the ${behind} frame(s) pushed behind them are the app's reload to fetch, not silent loss. ` +
        'They do not fail the run; a frame missed with no resync does.',
    )
  }
  for (const r of rows)
    if (r.lostFrames.length)
      console.log(`${r.name} lost ${r.lost} pushed frame(s), first: ${r.lostFrames.join(', ')}`)
  const dead = rows.filter((r) => r.whileDead)
  if (dead.length) {
    const pushed = dead.reduce((s, r) => s + r.whileDead!.pushed, 0)
    const recovered = dead.reduce((s, r) => s + r.whileDead!.recovered, 0)
    console.log(
      `While killed, ${dead.length} app(s) were pushed ${pushed} frame(s); after the cold start they got ` +
        `${recovered} of them, from the positions in their storage file.`,
    )
  }
}

async function main(): Promise<number> {
  let options: DemoOptions | undefined
  try {
    options = parse(process.argv.slice(2))
  } catch (e) {
    console.error(`${(e as Error).message}\n\n${HELP}`)
    return 2
  }
  if (!options) {
    console.log(HELP)
    return 0
  }

  // A TTY gets one line rewritten in place; a log (CI, a pipe) gets a line every few seconds.
  const tty = process.stdout.isTTY
  let lastPrinted = -Infinity
  let live = ''
  const out = process.stdout
  options.onStatus = (s) => {
    live = statusLine(s)
    if (tty) out.write(`\r${live}\x1b[K`)
    else if (s.elapsed - lastPrinted >= 3000) {
      lastPrinted = s.elapsed
      out.write(`${live}\n`)
    }
  }
  options.onEvent = (line) => {
    if (tty) out.write(`\r\x1b[K${line}\n${live}`)
    else out.write(`${line}\n`)
  }

  const servers = options.servers ?? 1
  const nodes = servers > 1 ? `${servers} mpbus/server nodes` : 'mpbus/server'
  const engine =
    options.engine === 'redis-cluster'
      ? 'Redis engine on a Redis Cluster of 3 masters'
      : `${options.engine ?? 'memory'} engine`
  const target = options.url
    ? `your server at ${options.url} (no faults injected)`
    : `${nodes} (${engine}) behind a fault proxy`
  console.log(`mpbus demo: ${options.clients ?? 20} clients, ${options.duration ?? 30} s, against ${target}`)
  // Ctrl-C: the run stops the servers and the Redis it started (and removes their files) before
  // the demo leaves. More SIGINTs do not cut that short (tsx relays the terminal's to this process
  // again); it is bounded instead.
  const interrupt = new AbortController()
  options.signal = interrupt.signal
  process.on('SIGINT', () => {
    if (interrupt.signal.aborted) return
    console.error('\ninterrupted: stopping the servers and Redis')
    interrupt.abort()
    setTimeout(() => process.exit(130), 10_000).unref()
  })
  const result = await runDemo(options).catch((error) => {
    if (interrupt.signal.aborted) process.exit(130)
    throw error
  })
  if (tty) out.write('\r\x1b[K')

  console.log(`\nClient → server (what the servers' handlers got):\n${renderTable(result.rows)}\n`)
  if (result.pushRows) {
    console.log(`Server → client (what the clients' handlers saw):\n${renderPushTable(result.pushRows)}\n`)
    explainPushes(result)
  }
  if (!result.drained)
    console.log('Not everything had arrived by the drain deadline: what had not counts as lost.')
  const carried = result.faults.reduce((sum, f) => sum + (f.carried ?? 0), 0)
  if (result.faults.some((f) => f.kind === 'kill')) {
    console.log(
      `When killed, the apps held ${carried} unsent message(s): only storage could carry them to the cold start.`,
    )
  }
  const acks = result.faults.find((f) => f.kind === 'acks')
  if (acks) {
    const repeats = acks.clients.reduce((sum, i) => sum + (result.rows[i]!.repeats ?? 0), 0)
    console.log(
      `Acks lost: clients ${acks.clients.join(', ')} resent what the server had never acknowledged; ` +
        `it dropped ${repeats} repeat(s) from them by message id.`,
    )
  }
  const master = result.faults.find((f) => f.kind === 'master')
  if (master) {
    const hit =
      master.clients.length === result.rows.length ? 'all clients' : `clients ${master.clients.join(', ')}`
    console.log(
      `Redis master killed: for ${((master.end! - master.start) / 1000).toFixed(1)} s its shard's streams took no ` +
        `pushes, and ${hit}, reading them, were cut off. Back with its append-only file, it still had ` +
        'every position it had acknowledged: they resumed where they were, no resync.',
    )
  }
  const twice = result.rows.reduce((sum, r) => sum + (r.twice ?? 0), 0)
  if (twice)
    console.log(
      result.engine === 'memory'
        ? `Handled twice: ${twice} message(s) resent after the restart, whose ids the new process's ` +
            'duplicate window did not have (the memory engine keeps it in the process): at least once, not lost.'
        : `Handled twice: ${twice} message(s) whose handler ran while Redis went away before the id was ` +
            'marked handled: the resend ran again once its claim expired. At least once, not lost.',
    )
  const { text } = verdict(result.rows, result.faults, result.pushRows)
  console.log(text)
  const routed = result.routed.length > 1 ? `, connections per node ${result.routed.join('/')}` : ''
  console.log(
    `seed ${result.seed} (rerun with --seed ${result.seed}), wall time ${(result.wallMs / 1000).toFixed(1)} s${routed}`,
  )
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error) => {
    // A part the demo needs that this machine lacks (redis-server) is one line, not a stack.
    console.error(`demo: ${error instanceof Error ? error.message : String(error)}`)
    process.exit(1)
  },
)

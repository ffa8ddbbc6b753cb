/**
 * `npm run demo`: N simulated mini programs keep sending through frozen links, resets, lost
 * acknowledgements, a refused outage, network loss, app hide and kill, and a server restart, and
 * the table at the end shows that nothing was lost or reordered.
 *
 *   npm run demo -- --duration 60 --clients 50 --seed 7
 *   npm run demo -- --url wss://your.server/ws     (a soak test of your backend: no faults injected)
 *
 * Exit code 1 when a message was lost or reordered.
 */
import { parseArgs } from 'node:util'
import { renderTable, verdict } from './report'
import { type DemoOptions, type DemoStatus, runDemo } from './run'

const HELP = `usage: npm run demo -- [--duration <s>] [--clients <n>] [--seed <n>] [--url <ws url>]

  --duration <s>   seconds of sending under faults (default 30)
  --clients <n>    simulated mini programs (default 20)
  --seed <n>       replay the same random choices
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
      help: { type: 'boolean', short: 'h' },
    },
  })
  if (values.help) return undefined
  const clients = number(values.clients, 'clients')
  return {
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
    `queued ${s.queued}  delivered ${s.delivered}  fault: ${fault}`
  )
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

  const target = options.url
    ? `your server at ${options.url} (no faults injected)`
    : 'a local server behind a fault proxy'
  console.log(`mpbus demo: ${options.clients ?? 20} clients, ${options.duration ?? 30} s, against ${target}`)
  const result = await runDemo(options)
  if (tty) out.write('\r\x1b[K')

  console.log(`\n${renderTable(result.rows)}\n`)
  if (!result.drained)
    console.log('Some outboxes had not drained by the deadline: what they hold counts as lost.')
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
  const { text } = verdict(result.rows, result.faults)
  console.log(text)
  console.log(
    `seed ${result.seed} (rerun with --seed ${result.seed}), wall time ${(result.wallMs / 1000).toFixed(1)} s`,
  )
  return result.ok ? 0 : 1
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)

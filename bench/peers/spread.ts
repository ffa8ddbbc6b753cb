// Runs the whole peers bench N times (default 3), each in its own process, and prints the
// README's "Measured side by side" subsection: every figure as its range over the runs.
//   npx tsx bench/peers/spread.ts [runs] [--messages N]
import { execFileSync } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { FAULT_CLIENTS } from './fault-clients'
import { type RunResult, tables } from './table'

const count = Number(process.argv[2]) || 3
const passOn = process.argv.slice(3)
const runs: RunResult[] = []
for (let i = 0; i < count; i++) {
  const file = join(tmpdir(), `mpbus-peers-${process.pid}-${i}.json`)
  console.error(`spread: run ${i + 1} of ${count}`)
  execFileSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(new URL('./run.ts', import.meta.url)), '--json', file, ...passOn],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  runs.push(JSON.parse(readFileSync(file, 'utf8')))
  rmSync(file)
}
const first = runs[0]!
const lines = [
  `Measured ${first.date.slice(0, 10)} with \`npx tsx bench/peers/spread.ts\` (${count} runs of \`bench/peers/run.ts\`, each one process with every peer in it; ${first.cpus} cores, Node ${first.node}, loopback; ${runs.map((r) => r.seconds).join(' / ')} s per run). Every cell is the range of its value over the ${count} runs; ratios are against raw \`ws\` (or socket.io) measured in the same run, since absolute rates on a shared machine are noise.`,
  '',
  tables(runs),
  '',
  "How each peer was set up. The servers run in a child process, so the bench process's CPU time is the clients'. Raw `ws`, reconnecting-websocket and mpbus (throughput, replay) send to one minimal `ws` server that parses and counts, answers the login and the heartbeat, and acks each frame with an id only for mpbus with ack on; one row sends to `mpbus/server` (memory engine, no rate limit), as does mpbus in the fault script. MQTT.js publishes to aedes over WebSocket, socket.io to its own server with the websocket transport only. In the fault script:",
  '',
  ...Object.values(FAULT_CLIENTS).map((c) => `- ${c.label}: ${c.config}.`),
]
console.log(lines.join('\n'))

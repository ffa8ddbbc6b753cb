// Runs every benchmark in turn and prints its results as JSON (the README's figures come
// from here). Benchmarks are kept out of the test suite: they measure, they do not assert.
// Run one alone with `npx tsx bench/<name>.ts`, or name it: `npm run bench -- peers`
// (`-- peers --messages 20000` for a shorter throughput part).
// Imports: the library from src/, and test fakes only from test/helpers/ (the counting storage of
// test/helpers/storage.ts); biome.json's override for bench/** refuses any other path into test/.
import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { benchCapacity } from './capacity'
import { benchDepth } from './depth'
import { benchHeartbeat } from './heartbeat'
import { benchNodes } from './nodes'
import { benchOutbox } from './outbox'
import { benchPush } from './push'
import { benchReceive } from './receive'
import { benchReplay } from './replay'

/**
 * The side-by-side part (bench/peers/run.ts): the peers (MQTT.js + aedes, socket.io, …) are
 * installed into bench/peers/node_modules on first use, never into the library's own.
 */
async function benchPeers() {
  const dir = new URL('./peers/', import.meta.url)
  if (!existsSync(new URL('node_modules', dir)))
    execSync('npm ci --prefix bench/peers --no-audit --no-fund --loglevel=error', {
      cwd: new URL('..', import.meta.url),
      stdio: 'inherit',
    })
  // Not a static import: the root typecheck (and CI, which never installs the peers) stays out of it.
  const path = String(new URL('run.ts', dir))
  const peers = await import(path)
  const messages = process.argv.indexOf('--messages')
  const result = await peers.benchPeers(messages > 0 ? { messages: Number(process.argv[messages + 1]) } : {})
  const { tables } = await import(String(new URL('table.ts', dir)))
  console.log(tables([result]))
  return result
}

async function main() {
  const only = process.argv[2]
  const benches: Record<string, () => unknown> = {
    outbox: () => benchOutbox(),
    depth: () => benchDepth(),
    heartbeat: () => benchHeartbeat(),
    replay: () => benchReplay(),
    push: () => benchPush(),
    nodes: () => benchNodes(),
    capacity: () => benchCapacity(),
    receive: () => benchReceive(),
    peers: () => benchPeers(),
  }
  for (const [name, run] of Object.entries(benches)) {
    if (only && only !== name) continue
    const started = Date.now()
    const result = await run()
    console.log(`## ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`)
    console.log(JSON.stringify(result, null, 2))
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error)
    process.exit(1)
  },
)

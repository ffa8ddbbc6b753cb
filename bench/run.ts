// Runs every benchmark in turn and prints its results as JSON (the README's figures come
// from here). Benchmarks are kept out of the test suite: they measure, they do not assert.
// Run one alone with `npx tsx bench/<name>.ts`.
import { benchDepth } from './depth'
import { benchHeartbeat } from './heartbeat'
import { benchOutbox } from './outbox'
import { benchPush } from './push'
import { benchReplay } from './replay'

async function main() {
  const only = process.argv[2]
  const benches: Record<string, () => unknown> = {
    outbox: () => benchOutbox(),
    depth: () => benchDepth(),
    heartbeat: () => benchHeartbeat(),
    replay: () => benchReplay(),
    push: () => benchPush(),
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

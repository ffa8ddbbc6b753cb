// `npm test`: the set-up (scripts/setup.mjs), then typecheck, lint, the test suite, the build and
// the package checks. Every step runs even when an earlier one failed, so one run reports them all,
// and the last line is the one verdict: PASS or FAIL, with each step's result.
import { spawnSync } from 'node:child_process'
import { prepare, TOOLS } from './setup.mjs'
import { totals } from './test-totals.mjs'

const started = Date.now()
const results = []
const env = { ...process.env, MPBUS_SETUP_REPORTED: '1' }

let missing = []
try {
  const found = prepare({ install: true })
  // What the set-up found (or just installed) is what the tests use.
  for (const [tool, file] of Object.entries(found)) if (file) env[TOOLS[tool].variable] = file
  missing = Object.keys(found).filter((tool) => !found[tool])
  results.push({ name: 'set-up', ok: true, text: 'set-up ok' })
} catch (error) {
  console.log(`setup: ${error.message}`)
  results.push({ name: 'set-up', ok: false, text: 'set-up FAILED' })
}

function step(name, script, describe = (ok) => `${name} ${ok ? 'ok' : 'FAILED'}`) {
  console.log(`\n> ${name}: npm run ${script}`)
  const ok = spawnSync('npm', ['run', '--silent', script], { stdio: 'inherit', env }).status === 0
  results.push({ name, ok, text: describe(ok) })
}

step('typecheck', 'typecheck')
step('lint', 'lint')
step('folder rules', 'deps')
step('tests', 'test:unit', (ok) => {
  const { line } = totals()
  const why = missing.length
    ? ` (no ${missing.map((tool) => TOOLS[tool].apt).join(', no ')}: see set-up above)`
    : ''
  return (ok ? line : `${line} FAILED`) + (missing.length ? why : '')
})
step('build', 'build')
step('package checks', 'check:package')

const ok = results.every((r) => r.ok)
const seconds = Math.round((Date.now() - started) / 1000)
console.log(
  `\nnpm test: ${ok ? 'PASS' : 'FAIL'} in ${seconds} s: ${results
    .filter((r) => r.name !== 'set-up' || !r.ok)
    .map((r) => r.text)
    .join('; ')}`,
)
process.exit(ok ? 0 : 1)

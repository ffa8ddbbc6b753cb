// Package checks, run by `npm test` after the build (and so by CI, `.ci/run`). Each prints one line
// with its result, then indented details; any failure makes the script exit 1.
//   1. miniprogram_dist is ES2015 CommonJS: no generators, async, Proxy, eval or new Function
//   2. miniprogram_dist loads and runs a bus in a node:vm sandbox shaped like a mini program
//   3. WeChat's npm builder (miniprogram-ci packNpmManually) accepts the packed tarball
//   4. publint --strict and arethetypeswrong (node16 profile) report no errors
//   5. the size budgets of .size-limit.json (min+gzip)
//   6. the shipped .d.ts files compile alone (no skipLibCheck, mitt absent), events typed by name
//   7. the README's first example (server and client) runs from the packed tarball
//   8. the commands of package.json `bin` run from the packed tarball
// Needs only what `npm ci` installs; works offline. Temp files live under os.tmpdir() and are removed.

import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { checkBin } from './check/bin.mjs'
import { checkEs2015 } from './check/es2015.mjs'
import { checkLint } from './check/lint-package.mjs'
import { checkReadmeNode } from './check/readme-node.mjs'
import { checkSize } from './check/size.mjs'
import { checkTypes } from './check/types-standalone.mjs'
import { checkVm } from './check/vm-load.mjs'
import { checkWechatNpm } from './check/wechat-npm.mjs'

const root = dirname(dirname(fileURLToPath(import.meta.url)))
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const started = Date.now()
const tmp = mkdtempSync(join(tmpdir(), 'mpbus-check-'))
const cleanup = () => rmSync(tmp, { recursive: true, force: true })
process.on('exit', cleanup)
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => process.exit(130))

/** Packs the repo once; checks 3, 4 and 6 look at exactly what `npm publish` would upload. */
let packed
function pack() {
  packed ??= promisify(execFile)(
    process.platform === 'win32' ? 'npm.cmd' : 'npm',
    ['pack', '--pack-destination', tmp, '--ignore-scripts', '--json', '--loglevel=error'],
    { cwd: root, timeout: 60_000 },
  ).then(({ stdout }) => join(tmp, JSON.parse(stdout)[0].filename))
  return packed
}

const checks = [
  ['ES2015 syntax, no generator/async/Proxy/eval in miniprogram_dist', checkEs2015],
  ['miniprogram_dist runs in a mini-program sandbox (node:vm)', checkVm],
  [
    "WeChat's Build npm (miniprogram-ci packNpmManually) accepts the tarball",
    async (ctx) => checkWechatNpm({ ...ctx, tarball: await pack() }),
  ],
  ['publint --strict and arethetypeswrong', async (ctx) => checkLint({ ...ctx, tarball: await pack() })],
  ['size budget (size-limit, .size-limit.json)', checkSize],
  ['the .d.ts files stand alone', checkTypes],
  [
    "the README's first example runs from the tarball",
    async (ctx) => checkReadmeNode({ ...ctx, tarball: await pack() }),
  ],
  [
    'the commands of package.json bin run from the tarball',
    async (ctx) => checkBin({ ...ctx, tarball: await pack() }),
  ],
]

let passed = 0
let failed = 0
for (const [i, [title, check]] of checks.entries()) {
  const t0 = Date.now()
  let result
  try {
    result = await check({ root, pkg, tmp })
  } catch (error) {
    result = { failures: [`threw: ${error?.stack ? error.stack : error}`] }
  }
  const failures = result.failures || []
  const ok = failures.length === 0
  if (ok) passed++
  else failed++
  const secs = ((Date.now() - t0) / 1000).toFixed(1)
  const summary = ok && result.summary ? `: ${result.summary}` : ''
  console.log(`${ok ? 'PASS' : 'FAIL'} ${i + 1}/${checks.length} ${title}${summary} (${secs} s)`)
  for (const line of result.details || []) console.log(`     ${line}`)
  for (const line of result.notes || []) console.log(`     note: ${line}`)
  for (const line of failures) console.log(`     ✗ ${line}`)
}

console.log(`package checks took ${((Date.now() - started) / 1000).toFixed(1)} s`)
console.log(`package checks: ${passed} passed, ${failed} failed`)
// Exit explicitly: a socket of the test kit's wx runtime must not keep CI waiting.
process.exit(failed ? 1 : 0)

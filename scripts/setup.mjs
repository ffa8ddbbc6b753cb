// The test set-up: what `npm test` needs beyond `npm ci`, prepared once, quick when already there.
//
// - test/h5: the Taro and uni-app H5 runtimes the browser tests bundle (their own lockfile, out of
//   the library's install), installed with `npm ci` when missing or older than the lockfile.
// - Chromium for test/browser (driven by playwright-core, never a downloaded browser build):
//   `CHROMIUM_PATH`, else `chromium` or `chromium-browser` on the PATH.
// - redis-server for the Redis engine's tests (they start their own on a free loopback port):
//   `REDIS_SERVER`, else `redis-server` on the PATH.
//
// `node scripts/setup.mjs` (the first step of `npm test`, and all `.ci/run` adds is `npm ci`)
// also installs a missing Chromium or redis-server with apt-get where it can (root, apt-get
// present, the variable unset). vitest's globalSetup (test/global-setup.ts) calls `prepare()`
// without installing, so `npx vitest run <file>` works the same. What cannot be had is reported in
// one line naming the command to run; its tests are skipped, and with CI=true that is a failure.
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { accessSync, constants, existsSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..')
const h5 = path.join(root, 'test', 'h5')
const stamp = path.join(h5, 'node_modules', '.mpbus-lockfile-hash')

/** The tools the tests need from the system: the variable that names one, the names to look for, the apt package. */
export const TOOLS = {
  chromium: {
    variable: 'CHROMIUM_PATH',
    names: ['chromium', 'chromium-browser'],
    apt: 'chromium',
    tests: 'browser',
  },
  redisServer: {
    variable: 'REDIS_SERVER',
    names: ['redis-server'],
    apt: 'redis-server',
    tests: 'Redis engine',
  },
}

function executable(file) {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

function onPath(name) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, name))) return path.join(dir, name)
  }
  return null
}

/** Where the tool is, or null. A variable that is set is the answer, found or not. */
export function find(tool) {
  const { variable, names } = TOOLS[tool]
  const given = process.env[variable]
  if (given) return executable(given) ? given : null
  for (const name of names) {
    const found = onPath(name)
    if (found) return found
  }
  return null
}

/** The one command that gets the missing tool, for the message. */
function howToGet(tool) {
  const { variable, apt } = TOOLS[tool]
  const given = process.env[variable]
  if (given) return `${variable}=${given} is not an executable: fix it or unset it`
  const sudo = process.getuid?.() === 0 ? '' : 'sudo '
  return `run \`${sudo}apt-get install ${apt}\` (or set ${variable} to the binary)`
}

function canApt() {
  return process.platform === 'linux' && process.getuid?.() === 0 && onPath('apt-get') !== null
}

function aptInstall(packages) {
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  console.log(`setup: installing ${packages.join(' ')} with apt-get…`)
  const run = (args) =>
    spawnSync('apt-get', args, { env, stdio: ['ignore', 'ignore', 'inherit'] }).status === 0
  return run(['update', '-qq']) && run(['install', '-y', '-qq', ...packages])
}

/** npm ci in test/h5 unless its node_modules was installed from this very lockfile. */
export function installH5() {
  const hash = createHash('sha256')
    .update(readFileSync(path.join(h5, 'package-lock.json')))
    .digest('hex')
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === hash) return false
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: h5, stdio: 'inherit' })
  writeFileSync(stamp, hash)
  return true
}

/**
 * Prepares what the tests need and says, in one line each, what is missing. Returns the tools'
 * paths (null: missing). With CI=true a missing tool throws: CI must run every test.
 */
export function prepare({ install = false } = {}) {
  if (installH5()) console.log('setup: installed the H5 runtimes in test/h5')
  const found = {}
  for (const tool of Object.keys(TOOLS)) found[tool] = find(tool)
  const missing = Object.keys(found).filter((tool) => !found[tool])
  const aptable = missing.filter((tool) => !process.env[TOOLS[tool].variable])
  if (install && aptable.length && canApt() && aptInstall(aptable.map((tool) => TOOLS[tool].apt))) {
    for (const tool of aptable) found[tool] = find(tool)
  }
  const lines = Object.keys(found)
    .filter((tool) => !found[tool])
    .map(
      (tool) => `setup: no ${TOOLS[tool].apt}: the ${TOOLS[tool].tests} tests are skipped; ${howToGet(tool)}`,
    )
  for (const line of lines) console.log(line)
  if (lines.length && process.env.CI === 'true')
    throw new Error('CI=true: every test must run (see the lines above)')
  return found
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  try {
    prepare({ install: true })
  } catch (error) {
    console.error(`setup: ${error.message}`)
    process.exit(1)
  }
}

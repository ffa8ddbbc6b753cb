// `npm run example`: runs server.js and client.js (the README's first example) as two processes,
// then restarts the server, and prints what each says. The memory engine keeps the pushed history
// in the server's process, so after the restart the client is told to resync; on Redis
// (redisEngine) it would resume where it was instead.
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'

const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const seen = []
const waiters = []

/** A free loopback port, so the example never collides with what already runs on 8080. */
const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })

function run(file, env) {
  const child = spawn(process.execPath, ['--import', 'tsx', here(file)], {
    cwd: here('.'),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let rest = ''
  child.stdout.on('data', (chunk) => {
    const lines = (rest + chunk).split('\n')
    rest = lines.pop()
    for (const line of lines) {
      console.log(line)
      seen.push(line)
      for (const w of waiters.splice(0)) if (!w.test(line)) waiters.push(w)
    }
  })
  return child
}

/** Resolves when a line printed from now on (or already printed after `from`) matches `pattern`. */
function expectLine(pattern, from = seen.length) {
  if (seen.slice(from).some((line) => pattern.test(line))) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`example: no line matching ${pattern} in 20 s`)), 20_000)
    waiters.push({
      test(line) {
        if (!pattern.test(line)) return false
        clearTimeout(timer)
        resolve()
        return true
      },
    })
  })
}

const env = { PORT: String(await freePort()) }
rmSync(here('.mpbus'), { recursive: true, force: true }) // a fresh device: no stored outbox or positions
let server = run('server.js', env)
let client
try {
  await expectLine(/server: listening/)
  client = run('client.js', env)
  await expectLine(/client: .* → ready/, 0)
  await expectLine(/client: "hello" acknowledged/, 0)
  await expectLine(/client: pushed NewMessage "echo: hello"/, 0)
  await expectLine(/client: pushed Tick/, 0)
  await expectLine(/client: pushed Tick/) // a second one
  console.log('example: restarting the server (its memory engine loses the pushed history)')
  const mark = seen.length
  server.kill()
  await new Promise((resolve) => server.once('exit', resolve))
  server = run('server.js', env)
  await expectLine(/client: .* → ready/, mark)
  await expectLine(/client: resync user:alice/, mark)
  await expectLine(/client: pushed Tick/) // pushes go on after the resync
  console.log('example: done: logged in, a send acknowledged, pushes received, a resync after the restart')
} catch (error) {
  console.log(error.message)
  process.exitCode = 1
} finally {
  if (client) client.kill()
  server.kill()
}

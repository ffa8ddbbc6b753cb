// Check 7: the README's first example, both halves, runs as written against the packed tarball
// installed the way the README says (`npm install …/mpbus-<version>.tgz`), with nothing of the
// repository on the path. The blocks marked `<!-- file: examples/node/server.js -->` and
// `client.js` are unpacked into a scratch project next to the tarball's contents and a link to
// `ws`; the server starts on a free port, and the client must print that "hello" was acknowledged.

import { execFile, spawn } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The README's block marked as `file`, or null. */
export function fileBlock(readme, file) {
  const block = new RegExp(`<!-- file: ${file} -->\\n+\`\`\`js\\n([\\s\\S]*?)\`\`\``).exec(readme)
  return block && block[1]
}

const freePort = () =>
  new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })

/** Runs `file` in `dir` until it prints a line matching `pattern` (resolves the child) or 20 s pass. */
function until(dir, file, env, pattern) {
  const child = spawn(process.execPath, [file], { cwd: dir, env: { ...process.env, ...env } })
  let out = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill()
      reject(new Error(`${file} printed no ${pattern} in 20 s:\n${out}`))
    }, 20_000)
    const read = (chunk) => {
      out += chunk
      if (pattern.test(out)) {
        clearTimeout(timer)
        resolve({ child, out })
      }
    }
    child.stdout.on('data', read)
    child.stderr.on('data', (chunk) => (out += chunk))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${file} exited (${code}):\n${out}`))
    })
  })
}

export async function checkReadmeNode({ root, tmp, tarball }) {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const server = fileBlock(readme, 'examples/node/server.js')
  const client = fileBlock(readme, 'examples/node/client.js')
  if (!server || !client)
    return { failures: ['README.md shows no examples/node/server.js and client.js blocks'] }
  const dir = join(tmp, 'readme-node')
  const mpbus = join(dir, 'node_modules', 'mpbus')
  mkdirSync(mpbus, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', mpbus, '--strip-components=1'])
  symlinkSync(join(root, 'node_modules', 'ws'), join(dir, 'node_modules', 'ws'), 'dir')
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  writeFileSync(join(dir, 'server.js'), server)
  writeFileSync(join(dir, 'client.js'), client)
  const env = { PORT: String(await freePort()) }
  const started = []
  try {
    started.push((await until(dir, 'server.js', env, /listening/)).child)
    const ran = await until(dir, 'client.js', env, /"hello" acknowledged/)
    started.push(ran.child)
    return { summary: 'ran both halves: "hello" acknowledged', details: ran.out.trim().split('\n') }
  } catch (e) {
    return { failures: [e.message] }
  } finally {
    for (const child of started) child.kill()
  }
}

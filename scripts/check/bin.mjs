// Check 8: every command of package.json `bin` is in the packed tarball, starts with a hashbang,
// and runs from it the way `npx` would run it (the tarball unpacked into a scratch project's
// node_modules, next to a link to `ws`): `--help` exits 0, a login frame that is not JSON exits
// 2 with one line on stderr.

import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export async function checkBin({ root, pkg, tmp, tarball }) {
  const commands = Object.entries(pkg.bin || {})
  if (!commands.length) return { failures: ['package.json has no bin'] }
  const dir = join(tmp, 'bin')
  const mpbus = join(dir, 'node_modules', 'mpbus')
  mkdirSync(mpbus, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', mpbus, '--strip-components=1'])
  symlinkSync(join(root, 'node_modules', 'ws'), join(dir, 'node_modules', 'ws'), 'dir')
  const failures = []
  const details = []
  for (const [name, path] of commands) {
    const file = join(mpbus, path)
    if (!existsSync(file)) {
      failures.push(`${name}: ${path} is not in the tarball`)
      continue
    }
    if (!readFileSync(file, 'utf8').startsWith('#!/usr/bin/env node\n'))
      failures.push(`${name}: ${path} does not start with #!/usr/bin/env node`)
    const help = await run(process.execPath, [file, '--help'], { cwd: dir, timeout: 20_000 }).catch((e) => e)
    if (help.code) failures.push(`${name} --help exited ${help.code}: ${help.stderr}`)
    else details.push(`${name} --help: ${help.stdout.trim()}`)
    const bad = await run(process.execPath, [file, 'ws://127.0.0.1:1', '{'], {
      cwd: dir,
      timeout: 20_000,
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e) => e,
    )
    if (bad.code !== 2 || bad.stderr.trim().split('\n').length !== 1)
      failures.push(`${name} with a bad login frame: exit ${bad.code}, stderr ${JSON.stringify(bad.stderr)}`)
    else details.push(`${name} ws://… '{': ${bad.stderr.trim()}`)
  }
  return { summary: `${commands.map(([n]) => n).join(', ')} run from the tarball`, details, failures }
}

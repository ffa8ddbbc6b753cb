// Check 6: the README's Node snippet runs as written, against the packed tarball installed the way
// the README says (`npm install ./mpbus-<version>.tgz`), with nothing of the repository on the path.
// The tarball is unpacked into a scratch project's node_modules (offline), next to a link to `ws`;
// one line is appended after the snippet so the script sees a bus and ends: `bus.close()`.

import { execFile } from 'node:child_process'
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The first ```js block after the line that introduces Node in the README's quick start. */
export function nodeSnippet(readme) {
  const at = readme.indexOf('Node brings `ws`')
  const block = at < 0 ? null : /```js\n([\s\S]*?)```/.exec(readme.slice(at))
  return block && block[1]
}

export async function checkReadmeNode({ root, tmp, tarball }) {
  const snippet = nodeSnippet(readFileSync(join(root, 'README.md'), 'utf8'))
  if (!snippet) return { failures: ['no Node snippet after "Node brings `ws`" in README.md'] }
  const dir = join(tmp, 'readme-node')
  const mpbus = join(dir, 'node_modules', 'mpbus')
  mkdirSync(mpbus, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', mpbus, '--strip-components=1'])
  symlinkSync(join(root, 'node_modules', 'ws'), join(dir, 'node_modules', 'ws'), 'dir')
  writeFileSync(join(dir, 'package.json'), '{"type":"module"}')
  const probe = "\nconsole.log('bus state:', bus.state)\nbus.close()\n"
  writeFileSync(join(dir, 'snippet.mjs'), snippet + probe)
  try {
    const { stdout } = await run(process.execPath, ['snippet.mjs'], { cwd: dir, timeout: 20_000 })
    return { summary: `ran it: ${stdout.trim()}`, details: snippet.trim().split('\n') }
  } catch (e) {
    return { failures: [`the snippet failed: ${e.stderr || e.message}`] }
  }
}

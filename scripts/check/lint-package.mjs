// Check 4: the published tarball lints clean. publint (strict: warnings count as errors) checks the
// package.json fields against the files; arethetypeswrong checks that every entry point's types
// resolve and match its JavaScript under the `node16` profile, which covers node16 from CJS,
// node16 from ESM and bundler. That profile leaves out node10 resolution (TypeScript's
// `moduleResolution: node`, which ignores `exports`): subpaths like mpbus/testing cannot resolve
// there without typesVersions, and node10 is deprecated in TypeScript 5.
// No rule is ignored.

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'

const run = promisify(execFile)

export async function checkLint({ root, tarball }) {
  const failures = []
  const details = []
  const notes = []

  const bytes = readFileSync(tarball)
  const { messages, pkg } = await publint({
    pack: { tarball: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) },
    strict: true,
  })
  for (const m of messages) {
    const text = `publint ${m.type} ${m.code}: ${formatMessage(m, pkg, { color: false }) || ''}`
    if (m.type === 'error') failures.push(text)
    else notes.push(text)
  }
  const errors = messages.filter((m) => m.type === 'error').length
  details.push(`publint --strict: ${errors} error(s), ${messages.length - errors} suggestion(s)`)

  // --no-definitely-typed: mpbus ships its own types, and looking up @types/mpbus would need the network.
  const attw = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'attw.cmd' : 'attw')
  const args = [tarball, '--profile', 'node16', '--no-definitely-typed', '--format', 'json']
  let out
  let exitCode = 0
  try {
    ;({ stdout: out } = await run(attw, args, { cwd: root, timeout: 60_000, maxBuffer: 64 << 20 }))
  } catch (error) {
    out = error.stdout
    exitCode = error.code
    if (!out)
      return { failures: [...failures, `attw did not run: ${error.stderr || error.message}`], details, notes }
  }
  const report = JSON.parse(out)
  const entrypoints = Object.keys(report.analysis.entrypoints)
  const problems = Object.values(report.problems || {})
    .flat()
    .filter((p) => p.resolutionKind !== 'node10')
  for (const p of problems) {
    failures.push(
      `attw ${p.kind} at ${p.entrypoint || '?'} (${p.resolutionKind || 'all'}): ${JSON.stringify(p)}`,
    )
  }
  if (exitCode && !problems.length) failures.push(`attw exited with ${exitCode}`)
  details.push(
    `attw --profile node16: ${problems.length} problem(s) in ${entrypoints.join(', ')} (node16-cjs, node16-esm, bundler)`,
  )
  return {
    summary: failures.length ? undefined : 'publint and arethetypeswrong report no errors',
    details,
    notes,
    failures,
  }
}

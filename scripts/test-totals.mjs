// The test suite's totals as one plain line ("tests: N passed, N failed, N skipped") from vitest's
// JSON report. A file that did not load (its suite never ran) counts as failed, in the same line,
// so the line and the exit code never disagree. package.json's test:unit also passes on vitest's
// own exit code (unhandled errors).
import { existsSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

export function totals(file = '.tmp/vitest.json') {
  if (!existsSync(file)) return { ok: false, line: 'tests: no report (vitest did not run to the end)' }
  const report = JSON.parse(readFileSync(file, 'utf8'))
  const skipped = report.numPendingTests + report.numTodoTests
  const unloaded = (report.testResults || []).filter(
    (result) => result.status === 'failed' && !result.assertionResults?.some((t) => t.status === 'failed'),
  ).length
  const failed = report.numFailedTests + unloaded
  const files = unloaded ? ` (${unloaded} of them a file that did not load)` : ''
  return {
    ok: failed === 0 && report.success !== false,
    line: `tests: ${report.numPassedTests} passed, ${failed} failed${files}, ${skipped} skipped`,
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const result = totals()
  console.log(result.line)
  process.exit(result.ok ? 0 : 1)
}

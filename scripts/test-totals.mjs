// Prints the test suite's totals as one plain line ("tests: N passed, N failed, N skipped")
// from vitest's JSON report, so CI logs end with a count any reader can parse. It fails on failed
// tests and on failed files (a suite that did not load); package.json's test:unit also passes on
// vitest's own exit code (unhandled errors).
import { readFileSync } from 'node:fs'

const report = JSON.parse(readFileSync('.tmp/vitest.json', 'utf8'))
const skipped = report.numPendingTests + report.numTodoTests
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`)
const failedFiles = report.numFailedTestSuites || 0
if (failedFiles) console.log(`test files failed: ${failedFiles}`)
process.exit(report.numFailedTests || failedFiles || report.success === false ? 1 : 0)

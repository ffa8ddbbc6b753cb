// Prints the test suite's totals as one plain line ("tests: N passed, N failed, N skipped")
// from vitest's JSON report, so CI logs end with a count any reader can parse.
import { readFileSync } from 'node:fs'

const report = JSON.parse(readFileSync('.tmp/vitest.json', 'utf8'))
const skipped = report.numPendingTests + report.numTodoTests
console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`)
process.exit(report.numFailedTests ? 1 : 0)

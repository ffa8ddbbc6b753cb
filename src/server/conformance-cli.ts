#!/usr/bin/env node
// `npx mpbus-conformance ws://host:port/path ['<login frame JSON>'] [--echo op,reply]`: checks a
// server against docs/protocol.md (login, heartbeat, ack, resume, duplicate window, login first)
// and exits 1 if any check fails, 2 on bad input. The login frame defaults to
// {"Operator":"userLogin","userOpenId":"mpbus-conformance"}.
import { type ConformanceOptions, checkConformance } from './conformance'

const USAGE = "usage: mpbus-conformance ws://host:port/path ['<login frame JSON>'] [--echo op,reply]"

/** Ends the process with one line on stderr: bad input is a sentence, not a stack. */
function fail(message: string, code: number): never {
  console.error(`mpbus-conformance: ${message}`)
  process.exit(code)
}

const args = process.argv.slice(2)
if (args.indexOf('--help') >= 0 || args.indexOf('-h') >= 0) {
  console.log(USAGE)
  process.exit(0)
}
const options: ConformanceOptions = {}
const at = args.indexOf('--echo')
if (at >= 0) {
  const [op, reply] = (args.splice(at, 2)[1] || '').split(',')
  if (!op || !reply) fail(`--echo takes op,reply (the operator, and its handler's reply)\n${USAGE}`, 2)
  options.echo = { op, reply }
}
const [url, login, extra] = args
if (!url || !/^wss?:\/\//.test(url) || extra !== undefined)
  fail(`expected a ws:// or wss:// URL\n${USAGE}`, 2)
if (login !== undefined) {
  let frame: unknown
  try {
    frame = JSON.parse(login)
  } catch (e) {
    fail(`the login frame is not JSON (${(e as Error).message}): ${login}`, 2)
  }
  if (!frame || typeof frame !== 'object' || Array.isArray(frame))
    fail(`the login frame must be a JSON object: ${login}`, 2)
  options.login = frame as Record<string, unknown>
}
checkConformance(url, options).then(
  (results) => {
    for (const r of results)
      console.log(`${r.skipped ? 'SKIP' : r.ok ? 'PASS' : 'FAIL'} ${r.check}: ${r.detail}`)
    process.exit(results.every((r) => r.ok || r.skipped) && results.length === 6 ? 0 : 1)
  },
  (error) => fail(error instanceof Error ? error.message : String(error), 1),
)

// No module of src/ over LIMIT lines, except those listed below with the reason (docs/architecture.md).
// A listed file with a `max` may not grow past it either: growing it is a decision, not a drift.
// Run by `npm run deps` (after dependency-cruiser, which checks the imports).

import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const LIMIT = 250

/** @type {Record<string, { max?: number, why: string }>} */
const ALLOWED = {
  'src/transport/index.ts': {
    max: 490,
    why: 'one state machine: every state shares the one timer, the socket and the event queue through set()',
  },
  'src/outbox/store.ts': {
    max: 450,
    why: 'load and commit share the mark, the namespace, the retry timer and the held errors; split apart they would pass that state as an object whose property names survive minification, past the size budget',
  },
  'src/bus/options.ts': {
    max: 290,
    why: 'every option declared once with its documentation and its default, on purpose in one file',
  },
  // Being split into index, connection and fanout (the server's restructuring); tightened then.
  'src/server/index.ts': { why: 'being split (server restructuring)' },
  'src/server/redis-engine.ts': { why: 'being split (server restructuring)' },
  // The test kit: faithful fakes of whole platform APIs, and the test server being rebuilt on mpbus/server.
  'src/testing/runtime-core.ts': { why: 'test kit: the common core of the platform fakes' },
  'src/testing/my-runtime.ts': { why: 'test kit: the Alipay API fake' },
  'src/testing/test-server.ts': { why: 'test kit: being rebuilt on mpbus/server (server restructuring)' },
}

function listTs(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listTs(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

const root = process.cwd()
const failures = []
for (const file of listTs(join(root, 'src'))) {
  const path = relative(root, file).split('\\').join('/')
  const lines = readFileSync(file, 'utf8').split('\n').length - 1
  const allowed = ALLOWED[path]
  const max = allowed ? allowed.max : LIMIT
  if (max !== undefined && lines > max)
    failures.push(`${path}: ${lines} lines, over ${max}${allowed ? ` (allowed: ${allowed.why})` : ''}`)
}
for (const path of Object.keys(ALLOWED))
  if (!listTs(join(root, 'src')).some((f) => relative(root, f).split('\\').join('/') === path))
    failures.push(`${path}: listed in ALLOWED but gone: take it off the list`)
if (failures.length) {
  console.error(`Files over ${LIMIT} lines (scripts/check/file-lines.mjs, docs/architecture.md):`)
  for (const f of failures) console.error(`  ${f}`)
  process.exit(1)
}
console.log(`file lines: every module of src/ within ${LIMIT} lines or its listed allowance`)

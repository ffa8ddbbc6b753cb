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
    max: 475,
    why: 'load, commit, sweep and adoption share the mark, the namespace, the retry timer, the scratch record and the held errors; split apart they would pass that state as an object whose property names survive minification, past the size budget',
  },
  'src/bus/index.ts': {
    max: 315,
    why: 'createBus: the one closure that joins the parts and owns what they share (the derived state, the link, closed); every part it wires is a module of its own',
  },
  // The test kit: faithful fakes of whole platform APIs, and the test server's hooks.
  'src/testing/runtime-core.ts': { why: 'test kit: the common core of the platform fakes' },
  'src/testing/my-runtime.ts': { why: 'test kit: the Alipay API fake' },
  'src/testing/test-server.ts': {
    max: 420,
    why: "test kit: recording, fault hooks and routes around mpbus/server's connection handling, each an option some test uses",
  },
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

// Runs once before every test file (vitest's globalSetup): the same set-up as `npm test`'s first
// step (scripts/setup.mjs), without installing system packages, so `npx vitest run <file>` finds
// the H5 runtimes installed and knows whether Chromium and redis-server are there.
import type { TestProject } from 'vitest/node'
import { prepare } from '../scripts/setup.mjs'

declare module 'vitest' {
  export interface ProvidedContext {
    /** The Chromium binary for test/browser, or null: those tests are skipped. */
    chromium: string | null
    /** The redis-server binary for the Redis engine's tests, or null: those tests are skipped. */
    redisServer: string | null
  }
}

export default function setup(project: TestProject) {
  const quiet = process.env.MPBUS_SETUP_REPORTED === '1'
  const log = console.log
  if (quiet) console.log = () => {}
  try {
    const found = prepare({ install: false })
    project.provide('chromium', found.chromium)
    project.provide('redisServer', found.redisServer)
  } finally {
    console.log = log
  }
}

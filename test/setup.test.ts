// The test set-up (scripts/setup.mjs) and the verdict line (scripts/test-totals.mjs): what a fresh
// machine gets from `npm test` before and after the suite.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { find, installH5, prepare } from '../scripts/setup.mjs'
import { totals } from '../scripts/test-totals.mjs'

const saved = { ...process.env }
afterEach(() => {
  process.env = { ...saved }
  vi.restoreAllMocks()
})

function printed() {
  const lines: string[] = []
  vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line))
  return lines
}

describe('scripts/setup.mjs', () => {
  it('the H5 runtimes are installed once: a second call finds them current and does nothing', () => {
    installH5()
    expect(installH5()).toBe(false)
    expect(fs.existsSync(path.join(__dirname, 'h5/node_modules/@dcloudio/uni-h5/dist/uni-h5.es.js'))).toBe(
      true,
    )
  })

  it('a tool comes from its variable, else the PATH; a variable pointing nowhere is missing', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpbus-setup-'))
    const fake = path.join(dir, 'redis-server')
    fs.writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 })
    process.env.PATH = dir
    delete process.env.REDIS_SERVER
    delete process.env.CHROMIUM_PATH
    expect(find('redisServer')).toBe(fake)
    expect(find('chromium')).toBe(null)
    process.env.REDIS_SERVER = path.join(dir, 'nowhere')
    expect(find('redisServer')).toBe(null)
    fs.rmSync(dir, { recursive: true })
  })

  it('what is missing is one line naming the command, its tests skipped; with CI=true it fails', () => {
    process.env.PATH = '/nonexistent'
    delete process.env.CHROMIUM_PATH
    delete process.env.REDIS_SERVER
    delete process.env.CI
    const lines = printed()
    expect(prepare({ install: false })).toEqual({ chromium: null, redisServer: null })
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatch(
      /^setup: no chromium: the browser tests are skipped; run `(sudo )?apt-get install chromium`/,
    )
    expect(lines[1]).toMatch(
      /^setup: no redis-server: the Redis engine tests are skipped; run `(sudo )?apt-get install redis-server`/,
    )

    process.env.CI = 'true'
    expect(() => prepare({ install: false })).toThrow(/CI=true/)
  })
})

describe('scripts/test-totals.mjs', () => {
  function report(json: unknown) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mpbus-totals-'))
    const file = path.join(dir, 'vitest.json')
    fs.writeFileSync(file, JSON.stringify(json))
    return file
  }

  it('a file that did not load counts as failed in the same line, so the line and the verdict agree', () => {
    const file = report({
      numPassedTests: 543,
      numFailedTests: 0,
      numPendingTests: 16,
      numTodoTests: 0,
      success: false,
      testResults: [
        { status: 'failed', assertionResults: [] },
        { status: 'passed', assertionResults: [{ status: 'passed' }] },
      ],
    })
    expect(totals(file)).toEqual({
      ok: false,
      line: 'tests: 543 passed, 1 failed (1 of them a file that did not load), 16 skipped',
    })
  })

  it('skipped tests pass and are counted', () => {
    const file = report({
      numPassedTests: 10,
      numFailedTests: 0,
      numPendingTests: 3,
      numTodoTests: 0,
      success: true,
      testResults: [],
    })
    expect(totals(file)).toEqual({ ok: true, line: 'tests: 10 passed, 0 failed, 3 skipped' })
  })
})

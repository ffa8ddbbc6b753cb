// The conformance check against mpbus/server and the test kit's server, which is mpbus/server's
// connection handling with recording hooks: both pass every check; the kit's server serves a
// client without a login by default (so it fails "login first" then), and refuses one with
// `anonymous: false`.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { checkConformance, createServer, type MpbusServer } from '../src/server/index'
import { createTestServer } from '../src/testing/index'

const run = promisify(execFile)
const closers: Array<() => unknown> = []
afterEach(async () => {
  while (closers.length) await closers.pop()!()
})

async function mpbusServer() {
  const server: MpbusServer = await createServer({
    authenticate: (f) => (typeof f.userOpenId === 'string' ? f.userOpenId : null),
  })
  closers.push(() => server.close())
  return `ws://127.0.0.1:${server.port}`
}

describe('conformance check', () => {
  it('mpbus/server passes every check', async () => {
    const results = await checkConformance(await mpbusServer(), { timeout: 500 })
    expect(results.map((r) => [r.check, r.ok])).toEqual([
      ['login', true],
      ['heartbeat', true],
      ['ack', true],
      ['resume', true],
      ['duplicate window', true],
      ['login first', true],
    ])
  })

  it('the test kit’s server passes every check with anonymous: false; by default it serves a client without a login', async () => {
    const strict = await createTestServer({ anonymous: false })
    closers.push(() => strict.close())
    const results = await checkConformance(strict.url, { timeout: 300 })
    expect(results.map((r) => [r.check, r.ok])).toEqual([
      ['login', true],
      ['heartbeat', true],
      ['ack', true],
      ['resume', true],
      ['duplicate window', true],
      ['login first', true],
    ])
    const lenient = await createTestServer()
    closers.push(() => lenient.close())
    const failed = (await checkConformance(lenient.url, { timeout: 300 })).filter((r) => !r.ok)
    expect(failed.map((r) => r.check)).toEqual(['login first'])
  })

  it('a refused login stops there, and the command exits 1', async () => {
    const url = await mpbusServer()
    const results = await checkConformance(url, { login: { Operator: 'userLogin' }, timeout: 300 })
    expect(results.map((r) => [r.check, r.ok])).toEqual([['login', false]])
    const failing = run('npx', ['tsx', 'scripts/conformance.ts', url, '{"Operator":"userLogin"}'])
    await expect(failing).rejects.toMatchObject({ code: 1 })
    const { stdout } = await run('npx', ['tsx', 'scripts/conformance.ts', url])
    expect(stdout.split('\n').filter((l) => l.startsWith('PASS'))).toHaveLength(6)
  }, 30_000)
})

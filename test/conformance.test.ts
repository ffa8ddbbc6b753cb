// The conformance check against the two servers of this repository: mpbus/server passes every
// check; the test kit's server (the protocol without positions) passes login, heartbeat, ack and the
// duplicate window, and fails resume and login first, as it should.
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

  it('the test kit’s server: login, heartbeat, ack and the window pass; resume and login first fail', async () => {
    const server = await createTestServer()
    closers.push(() => server.close())
    const results = await checkConformance(`ws://127.0.0.1:${server.port}`, { timeout: 300 })
    const failed = results.filter((r) => !r.ok).map((r) => r.check)
    expect(failed.sort()).toEqual(['login first', 'resume'])
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

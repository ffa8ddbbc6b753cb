// Each check of the conformance check fails against a server that lacks exactly that part: a
// small protocol server here, correct by default, broken one part at a time. Then the command
// of the package: a server that is down is named, bad input is one line.
import { execFile } from 'node:child_process'
import type { AddressInfo } from 'node:net'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import { type ConformanceResult, checkConformance } from '../src/server/conformance'

const run = promisify(execFile)
const closers: Array<() => unknown> = []
afterEach(async () => {
  while (closers.length) await closers.pop()!()
})

type Lack = 'login' | 'heartbeat' | 'ack' | 'resume' | 'duplicate window' | 'login first'

/** A server speaking docs/protocol.md, except for the part it `lacks`. `Echo` replies `Echoed`. */
async function server(lacks?: Lack): Promise<string> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((resolve) => wss.once('listening', resolve))
  closers.push(() => new Promise((resolve) => wss.close(resolve)))
  const handled = new Set<string>()
  wss.on('connection', (ws) => {
    let user: string | undefined
    const send = (frame: object) => ws.send(JSON.stringify(frame))
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      const op = frame.Operator
      if (!user && op === 'userLogin') {
        if (lacks === 'login') return send({ Operator: 'LoginError' })
        user = frame.userOpenId
        return send(lacks === 'resume' ? { Operator: 'LoginOK' } : { Operator: 'LoginOK', Streams: {} })
      }
      if (!user && lacks !== 'login first') return ws.close(1008, 'login first')
      if (op === 'Heart') return lacks === 'heartbeat' ? undefined : send({ Operator: 'HeartOK' })
      const key = `${user} ${frame.MsgId}`
      if (lacks === 'duplicate window' || !handled.has(key)) {
        handled.add(key)
        if (op === 'Echo') send({ Operator: 'Echoed' })
      }
      if (lacks !== 'ack') send({ Operator: 'Ack', MsgId: frame.MsgId })
    })
  })
  return `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`
}

const echo = { op: 'Echo', reply: 'Echoed' }
const verdicts = (results: ConformanceResult[]) => results.map((r) => [r.check, r.skipped ? 'skipped' : r.ok])

describe('conformance check: every check can fail', () => {
  it('a server with every part passes every check', async () => {
    const results = await checkConformance(await server(), { echo, timeout: 300 })
    expect(verdicts(results)).toEqual([
      ['login', true],
      ['heartbeat', true],
      ['ack', true],
      ['resume', true],
      ['duplicate window', true],
      ['login first', true],
    ])
  })

  for (const lack of ['heartbeat', 'ack', 'resume', 'duplicate window', 'login first'] as const)
    it(`a server without ${lack} fails that check alone`, async () => {
      const results = await checkConformance(await server(lack), { echo, timeout: 300 })
      const failed = results.filter((r) => !r.ok).map((r) => r.check)
      // Without acks, the duplicate window cannot be seen either.
      expect(failed).toEqual(lack === 'ack' ? ['ack', 'duplicate window'] : [lack])
    })

  it('a server that refuses the login fails there and stops', async () => {
    const results = await checkConformance(await server('login'), { echo, timeout: 300 })
    expect(verdicts(results)).toEqual([['login', false]])
  })

  it('without echo, the duplicate window is skipped, never passed', async () => {
    const results = await checkConformance(await server('duplicate window'), { timeout: 300 })
    expect(results.find((r) => r.check === 'duplicate window')).toMatchObject({ ok: false, skipped: true })
  })

  it('a server that is down is named as a connection error', async () => {
    const url = await server()
    await closers.pop()!()
    const results = await checkConformance(url, { timeout: 300 })
    expect(results).toEqual([
      { check: 'login', ok: false, detail: expect.stringMatching(/^cannot connect to ws:.*ECONNREFUSED/) },
    ])
  })
})

describe('the mpbus-conformance command', () => {
  const cli = (...args: string[]) => run('npx', ['tsx', 'src/server/conformance-cli.ts', ...args])

  it('bad input is one line and exit code 2', async () => {
    for (const args of [
      ['ws://127.0.0.1:1', '{"Operator":'],
      ['ws://127.0.0.1:1', '[1]'],
      ['localhost:1'],
      [],
    ]) {
      const failed = await cli(...args).then(
        () => undefined,
        (e) => e,
      )
      expect(failed, args.join(' ')).toMatchObject({ code: 2 })
      expect(failed.stderr).toMatch(/^mpbus-conformance: /)
      expect(failed.stderr).not.toMatch(/\n\s+at /)
    }
  }, 30_000)

  it('passes a whole server with --echo (exit 0), and names a server that is down (exit 1)', async () => {
    const url = await server()
    const { stdout } = await cli(url, '{"Operator":"userLogin","userOpenId":"u"}', '--echo', 'Echo,Echoed')
    expect(stdout.split('\n').filter((l) => l.startsWith('PASS'))).toHaveLength(6)
    await closers.pop()!()
    await expect(cli(url)).rejects.toMatchObject({ code: 1, stdout: expect.stringContaining('ECONNREFUSED') })
  }, 30_000)
})

// mpbus/server as a first-time user meets it: an unreachable Redis fails the start at once and
// says why; a message no handler takes, or one the app's handler refuses, is refused to the
// client (docs/protocol.md, Refusals) rather than acknowledged and lost.

import type { AddressInfo } from 'node:net'
import { createServer as createTcpServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { MpbusError } from '../src/errors'
import { createServer, type MpbusServer, redisEngine, refuse, type ServerOptions } from '../src/server/index'
import { authenticate, bus, fast, raw, runtime } from './helpers/e2e'
import { until } from './helpers/time'

const servers: MpbusServer[] = []
afterEach(async () => {
  while (servers.length) await servers.pop()!.close()
})

/** A loopback port nothing listens on: taken from the system, then let go. */
async function deadPort(): Promise<number> {
  const tcp = createTcpServer()
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve))
  const { port } = tcp.address() as AddressInfo
  await new Promise((resolve) => tcp.close(resolve))
  return port
}

describe('mpbus/server: an unreachable Redis', () => {
  it('createServer rejects at the first connection error, with it as the cause', async () => {
    const port = await deadPort()
    // No timeout could end the wait: only the connection error can.
    const engine = redisEngine({ url: `redis://127.0.0.1:${port}`, connectTimeout: 2147483647 })
    const started = createServer({ authenticate, engine })
    await expect(started).rejects.toMatchObject({
      code: 'ENGINE_DOWN',
      message: expect.stringContaining('ECONNREFUSED'),
      cause: expect.objectContaining({ code: 'ECONNREFUSED' }),
    })
    await engine.close()
  })
})

describe('mpbus/server: refusals', () => {
  /** A bus on the wx runtime against `server`, with acks, logged in as alice. */
  async function started(options: Partial<ServerOptions>) {
    const errors: [string, string | undefined][] = []
    const server = await createServer({
      authenticate,
      ...options,
      onError: (e, user) => void errors.push([`${(e as MpbusError).code || 'Error'}: ${e.message}`, user]),
    })
    servers.push(server)
    const b = bus({
      url: `ws://127.0.0.1:${server.port}`,
      platform: runtime(),
      login: () => ({ op: 'userLogin', payload: { openId: 'alice' } }),
      ready: { ok: 'LoginOK', fail: ['LoginError'] },
      ack: true,
      ...fast,
    })
    const heard: MpbusError[] = []
    b.events.on('error', (e) => heard.push(e))
    return { server, b, errors, heard }
  }

  it('a message with no handler: send() rejects NO_HANDLER, not resent, and onError is told', async () => {
    const seen: unknown[] = []
    const { b, errors, heard } = await started({ handlers: { Note: (f) => void seen.push(f.text) } })
    await expect(b.send('Chat', { text: 'hi' })).rejects.toMatchObject({
      code: 'NO_HANDLER',
      message: 'NO_HANDLER: no handler for Chat',
    })
    await b.send('Note', { text: 'after' })
    expect(b.queued).toBe(0)
    expect(seen).toEqual(['after'])
    expect(errors).toEqual([['NO_HANDLER: no handler for Chat', 'alice']])
    expect(heard.map((e) => e.code)).toEqual(['NO_HANDLER'])
  })

  it("a handler's refusal: send() rejects with the server's code and reason; a resend is refused again", async () => {
    let runs = 0
    const { server, b } = await started({
      handlers: {
        Note: (f) => {
          runs++
          if (!f.text) throw refuse('INVALID', 'text is empty')
        },
      },
    })
    await expect(b.send('Note', { text: '' })).rejects.toMatchObject({
      code: 'REFUSED',
      message: 'INVALID: text is empty',
    })
    expect(b.queued).toBe(0)
    // The same id again (a refusal lost with its link): handled and refused again, not acked as done.
    const c = await raw(server.port)
    c.send({ Operator: 'userLogin', openId: 'bob' })
    c.send({ Operator: 'Note', text: '', MsgId: 'x' })
    c.send({ Operator: 'Note', text: '', MsgId: 'x' })
    await until(() => c.got.length === 3, 'two answers')
    expect(c.got.slice(1)).toEqual([
      { Operator: 'Ack', MsgId: 'x', refused: 'INVALID', reason: 'text is empty' },
      { Operator: 'Ack', MsgId: 'x', refused: 'INVALID', reason: 'text is empty' },
    ])
    expect(runs).toBe(3)
  })
})

describe('mpbus/server and a bus without login', () => {
  it('the close before the login is an error event naming 1008 and its reason', async () => {
    const server = await createServer({ authenticate })
    servers.push(server)
    const b = bus({ url: `ws://127.0.0.1:${server.port}`, platform: runtime(), ...fast })
    const heard: MpbusError[] = []
    b.events.on('error', (e) => heard.push(e))
    b.send('Chat', {}).catch(() => {})
    await until(() => heard.length > 0, 'an error')
    expect(heard[0]).toMatchObject({
      code: 'LOGIN_ERROR',
      message: "closed before the login's answer: 1008 login first",
    })
  })
})

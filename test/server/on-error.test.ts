// What `onError` receives through the public API: an MpbusError whose code says what happened,
// with the user when the connection has one, like the client's `error` event.
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { MpbusError } from '../../src/errors'
import { createServer, type MpbusServer } from '../../src/server/index'
import { until } from '../testing/util'

const servers: MpbusServer[] = []
const sockets: WebSocket[] = []
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  while (servers.length) await servers.pop()!.close()
})

async function client(port: number) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`)
  sockets.push(ws)
  const closed: { code?: number } = {}
  ws.on('close', (code) => {
    closed.code = code
  })
  ws.on('error', () => {})
  await new Promise((resolve) => ws.once('open', resolve))
  return { closed, send: (f: object | string) => ws.send(typeof f === 'string' ? f : JSON.stringify(f)) }
}

describe('mpbus/server onError', () => {
  it('gets MpbusError codes: LOGIN_REQUIRED, BAD_FRAME, HANDLER_ERROR (with its cause and user)', async () => {
    const errors: Array<[unknown, string | undefined]> = []
    const cause = new Error('disk full')
    const server = await createServer({
      authenticate: (f) => (typeof f.openId === 'string' ? f.openId : null),
      handlers: {
        Save: () => {
          throw cause
        },
      },
      onError: (error, user) => void errors.push([error, user]),
    })
    servers.push(server)
    const early = await client(server.port)
    early.send({ Operator: 'Chat', MsgId: 'm0' })
    const garbled = await client(server.port)
    garbled.send('not json')
    await until(() => early.closed.code && garbled.closed.code, 'both refused')
    const alice = await client(server.port)
    alice.send({ Operator: 'userLogin', openId: 'alice' })
    alice.send({ Operator: 'Save', MsgId: 'm1' })
    await until(() => errors.length === 3, 'three reports')
    expect(errors.every(([e]) => e instanceof MpbusError)).toBe(true)
    expect(errors.map(([e, user]) => [(e as MpbusError).code, user])).toEqual([
      ['LOGIN_REQUIRED', undefined],
      ['BAD_FRAME', undefined],
      ['HANDLER_ERROR', 'alice'],
    ])
    expect(errors[2]![0]).toMatchObject({ message: 'disk full', cause })
  })

  it('a push the engine refuses rejects with ENGINE_DOWN, the engine error as its cause', async () => {
    const errors: unknown[] = []
    const cause = new Error('engine down')
    const { memoryEngine } = await import('../../src/server/index')
    const server = await createServer({
      authenticate: () => null,
      engine: { ...memoryEngine(), append: () => Promise.reject(cause) },
      onError: (e) => void errors.push(e),
    })
    servers.push(server)
    const rejected = await server.push('alice', 'Quote').catch((e) => e)
    expect(rejected).toBeInstanceOf(MpbusError)
    expect(rejected).toMatchObject({ code: 'ENGINE_DOWN', message: 'engine down', cause })
    expect(errors).toEqual([rejected])
  })
})

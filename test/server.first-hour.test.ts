// mpbus/server as a first-time user meets it: an unreachable Redis fails the start at once and
// says why; a message no handler takes, or one the app's handler refuses, is refused to the
// client (docs/protocol.md, Refusals) rather than acknowledged and lost.

import type { AddressInfo } from 'node:net'
import { createServer as createTcpServer } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type MpbusServer, redisEngine, type ServerOptions } from '../src/server/index'

const servers: MpbusServer[] = []
afterEach(async () => {
  while (servers.length) await servers.pop()!.close()
})

const authenticate: ServerOptions['authenticate'] = (login) =>
  typeof login.openId === 'string' ? login.openId : null

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

import { createServer } from 'node:net'
import { describe, expect, it } from 'vitest'
import { freePort } from '../../src/testing/index'

describe('freePort', () => {
  // A server restarted on its port (a demo node, a Redis master) must find it free: a port from the
  // OS's ephemeral range may meanwhile be the local end of any outgoing connection.
  it('gives a free port below the ephemeral ranges (32768 on Linux), which a listener can take', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort()))
    for (const port of ports) expect(port).toBeGreaterThanOrEqual(1024)
    for (const port of ports) expect(port).toBeLessThan(32768)
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(ports[0], '127.0.0.1', resolve))
    await new Promise((resolve) => server.close(resolve))
  })
})

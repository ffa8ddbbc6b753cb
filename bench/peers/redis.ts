// A real redis-server for socket.io's Redis Streams adapter: on a free loopback port, in a temporary
// directory, with no persistence (no RDB snapshots, no AOF); killed by `stop()`.
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createClient } from 'redis'
import { sleep } from './common'

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

export async function startRedis(): Promise<{ url: string; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'mpbus-bench-redis-'))
  const port = await freePort()
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  )
  const stop = () => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
    process.off('exit', stop)
  }
  // Killed with this process too, whatever ends it.
  process.on('exit', stop)
  for (let i = 0; i < 100; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => resolve(socket.end() && true))
      socket.once('error', () => resolve(false))
    })
    if (up) return { url: `redis://127.0.0.1:${port}`, stop }
    await sleep(50)
  }
  stop()
  throw new Error('redis-server did not start (is it installed? apt-get install redis-server)')
}

/** Commands a Redis server has processed so far (INFO stats), through a connection of its own. */
export async function commandCounter(url: string) {
  const client = createClient({ url })
  await client.connect()
  return {
    async count(): Promise<number> {
      const info = await client.info('stats')
      return Number(/total_commands_processed:(\d+)/.exec(info)![1])
    },
    close: () => client.quit().catch(() => {}),
  }
}

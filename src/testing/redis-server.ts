/**
 * A real `redis-server` for tests and the demo (Debian's package; `.ci/run` installs it): on a
 * free loopback port, in a temporary directory, without persistence unless asked. `kill()`
 * (SIGKILL) and `restart()` (same port, same directory) make the faults a Redis engine must survive.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RedisServerOptions {
  /** Redis's `appendonly` persistence: `'no'`, or on with `appendfsync everysec` or `always`. @default 'no' */
  appendonly?: 'no' | 'everysec' | 'always'
  /** The binary. @default process.env.REDIS_SERVER or 'redis-server' */
  command?: string
  /** ms to wait for "Ready to accept connections". @default 10000 */
  timeout?: number
  /** More `redis-server` arguments (`startRedisCluster` passes the cluster mode's). @default none */
  args?: string[]
  /** The port. @default a free loopback port */
  port?: number
}

export interface RedisServer {
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
  /** Its working directory (the append-only file lives here). */
  readonly dir: string
  /** Stops it (SIGTERM) and removes its directory. */
  stop(): Promise<void>
  /** SIGKILL: no shutdown, no final write, like a crash. The directory stays for `restart()`. */
  kill(): Promise<void>
  /** SIGSTOP: the process keeps its sockets but answers nothing, like a host that hangs; `resume()` (SIGCONT) goes on. */
  pause(): void
  resume(): void
  /** Starts it again on the same port and directory (stopping it first if it runs): with `appendonly` it reloads, without it is empty. */
  restart(): Promise<void>
}

/** Listens on `port` (0: any the OS picks) and resolves with the port it got once it is free again; rejects if taken. */
function probe(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(port, '127.0.0.1', () => {
      const got = (server.address() as { port: number }).port
      server.close(() => resolve(got))
    })
  })
}

/**
 * A free loopback port that a process can listen on again after a restart. It is taken below the
 * ports the OS hands to outgoing connections (Linux's default ephemeral range starts at 32768,
 * macOS's and Windows's at 49152): a port from that range, free while its server is down, may be
 * taken meanwhile by any client socket's local end, and the restart then fails with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const got = await probe(port).catch(() => 0)
    if (got) return got
  }
  return probe(0)
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const command = options.command || process.env.REDIS_SERVER || 'redis-server'
  const appendonly = options.appendonly || 'no'
  const timeout = options.timeout || 10_000
  const dir = mkdtempSync(join(tmpdir(), 'mpbus-redis-'))
  const port = options.port || (await freePort())
  let child: ChildProcess | undefined

  function launch(): Promise<void> {
    mkdirSync(dir, { recursive: true })
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--daemonize',
      'no',
    ]
    args.push('--appendonly', appendonly === 'no' ? 'no' : 'yes')
    if (appendonly !== 'no') args.push('--appendfsync', appendonly)
    if (options.args) args.push(...options.args)
    const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = proc
    return new Promise((resolve, reject) => {
      let output = ''
      const timer = setTimeout(
        () => fail(new Error(`redis-server not ready in ${timeout} ms:\n${output}`)),
        timeout,
      )
      const fail = (error: Error) => {
        clearTimeout(timer)
        proc.kill('SIGKILL')
        reject(error)
      }
      proc.once('error', (e) =>
        fail(new Error(`${command} could not start (apt-get install redis-server): ${e.message}`)),
      )
      let ready = false
      proc.once('exit', (code) => {
        if (!ready) fail(new Error(`redis-server exited with ${code}:\n${output}`))
      })
      proc.stdout!.on('data', (chunk: Buffer) => {
        output += chunk
        if (/Ready to accept connections/.test(output)) {
          clearTimeout(timer)
          ready = true
          resolve()
        }
      })
      proc.stderr!.on('data', (chunk: Buffer) => {
        output += chunk
      })
    })
  }

  function end(signal: NodeJS.Signals): Promise<void> {
    const proc = child
    child = undefined
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve()
    return new Promise((resolve) => {
      proc.once('exit', () => resolve())
      proc.kill(signal)
      // A paused process ends only once it runs again (SIGKILL ends it either way).
      proc.kill('SIGCONT')
    })
  }

  await launch()
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    async stop() {
      await end('SIGTERM')
      rmSync(dir, { recursive: true, force: true })
    },
    kill: () => end('SIGKILL'),
    pause: () => void (child && child.kill('SIGSTOP')),
    resume: () => void (child && child.kill('SIGCONT')),
    async restart() {
      await end('SIGTERM')
      await launch()
    },
  }
}

/**
 * A real Redis Cluster for tests and the demo: `masters` instances of Debian's `redis-server` in
 * cluster mode on free loopback ports, joined by `redis-cli --cluster create` with no replicas, so
 * that `kill(i)` takes one shard's slots away until `restart(i)` brings its master back (empty,
 * unless `appendonly` keeps its data). The other shards keep serving meanwhile
 * (`cluster-require-full-coverage no`), as a deployment that prefers partial service would.
 * Cluster mode and its settings: https://redis.io/docs/latest/operate/oss_and_stack/management/scaling/
 */
import { execFile } from 'node:child_process'
import { freePort, type RedisServer, type RedisServerOptions, startRedisServer } from './redis-server'

export interface RedisClusterOptions {
  /** How many masters (shards), each owning an equal part of the 16,384 slots. At least 3 (Redis's own minimum). @default 3 */
  masters?: number
  /** Each master's persistence, as `startRedisServer`'s. @default 'no' */
  appendonly?: RedisServerOptions['appendonly']
  /** The `redis-server` binary. @default process.env.REDIS_SERVER or 'redis-server' */
  command?: string
  /** The `redis-cli` binary that creates the cluster. @default process.env.REDIS_CLI or 'redis-cli' */
  cli?: string
  /** ms after which a silent master counts as failed (`cluster-node-timeout`). @default 2000 */
  nodeTimeout?: number
  /** ms to wait for the cluster to answer `cluster_state:ok` after a start or a restart. @default 20000 */
  timeout?: number
}

export interface RedisCluster {
  /** The masters, in slot order: master 0 owns the lowest slots. */
  readonly masters: readonly RedisServer[]
  /** For node-redis: `createCluster({ rootNodes: cluster.rootNodes })`. */
  readonly rootNodes: { url: string }[]
  /** SIGKILL master `i`: its slots go unserved; the others go on. */
  kill(i: number): Promise<void>
  /** Starts master `i` again on its port with its cluster config (it keeps its slots); resolves once the cluster is whole again. */
  restart(i: number): Promise<void>
  /** Stops every master and removes their directories. */
  stop(): Promise<void>
}

export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const count = options.masters ?? 3
  if (!Number.isInteger(count) || count < 3) {
    throw new RangeError(`startRedisCluster: masters must be a whole number of at least 3, got ${count}`)
  }
  const cli = options.cli || process.env.REDIS_CLI || 'redis-cli'
  const timeout = options.timeout ?? 20_000
  const masters: RedisServer[] = []
  try {
    for (let i = 0; i < count; i++) {
      // The cluster bus needs a port of its own; the default (port + 10000) may be taken or out of range.
      const busPort = await freePort()
      const args = [
        '--cluster-enabled',
        'yes',
        '--cluster-config-file',
        'nodes.conf',
        '--cluster-port',
        String(busPort),
        '--cluster-node-timeout',
        String(options.nodeTimeout ?? 2000),
        '--cluster-require-full-coverage',
        'no',
      ]
      masters.push(await startRedisServer({ appendonly: options.appendonly, command: options.command, args }))
    }
    const addresses = masters.map((master) => `127.0.0.1:${master.port}`)
    await run(cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    await whole(cli, masters, timeout)
  } catch (error) {
    await Promise.all(masters.map((master) => master.stop()))
    throw error
  }

  function master(i: number): RedisServer {
    const found = masters[i]
    if (!found) throw new RangeError(`no master ${i}: the cluster has ${masters.length}`)
    return found
  }

  return {
    masters,
    rootNodes: masters.map((m) => ({ url: m.url })),
    kill: (i) => master(i).kill(),
    async restart(i) {
      await master(i).restart()
      await whole(cli, masters, timeout)
    },
    async stop() {
      await Promise.all(masters.map((m) => m.stop()))
    },
  }
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout)
      const hint = (error as NodeJS.ErrnoException).code === 'ENOENT' ? ' (apt-get install redis-tools)' : ''
      reject(new Error(`${command} ${args.join(' ')} failed${hint}: ${error.message}\n${stdout}${stderr}`))
    })
  })
}

/** Every master sees the whole cluster: its state ok and all `count` masters known with slots. */
async function whole(cli: string, masters: readonly RedisServer[], timeout: number): Promise<void> {
  const deadline = Date.now() + timeout
  let last = ''
  for (;;) {
    const answers = await Promise.all(
      masters.map((m) =>
        run(cli, ['-p', String(m.port), 'cluster', 'info']).catch((error: Error) => error.message),
      ),
    )
    const ok = answers.every(
      (info) => /cluster_state:ok/.test(info) && new RegExp(`cluster_size:${masters.length}\\b`).test(info),
    )
    if (ok) return
    last = answers.join('\n')
    if (Date.now() > deadline) throw new Error(`the Redis Cluster is not whole after ${timeout} ms:\n${last}`)
    // Polling an external process: there is no event to wait for.
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

/**
 * The Redis the demo's server nodes share, started for the run and stopped after it: one
 * `redis-server` (`--engine redis`) or a Redis Cluster of three masters (`--engine redis-cluster`),
 * one of which the fault "Redis master killed" kills and restarts.
 */
import { execFile } from 'node:child_process'
import { startRedisCluster, startRedisServer } from '../src/testing/index'
import type { NodeConfig } from './server-node'

/** Masters of the demo's Redis Cluster: Redis's minimum, each owning a third of the slots. */
const MASTERS = 3

export interface SharedRedis {
  /** Where the nodes find it. */
  config: Pick<NodeConfig, 'redisUrl' | 'rootNodes'>
  /** The cluster's masters; 0 for one redis-server. */
  masters: number
  /** SIGKILL master `i`: its slots go unserved, the other masters go on. */
  killMaster(i: number): Promise<void>
  /** Starts master `i` again; resolves once it serves its slots (Redis holds a restarted master back 2 s). */
  restartMaster(i: number): Promise<void>
  /** Whether master `i` owns the hash slot of a key whose hash tag is `tag`. */
  owns(i: number, tag: string): boolean
  /** Master `i`'s slots in words: `5461-10922`. */
  slotsOf(i: number): string
  stop(): Promise<void>
}

/**
 * The hash slot of a key with hash tag `tag`: CRC16 (XMODEM) of the tag, modulo 16384, as the
 * Redis Cluster specification defines it:
 * https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#key-distribution-model
 */
export function slotOf(tag: string): number {
  let crc = 0
  for (const byte of Buffer.from(tag)) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { timeout: 10_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout)))
  })
}

/**
 * `redis-server`, and for the cluster Redis 7 (sharded pub/sub) and `redis-cli` (it joins the
 * masters): a machine without them gets one line saying what to install, before anything starts.
 */
async function requireTools(engine: 'redis' | 'redis-cluster'): Promise<void> {
  const tools = [['redis-server', process.env.REDIS_SERVER || 'redis-server']]
  if (engine === 'redis-cluster') tools.push(['redis-cli', process.env.REDIS_CLI || 'redis-cli'])
  for (const [name, command] of tools) {
    const answer = await run(command!, ['--version']).catch(() => undefined)
    const install =
      'apt-get install redis-server (Debian, Ubuntu: it brings redis-cli), brew install redis (macOS), ' +
      `or set ${name === 'redis-cli' ? 'REDIS_CLI' : 'REDIS_SERVER'} to its path`
    if (answer === undefined)
      throw new Error(
        `--engine ${engine} needs ${name}${engine === 'redis' ? '' : ' (Redis 7 or later)'}, not found as '${command}': ${install}`,
      )
    const major = Number((/(\d+)\.\d+\.\d+/.exec(answer) || [])[1])
    if (engine === 'redis-cluster' && major < 7)
      throw new Error(
        `--engine redis-cluster needs Redis 7 or later (sharded pub/sub); ${command} is ${answer.trim()}`,
      )
  }
}

/** Each master's slot ranges, from its own `CLUSTER NODES` line (`myself`): they stay put, the demo moves no slots. */
async function slotRanges(cli: string, port: number): Promise<Array<[number, number]>> {
  const nodes = await run(cli, ['-p', String(port), 'CLUSTER', 'NODES'])
  const mine = nodes.split('\n').find((line) => / myself[ ,]/.test(line)) || ''
  return mine
    .split(' ')
    .slice(8)
    .filter((field) => /^\d+(-\d+)?$/.test(field))
    .map((field) => {
      const [from, to] = field.split('-').map(Number)
      return [from!, to ?? from!]
    })
}

export async function startSharedRedis(engine: 'redis' | 'redis-cluster'): Promise<SharedRedis> {
  await requireTools(engine)
  if (engine === 'redis') {
    const server = await startRedisServer()
    const none = () => Promise.reject(new Error('one redis-server has no masters to kill'))
    return {
      config: { redisUrl: server.url },
      masters: 0,
      killMaster: none,
      restartMaster: none,
      owns: () => true,
      slotsOf: () => '0-16383',
      stop: () => server.stop(),
    }
  }
  // Every master writes each command to its append-only file before it answers (`appendfsync
  // always`), so a master killed and restarted comes back with every stream position it
  // acknowledged, under the same epoch (the engine renews a stream's epoch only after a restart
  // of a Redis that may have lost writes: src/server/redis-scripts.ts). Its streams' readers then
  // resume where they were, and the demo's count stays strict: every confirmed push must be
  // seen, none excused by a resync. With less persistence the restarted master would come back
  // empty or short of its last writes; the engine would renew its streams' epochs and their
  // readers would get a resync: correct, but then the kill would test the resync, not the resume.
  const cluster = await startRedisCluster({ masters: MASTERS, appendonly: 'always' })
  try {
    const cli = process.env.REDIS_CLI || 'redis-cli'
    const ranges = await Promise.all(cluster.masters.map((m) => slotRanges(cli, m.port)))
    return {
      config: { rootNodes: cluster.rootNodes },
      masters: cluster.masters.length,
      killMaster: (i) => cluster.kill(i),
      restartMaster: (i) => cluster.restart(i),
      owns(i, tag) {
        const slot = slotOf(tag)
        return ranges[i]!.some(([from, to]) => slot >= from && slot <= to)
      },
      slotsOf: (i) => ranges[i]!.map(([from, to]) => (from === to ? `${from}` : `${from}-${to}`)).join(','),
      stop: () => cluster.stop(),
    }
  } catch (e) {
    await cluster.stop()
    throw e
  }
}

/**
 * What bench/nodes.ts reads of Redis: one redis-server or a Redis Cluster started for the bench,
 * each server's CPU time (`INFO cpu`), the commands it ran (`INFO commandstats`), and a MONITOR
 * count that tells the commands clients sent from the ones their scripts called.
 */
import net from 'node:net'
import { createClient } from 'redis'
import { startRedisCluster, startRedisServer } from '../src/testing/index'
import type { NodeConfig, RedisTarget } from './node-process'

export interface Target {
  kind: 'redis' | 'redis-cluster'
  /** Each redis-server (each master of a cluster). */
  urls: string[]
  /** What a node's engine is given. */
  engine: RedisTarget
  stop(): Promise<void>
}

/** A node's config: the Redis engine on `target`, its keys and channels under `prefix`. */
export const onRedis = (target: Target, prefix: string): NodeConfig => ({
  engine: 'redis',
  ...target.engine,
  prefix,
})

/** What the bench uses of a node-redis client. */
export interface Info {
  sendCommand(args: string[]): Promise<unknown>
  close(): Promise<unknown>
}

export async function startTarget(kind: Target['kind']): Promise<Target> {
  if (kind === 'redis') {
    const redis = await startRedisServer()
    return { kind, urls: [redis.url], engine: { url: redis.url }, stop: () => redis.stop() }
  }
  const cluster = await startRedisCluster({ masters: 3 })
  return {
    kind,
    urls: cluster.masters.map((m) => m.url),
    engine: { cluster: { rootNodes: cluster.rootNodes } },
    stop: () => cluster.stop(),
  }
}

/** One plain connection per redis-server, for INFO and the markers. */
export async function infoClients(target: Target): Promise<Info[]> {
  return Promise.all(
    target.urls.map(async (url) => {
      const client = createClient({ url })
      // A redis-server stopped while this is open is the bench's own doing, reported elsewhere.
      client.on('error', () => {})
      await client.connect()
      return client as Info
    }),
  )
}

/** µs of CPU each redis-server has used (main thread and the rest: `used_cpu_sys` + `used_cpu_user`). */
export async function redisCpu(clients: Info[]): Promise<number[]> {
  return Promise.all(
    clients.map(async (client) => {
      const info = String(await client.sendCommand(['INFO', 'cpu']))
      const field = (name: string) => Number((new RegExp(`${name}:([\\d.]+)`).exec(info) || [])[1])
      return Math.round((field('used_cpu_sys') + field('used_cpu_user')) * 1e6)
    }),
  )
}

/** Calls so far, every command by `INFO commandstats` (a script's calls included), the bench's own left out. */
export async function commandCalls(clients: Info[]): Promise<number> {
  let calls = 0
  for (const client of clients) {
    const info = String(await client.sendCommand(['INFO', 'commandstats']))
    for (const line of info.split('\n')) {
      const m = /^cmdstat_([\w|]+):calls=(\d+)/.exec(line)
      if (m && m[1] !== 'info' && m[1] !== 'echo') calls += Number(m[2])
    }
  }
  return calls
}

/**
 * A MONITOR connection: counts the commands Redis runs between the ECHO markers `start` and
 * `end`, those a script called (`[db lua]`) apart from the clients' own, and the clients' by name.
 */
export function monitor(url: string) {
  const { port, hostname } = new URL(url)
  const socket = net.connect(Number(port), hostname)
  socket.setEncoding('utf8')
  let rest = ''
  let counting = false
  let ended = false
  const counts = { top: 0, lua: 0, byName: new Map<string, number>() }
  const ready = new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\r\n')
      rest = lines.pop()!
      for (const line of lines) {
        if (line === '+OK') resolve()
        const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"/.exec(line)
        if (!m) continue
        const source = m[1]
        const name = m[2]!.toLowerCase()
        if (name === 'echo' && line.includes('"mpbus-bench-start"')) counting = true
        else if (name === 'echo' && line.includes('"mpbus-bench-end"')) {
          counting = false
          ended = true
        } else if (counting && source === 'lua') counts.lua++
        else if (counting) {
          counts.top++
          counts.byName.set(name, (counts.byName.get(name) || 0) + 1)
        }
      }
    })
  })
  socket.write('MONITOR\r\n')
  return {
    ready,
    counts,
    ended: () => ended,
    close: () => socket.destroy(),
  }
}

/**
 * A cluster engine that ignored `cluster` (an engine without it) would run on whatever
 * redis://127.0.0.1:6379 is: after the pushes, the cluster must hold the nodes' keys.
 */
export async function checkTargetUsed(target: Target, info: Info[], prefix: string): Promise<void> {
  let keys = 0
  for (const client of info) keys += ((await client.sendCommand(['KEYS', `*${prefix}*`])) as string[]).length
  if (!keys)
    throw new Error(
      `the nodes pushed but wrote no key with ${prefix} to the ${target.kind}: the engine ignored \`cluster\``,
    )
}

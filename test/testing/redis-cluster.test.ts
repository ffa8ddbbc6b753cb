// The test kit's Redis Cluster: real redis-server processes in cluster mode, joined by redis-cli.
// A killed master takes only its own slots away, and a restart brings it back into the cluster,
// emptied unless its append-only file kept the data.
import { execFileSync } from 'node:child_process'
import { createCluster } from 'redis'
import { afterEach, expect, it } from 'vitest'
import { type RedisCluster, startRedisCluster } from '../../src/testing/index'
import { describeWithRedis } from '../helpers/redis'

const clusters: RedisCluster[] = []
const clients: { destroy(): void }[] = []
afterEach(async () => {
  while (clients.length) clients.pop()!.destroy()
  while (clusters.length) await clusters.pop()!.stop()
})

async function start(options: Parameters<typeof startRedisCluster>[0] = {}) {
  const cluster = await startRedisCluster(options)
  clusters.push(cluster)
  return cluster
}

/** Keys on the master itself, asked without the cluster client's routing. */
function keysOn(cluster: RedisCluster, i: number): string[] {
  const out = execFileSync('redis-cli', ['-p', String(cluster.masters[i]!.port), '--scan'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  return out.split('\n').filter(Boolean).sort()
}

const KEYS = Array.from({ length: 30 }, (_, n) => `k${n}`)

async function fill(cluster: RedisCluster) {
  const client = createCluster({ rootNodes: cluster.rootNodes })
  clients.push(client)
  await client.connect()
  for (const key of KEYS) await client.set(key, key)
  return client
}

describeWithRedis('startRedisCluster', () => {
  it('starts three masters that share the slots: every master holds some keys, none holds them all', async () => {
    const cluster = await start()
    expect(cluster.masters).toHaveLength(3)
    await fill(cluster)
    const held = [0, 1, 2].map((i) => keysOn(cluster, i))
    for (const keys of held) expect(keys.length).toBeGreaterThan(0)
    expect(held.flat().sort()).toEqual([...KEYS].sort())
  })

  it('kill(i) stops only master i; restart(i) brings it back with its slots, emptied without appendonly', async () => {
    const cluster = await start()
    await fill(cluster)
    const lost = keysOn(cluster, 1)
    const kept = [...keysOn(cluster, 0), ...keysOn(cluster, 2)]
    await cluster.kill(1)
    expect(() => keysOn(cluster, 1)).toThrow()
    await cluster.restart(1)
    expect(keysOn(cluster, 1)).toEqual([])
    expect([...keysOn(cluster, 0), ...keysOn(cluster, 2)].sort()).toEqual(kept.sort())
    // The restarted master serves its old slots again, through a fresh cluster client.
    const client = createCluster({ rootNodes: cluster.rootNodes })
    clients.push(client)
    await client.connect()
    await client.set(lost[0]!, 'again')
    expect(keysOn(cluster, 1)).toEqual([lost[0]])
  })

  it('with appendonly always, a killed master comes back with its keys', async () => {
    const cluster = await start({ appendonly: 'always' })
    await fill(cluster)
    const before = keysOn(cluster, 2)
    expect(before.length).toBeGreaterThan(0)
    await cluster.kill(2)
    await cluster.restart(2)
    expect(keysOn(cluster, 2)).toEqual(before)
  })

  it('refuses fewer than three masters, as Redis does', async () => {
    await expect(startRedisCluster({ masters: 2 })).rejects.toThrow(/at least 3/)
  })
})

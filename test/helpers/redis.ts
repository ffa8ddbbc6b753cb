// Whether the Redis engine's tests can run: the redis-server the set-up found (scripts/setup.mjs:
// `REDIS_SERVER`, else on the PATH), or null, and then they are skipped (the set-up said so, once,
// with the command to run).
import { describe, inject, it } from 'vitest'

export const redisServer = inject('redisServer')
// startRedisServer (and the demo's processes it starts) read the binary from REDIS_SERVER.
if (redisServer) process.env.REDIS_SERVER = redisServer

export const describeWithRedis = describe.skipIf(!redisServer)
export const itWithRedis = it.skipIf(!redisServer)

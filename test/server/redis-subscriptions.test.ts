// Which streams a node hears (src/server/redis-subscriptions.ts), against a fake of the one part
// of node-redis it depends on: a client answers a subscribe to a channel it already holds a
// listener for at once, without asking Redis, and keeps the listener when an unsubscribe fails
// because the connection is down (node_modules/@redis/client/dist/lib/client/pub-sub.js).
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { RedisLink } from '../../src/server/redis-link'
import { within } from '../../src/server/redis-link'
import { createSubscriptions, type Timed } from '../../src/server/redis-subscriptions'

function fakeRedis() {
  const holds = new Set<string>()
  const asked: string[] = []
  const state = { down: false, hang: false }
  const link = {
    lineOf: () => Promise.resolve(''),
    async subscribe(channel: string) {
      if (holds.has(channel)) return
      holds.add(channel)
      if (state.down) throw new Error('The client is offline')
      asked.push(`SUBSCRIBE ${channel}`)
    },
    unsubscribe(channel: string) {
      if (state.hang) return new Promise<void>(() => {})
      if (state.down) return Promise.reject(new Error('The client is offline'))
      asked.push(`UNSUBSCRIBE ${channel}`)
      holds.delete(channel)
      return Promise.resolve()
    },
  } as unknown as RedisLink
  return { link, holds, asked, state }
}

const timeouts: Array<string | undefined> = []
const timed: Timed = (work, what, line) =>
  within(work, 100, () => {
    timeouts.push(line)
    return new Error(`${what}: timed out`)
  })

afterEach(() => {
  vi.useRealTimers()
  timeouts.length = 0
})

describe('redis subscriptions', () => {
  it('a stream listened to again after an outage is subscribed for real, though node-redis kept its listener', async () => {
    const redis = fakeRedis()
    const subs = createSubscriptions(
      () => Promise.resolve(redis.link),
      (s) => `c:{${s}}`,
      timed,
    )
    await subs.listen('room:x')
    expect(redis.asked).toEqual(['SUBSCRIBE c:{room:x}'])
    redis.state.down = true
    expect(subs.failed(undefined)).toEqual(['room:x'])
    // Its reader was reset and left while the line was down: the unsubscribe failed.
    subs.unlisten('room:x')
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(redis.holds.has('c:{room:x}')).toBe(true)
    redis.state.down = false
    // A login now: only an answer from Redis proves the subscription stands.
    await subs.listen('room:x')
    expect(redis.asked).toEqual(['SUBSCRIBE c:{room:x}', 'UNSUBSCRIBE c:{room:x}', 'SUBSCRIBE c:{room:x}'])
  })

  it('once the line is back, a channel held for no reader is let go', async () => {
    const redis = fakeRedis()
    const subs = createSubscriptions(
      () => Promise.resolve(redis.link),
      (s) => `c:{${s}}`,
      timed,
    )
    await subs.listen('user:a')
    redis.state.down = true
    subs.failed(undefined)
    subs.unlisten('user:a')
    await new Promise((resolve) => setTimeout(resolve, 0))
    redis.state.down = false
    subs.sweep()
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(redis.holds.size).toBe(0)
    // And a message still heard on it lets it go, once.
    expect(subs.streamOf('c:{user:a}')).toBeUndefined()
  })

  it('the unsubscribe of a proof is timed too: a line that answers nothing fails the login, reported as that line', async () => {
    vi.useFakeTimers()
    const redis = fakeRedis()
    const subs = createSubscriptions(
      () => Promise.resolve(redis.link),
      (s) => `c:{${s}}`,
      timed,
    )
    const first = subs.listen('room:x')
    await vi.advanceTimersByTimeAsync(0)
    await first
    subs.failed('')
    redis.state.hang = true
    const again = subs.listen('room:x')
    again.catch(() => {})
    await vi.advanceTimersByTimeAsync(100)
    await expect(again).rejects.toThrow('UNSUBSCRIBE c:{room:x}: timed out')
    expect(timeouts).toEqual([''])
  })
})

// The Redis engine against a real redis-server (Debian's, started by the test kit), and the same
// against a real Redis Cluster of three masters: offsets, epochs, trimming and ttl, the duplicate
// window shared by two engines, rooms, what a node hears, and what an outage and an emptied Redis
// (or one emptied master) do.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest'
import {
  type EngineEvent,
  type Position,
  type RedisEngine,
  type RedisEngineOptions,
  redisEngine,
} from '../src/server/index'
import {
  type RedisCluster,
  type RedisServer,
  startRedisCluster,
  startRedisServer,
} from '../src/testing/index'
import { describeWithRedis, redisServer } from './helpers/redis'
import { sleep, until } from './helpers/time'

let redis: RedisServer
let cluster: RedisCluster | undefined
beforeAll(async () => {
  if (!redisServer) return
  redis = await startRedisServer()
})
afterAll(async () => {
  await redis?.stop()
  await cluster?.stop()
})

/** Where `engine()` connects: one Redis, or the cluster (started by the first suite that needs it). */
let target: 'one Redis' | 'Redis Cluster' = 'one Redis'
/** Runs `suite` on one Redis and again on a Redis Cluster of three masters. */
function onBoth(name: string, suite: () => void) {
  for (const kind of ['one Redis', 'Redis Cluster'] as const)
    describeWithRedis(`${name} (${kind})`, () => {
      beforeAll(async () => {
        target = kind
        if (kind === 'Redis Cluster' && !cluster) cluster = await startRedisCluster({ masters: 3 })
      }, 30_000)
      suite()
    })
}

const engines: RedisEngine[] = []
afterEach(async () => {
  while (engines.length) await engines.pop()!.close()
})

let prefixes = 0
/** An engine on its own key prefix (each test starts from an empty store), or on `prefix` to share one. */
function engine(options: RedisEngineOptions = {}) {
  const where =
    target === 'Redis Cluster' ? { cluster: { rootNodes: cluster!.rootNodes } } : { url: redis.url }
  const e = redisEngine({ ...where, prefix: `t${++prefixes}`, ...options })
  engines.push(e)
  return e
}

/** Retries `call` until it resolves (Redis coming back takes real time). */
async function eventually<T>(call: () => PromiseLike<T>, what: string, timeout = 8000): Promise<T> {
  let last: unknown
  const settled = (): PromiseLike<{ value: T } | undefined> =>
    call().then(
      (value) => ({ value }),
      (e) => {
        last = e
        return undefined
      },
    )
  const got = await until(settled, what, timeout, () => last)
  return got!.value
}

/** What an engine's subscriber hears of `streams` (the streams its node's connections would read). */
async function listen(e: RedisEngine, ...streams: string[]) {
  const events: EngineEvent[] = []
  await e.subscribe((event) => void events.push(event))
  for (const stream of streams) await e.listen(stream)
  return events
}

onBoth('redis engine: streams', () => {
  it('numbers each stream from 1, replays what is after a position, and refuses a gap the history lost', async () => {
    const e = engine({ history: 3 })
    await e.subscribe(() => {})
    const { epoch } = await e.tip('s')
    expect(await e.tip('s')).toEqual({ offset: 0, epoch })
    for (let n = 1; n <= 5; n++) expect(await e.append('s', { n })).toEqual({ offset: n, epoch })
    expect((await e.append('other', {})).offset).toBe(1)
    const missed = await e.since('s', { offset: 2, epoch })
    expect(missed).toEqual([
      { offset: 3, frame: { n: 3 } },
      { offset: 4, frame: { n: 4 } },
      { offset: 5, frame: { n: 5 } },
    ])
    expect(await e.since('s', { offset: 5, epoch })).toEqual([])
    // Offset 2 was trimmed (MAXLEN 3): from 1 the gap is not covered.
    expect(await e.since('s', { offset: 1, epoch })).toBeUndefined()
    expect(await e.since('s', { offset: 6, epoch })).toBeUndefined()
    expect(await e.since('s', { offset: 4, epoch: 'other' })).toBeUndefined()
  })

  it('two engines on one prefix share offsets and epoch; another prefix is another store', async () => {
    const a = engine()
    const b = engine({ prefix: `t${prefixes}` })
    const c = engine()
    const p1 = await a.append('s', { from: 'a' })
    const p2 = await b.append('s', { from: 'b' })
    expect(p2).toEqual({ offset: 2, epoch: p1.epoch })
    expect((await c.append('s', {})).offset).toBe(1)
    await b.subscribe(() => {})
    expect((await b.since('s', { offset: 0, epoch: p1.epoch }))!.map((s) => s.frame)).toEqual([
      { from: 'a' },
      { from: 'b' },
    ])
  })

  it('a stream idle past historyTtl is gone, with its epoch: a position in it resyncs', async () => {
    const e = engine({ historyTtl: 1000 })
    await e.subscribe(() => {})
    const first = await e.append('s', { n: 1 })
    // Real waits: the ttl runs on redis-server's own clock, which no fake timer reaches. A wait
    // only ever runs long, so the check is past the first append's 1 s ttl, where the stream lives
    // on the refresh alone; the margins (refresh 500 ms early, check 400 ms before the refreshed
    // ttl ends) leave a loaded machine room to be slow.
    const start = performance.now()
    await sleep(500)
    await e.append('s', { n: 2 }) // refreshes the ttl
    await sleep(1100 - (performance.now() - start))
    expect(await e.since('s', first)).toHaveLength(1)
    // Then it expires: waited for, not guessed.
    await until(async () => (await e.since('s', first)) === undefined, 'the stream expired')
    expect(await e.since('s', first)).toBeUndefined()
    const tip = await e.tip('s')
    expect(tip.offset).toBe(0)
    expect(tip.epoch).not.toBe(first.epoch)
  })

  it('refuses bad options with BAD_OPTION', () => {
    expect(() => redisEngine({ history: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
    expect(() => redisEngine({ dedupTtl: -1 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
    expect(() => redisEngine({ claimTtl: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
  })
})

onBoth('redis engine: the duplicate window and rooms', () => {
  it('keeps a handled message id per user, shared by every engine on the store, until dedupTtl', async () => {
    const a = engine({ dedupTtl: 300 })
    const b = engine({ prefix: `t${prefixes}`, dedupTtl: 300 })
    expect(await a.remember('alice', 'm1')).toBe(true)
    await a.handled('alice', 'm1')
    expect(await b.remember('alice', 'm1')).toBe(false)
    // Per user, and no (user, id) pair collides with another: 'a:b' + 'c' is not 'a' + 'b:c'.
    expect(await b.remember('bob', 'm1')).toBe(true)
    expect(await a.remember('a:b', 'c')).toBe(true)
    expect(await a.remember('a', 'b:c')).toBe(true)
    // A claim taken back (its handler failed) is new again, on every engine.
    expect(await a.remember('alice', 'm2')).toBe(true)
    await b.forget('alice', 'm2')
    expect(await a.remember('alice', 'm2')).toBe(true)
    // dedupTtl runs on redis-server's clock: wait for the id to be new again.
    await until(async () => (await b.remember('alice', 'm1')) === true, 'the id forgotten after dedupTtl')
  })

  it('an id being handled is busy for every engine until handled, or until claimTtl if its node died', async () => {
    // Long enough that a loaded machine cannot let a claim lapse between two commands.
    const a = engine({ claimTtl: 1500 })
    const b = engine({ prefix: `t${prefixes}`, claimTtl: 1500 })
    expect(await a.remember('alice', 'm1')).toBe(true)
    expect(await b.remember('alice', 'm1')).toBe('busy')
    await a.handled('alice', 'm1')
    expect(await b.remember('alice', 'm1')).toBe(false)
    // Claimed, never marked handled (the node died mid-handler): free again after claimTtl.
    expect(await a.remember('alice', 'm2')).toBe(true)
    expect(await b.remember('alice', 'm2')).toBe('busy')
    // claimTtl runs on redis-server's clock: wait for the claim to lapse ('busy' until then).
    const lapsed = () => b.remember('alice', 'm2').then((r) => (r === 'busy' ? undefined : r))
    expect(await until(lapsed, 'the claim lapsed')).toBe(true)
  })

  it('a handler that outlived its claim and then failed does not undo the handled mark of the node that took over', async () => {
    const a = engine({ claimTtl: 100 })
    const b = engine({ prefix: `t${prefixes}`, claimTtl: 100 })
    expect(await a.remember('alice', 'm1')).toBe(true)
    // a's handler runs past its claim: b may claim once it lapsed on redis-server's clock.
    const lapsed = () => b.remember('alice', 'm1').then((r) => (r === 'busy' ? undefined : r))
    expect(await until(lapsed, 'a’s claim lapsed')).toBe(true)
    await b.handled('alice', 'm1')
    await a.forget('alice', 'm1') // a's handler fails late
    expect(await b.remember('alice', 'm1')).toBe(false)
    // A claim that is still a claim is taken back as before.
    expect(await a.remember('alice', 'm2')).toBe(true)
    await a.forget('alice', 'm2')
    expect(await b.remember('alice', 'm2')).toBe(true)
  })

  it('keeps at most dedupLimit ids per user, the oldest forgotten first; users never share a window', async () => {
    const e = engine({ dedupLimit: 3 })
    for (const id of ['m1', 'm2', 'm3', 'm4']) {
      expect(await e.remember('alice', id)).toBe(true)
      await e.handled('alice', id)
    }
    expect(await e.remember('alice', 'm4')).toBe(false)
    expect(await e.remember('alice', 'm2')).toBe(false)
    expect(await e.remember('alice', 'm1')).toBe(true)
    await e.handled('a:b', 'c')
    expect(await e.remember('a', 'b:c')).toBe(true)
  })

  it('rooms and members; a node hears a user’s joins and leaves on the user’s stream, a room’s frames on the room’s', async () => {
    const a = engine()
    const b = engine({ prefix: `t${prefixes}` })
    const heard = await listen(b, 'user:alice', 'room:r1')
    await a.join('alice', 'r1')
    const r1 = await a.tip('room:r1')
    await a.join('bob', 'r1')
    await a.join('alice', 'r2')
    const p = await a.append('room:r1', { n: 1 })
    await a.append('room:r2', { n: 1 })
    await a.leave('bob', 'r1')
    await a.leave('alice', 'r2')
    expect(await b.rooms('alice')).toEqual(['r1'])
    expect(await b.members('r1')).toEqual(['alice'])
    await until(() => heard.length === 4, 'events')
    const r2 = await a.tip('room:r2')
    // Not bob's: this node reads neither bob's stream nor r2's.
    expect(heard.filter((e) => e.type !== 'frame')).toEqual([
      { type: 'join', user: 'alice', room: 'r1', position: r1 },
      { type: 'join', user: 'alice', room: 'r2', position: { offset: 0, epoch: r2.epoch } },
      { type: 'leave', user: 'alice', room: 'r2' },
    ])
    expect(heard.filter((e) => e.type === 'frame')).toEqual([
      { type: 'frame', stream: 'room:r1', position: p, frame: { n: 1 } },
    ])
  })

  it('a node hears a stream only while it listens to it: the last unlisten ends it', async () => {
    const a = engine()
    const b = engine({ prefix: `t${prefixes}` })
    const heard = await listen(b, 'user:x', 'user:x')
    await a.append('user:x', { n: 1 })
    await until(() => heard.length === 1, 'the first')
    b.unlisten('user:x')
    await a.append('user:x', { n: 2 })
    await until(() => heard.length === 2, 'the second, one listener left')
    b.unlisten('user:x')
    // A marker on another stream, appended after: once it is heard, the third would have been too.
    await b.listen('user:marker')
    await a.append('user:x', { n: 3 })
    await a.append('user:marker', {})
    await until(() => heard.length === 3, 'the marker')
    expect(heard.map((e) => e.type === 'frame' && [e.stream, e.frame])).toEqual([
      ['user:x', { n: 1 }],
      ['user:x', { n: 2 }],
      ['user:marker', {}],
    ])
  })

  it('a join keeps the room stream’s position at the join, beside the membership; a second join keeps the first, a leave forgets it', async () => {
    const a = engine()
    const b = engine({ prefix: `t${prefixes}` })
    await a.append('room:r1', { n: 1 })
    const at = await a.append('room:r1', { n: 2 })
    await a.join('alice', 'r1')
    await a.join('alice', 'r2')
    await a.append('room:r1', { n: 3 })
    await b.join('alice', 'r1')
    const r2 = await a.tip('room:r2')
    expect(await b.joined('alice')).toEqual({ r1: at, r2: { offset: 0, epoch: r2.epoch } })
    await a.leave('alice', 'r1')
    await a.join('alice', 'r1')
    expect((await b.joined('alice')).r1).toEqual({ offset: 3, epoch: at.epoch })
    expect(await b.joined('bob')).toEqual({})
  })

  it('appends from two engines at once: every subscriber hears one stream in offset order', async () => {
    const a = engine()
    const b = engine({ prefix: `t${prefixes}` })
    const onA = await listen(a, 'user:x')
    const onB = await listen(b, 'user:x')
    const writes: Promise<unknown>[] = []
    for (let n = 0; n < 200; n++) writes.push((n % 2 ? a : b).append('user:x', { n }))
    await Promise.all(writes)
    const offsets = (events: EngineEvent[]) =>
      events.map((e) => (e.type === 'frame' ? e.position.offset : -1))
    await until(() => onA.length === 200 && onB.length === 200, 'all 200 on both')
    const inOrder = Array.from({ length: 200 }, (_, i) => i + 1)
    expect(offsets(onA)).toEqual(inOrder)
    expect(offsets(onB)).toEqual(inOrder)
  })
})

describeWithRedis('redis engine: memory (one Redis)', () => {
  beforeAll(() => {
    target = 'one Redis'
  })

  it('the window costs Redis a bounded amount per user: 20,000 ids of 64 characters hold the memory of dedupLimit', async () => {
    const e = engine({ dedupLimit: 1000 })
    const id = (n: number) => `${'x'.repeat(58)}-${n.toString(36).padStart(5, '0')}`
    const used = async () => {
      const info = String(await probe.sendCommand(['INFO', 'memory']))
      return Number(/used_memory:(\d+)/.exec(info)![1])
    }
    const { createClient } = await import('redis')
    const probe = createClient({ url: redis.url })
    await probe.connect()
    try {
      for (let n = 0; n < 1000; n++) await e.handled('alice', id(n))
      const at1000 = await used()
      for (let n = 1000; n < 20_000; n++) await e.handled('alice', id(n))
      const at20000 = await used()
      // 19,000 more ids cost what a few dozen would, not 19,000 keys.
      expect(at20000 - at1000).toBeLessThan(64 * 1024)
    } finally {
      await probe.close()
    }
  })
})

describeWithRedis('redis engine: outages', () => {
  it('Redis killed and restarted empty: reported, every node told to reset, a new epoch, then it works again', async () => {
    const own = await startRedisServer()
    try {
      const e = redisEngine({ url: own.url })
      engines.push(e)
      const heard = await listen(e, 'user:alice')
      const before = await e.append('user:alice', { n: 1 })
      await own.kill()
      await until(() => heard.some((h) => h.type === 'reset'), 'reset')
      expect(heard.find((h) => h.type === 'reset')).toEqual({ type: 'reset', streams: ['user:alice'] })
      expect(heard.find((h) => h.type === 'error')).toMatchObject({ error: { code: 'ENGINE_DOWN' } })
      // Nothing is taken in silently while Redis is away.
      await expect(e.append('user:alice', { n: 2 })).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      await expect(e.rooms('alice')).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      await expect(e.remember('alice', 'm')).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      await own.restart()
      // Live again once Redis answers, and the lost history is a new epoch; the next reader's
      // listen subscribes again before it relies on the channel.
      await eventually(() => e.tip('user:alice'), 'live again')
      await eventually(() => e.listen('user:alice'), 'subscribed again')
      expect(await e.since('user:alice', before)).toBeUndefined()
      const after = await e.append('user:alice', { n: 2 })
      expect(after.offset).toBe(1)
      expect(after.epoch).not.toBe(before.epoch)
      await until(
        () => heard.some((h) => h.type === 'frame' && h.position.epoch === after.epoch),
        'heard again',
      )
    } finally {
      await own.stop()
    }
  })

  it('with appendonly always, a SIGKILL loses nothing: same epoch, same history', async () => {
    const own = await startRedisServer({ appendonly: 'always' })
    try {
      const e = redisEngine({ url: own.url })
      engines.push(e)
      await e.subscribe(() => {})
      for (let n = 1; n <= 3; n++) await e.append('user:alice', { n })
      await e.remember('alice', 'm1')
      await e.handled('alice', 'm1')
      const before = await e.tip('user:alice')
      await own.kill()
      await own.restart()
      await eventually(() => e.tip('user:alice'), 'live again')
      const { epoch } = await e.tip('user:alice')
      // The promise of appendfsync always: no position of before the restart is made to resync.
      expect(epoch).toBe(before.epoch)
      expect((await e.since('user:alice', { offset: 1, epoch }))!.map((s) => s.frame)).toEqual([
        { n: 2 },
        { n: 3 },
      ])
      expect(await e.remember('alice', 'm1')).toBe(false)
    } finally {
      await own.stop()
    }
  })

  it('with appendonly everysec, a Redis restart is a new epoch: offsets it may have lost are never skipped as repeats', async () => {
    const own = await startRedisServer({ appendonly: 'everysec' })
    try {
      const e = redisEngine({ url: own.url })
      engines.push(e)
      await e.subscribe(() => {})
      for (let n = 1; n <= 3; n++) await e.append('user:alice', { n })
      const before = await e.tip('user:alice')
      await own.kill()
      await own.restart()
      // The first append on the restarted process hands out no offset under the old epoch.
      const next = await eventually(() => e.append('user:alice', { n: 4 }), 'live again')
      expect(next.epoch).not.toBe(before.epoch)
      expect(await e.since('user:alice', before)).toBeUndefined()
      // And only once: another engine on the same Redis process changes nothing.
      const again = redisEngine({ url: own.url })
      engines.push(again)
      await again.subscribe(() => {})
      expect(await again.append('user:alice', { n: 5 })).toEqual({
        offset: next.offset + 1,
        epoch: next.epoch,
      })
    } finally {
      await own.stop()
    }
  })

  it('Redis paused (SIGSTOP): commands fail with ENGINE_DOWN after commandTimeout, nodes are told, and it recovers', async () => {
    const own = await startRedisServer()
    try {
      const e = redisEngine({ url: own.url, commandTimeout: 300 })
      engines.push(e)
      const heard = await listen(e, 'user:alice')
      await e.append('user:alice', { n: 1 })
      own.pause()
      await expect(e.append('user:alice', { n: 2 })).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      expect(heard.find((h) => h.type === 'error')).toMatchObject({ error: { code: 'ENGINE_DOWN' } })
      expect(heard.some((h) => h.type === 'reset')).toBe(true)
      await expect(e.rooms('alice')).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      await expect(e.remember('alice', 'm')).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      own.resume()
      await eventually(() => e.tip('user:alice'), 'live again')
      const after = await e.append('user:alice', { n: 3 })
      // The same Redis process: its epochs are kept, and the push that timed out ran after all.
      expect(after.offset).toBe(3)
    } finally {
      own.resume()
      await own.stop()
    }
  })

  it('createServer fails with ENGINE_DOWN when Redis is not there at start', async () => {
    const own = await startRedisServer()
    await own.stop()
    const e = redisEngine({ url: own.url, connectTimeout: 300 })
    engines.push(e)
    await expect(e.subscribe(() => {})).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
  })
})

describeWithRedis('redis engine on a Redis Cluster: one master down', () => {
  /** Streams named so that each of the three masters holds some (found by asking each master). */
  async function streamsByMaster(own: RedisCluster, e: RedisEngine) {
    const { createClient } = await import('redis')
    const byMaster: string[][] = own.masters.map(() => [])
    for (let n = 0; byMaster.some((list) => list.length < 2); n++) {
      const stream = `user:u${n}`
      await e.append(stream, { n })
      for (const [i, master] of own.masters.entries()) {
        const probe = createClient({ url: master.url })
        await probe.connect()
        const keys = (await probe.sendCommand(['KEYS', `*{${stream}}`])) as string[]
        await probe.close()
        if (keys.length) byMaster[i]!.push(stream)
      }
    }
    return byMaster
  }

  it('a killed master resets only the readers of its streams; restarted empty, only its streams get a new epoch', async () => {
    const own = await startRedisCluster({ masters: 3 })
    try {
      const e = redisEngine({ cluster: { rootNodes: own.rootNodes }, prefix: 'k' })
      engines.push(e)
      const byMaster = await streamsByMaster(own, e)
      const all = byMaster.flat()
      const heard = await listen(e, ...all)
      const before = new Map<string, Position>()
      for (const stream of all) before.set(stream, await e.tip(stream))
      await own.kill(1)
      await until(() => heard.some((h) => h.type === 'reset'), 'reset')
      const reset = new Set(heard.flatMap((h) => (h.type === 'reset' ? h.streams || all : [])))
      expect([...reset].sort()).toEqual([...byMaster[1]!].sort())
      // The other masters' streams go on meanwhile.
      for (const stream of [...byMaster[0]!, ...byMaster[2]!]) await e.append(stream, { during: true })
      await expect(e.append(byMaster[1]![0]!, {})).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
      await own.restart(1)
      for (const stream of all) {
        const tip = await eventually(() => e.tip(stream), `${stream} again`)
        if (byMaster[1]!.includes(stream)) expect(tip.epoch).not.toBe(before.get(stream)!.epoch)
        else expect(tip).toEqual({ offset: before.get(stream)!.offset + 1, epoch: before.get(stream)!.epoch })
      }
    } finally {
      await own.stop()
    }
  }, 60_000)

  it('a paused master (no answer within commandTimeout) resets only the readers of its streams', async () => {
    const own = await startRedisCluster({ masters: 3 })
    try {
      const e = redisEngine({ cluster: { rootNodes: own.rootNodes }, prefix: 'p', commandTimeout: 500 })
      engines.push(e)
      const byMaster = await streamsByMaster(own, e)
      const heard = await listen(e, ...byMaster.flat())
      own.masters[1]!.pause()
      try {
        await expect(e.append(byMaster[1]![0]!, {})).rejects.toMatchObject({ code: 'ENGINE_DOWN' })
        await until(() => heard.some((h) => h.type === 'reset'), 'reset')
        const reset = heard.flatMap((h) => (h.type === 'reset' ? h.streams || ['(all)'] : []))
        expect([...new Set(reset)].sort()).toEqual([...byMaster[1]!].sort())
      } finally {
        own.masters[1]!.resume()
      }
    } finally {
      await own.stop()
    }
  }, 60_000)
})

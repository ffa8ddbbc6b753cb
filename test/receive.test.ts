// The receive path end to end: mpbus/server (memory engine) and buses on the wx runtime behind the
// real fault proxy. A room joined while the app was away, a second bus on the same storage, the
// storage writes a replay costs (counted on the runtime, not timed), and what a handler sees
// across a kill in the background, a crash in the foreground and a storage failure.
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, type ServerOptions } from '../src/server/index'
import { createFaultProxy } from '../src/testing/fault-proxy'
import { createStorageArea } from '../src/testing/index'
import { authenticate, bus, fast, raw, runtime } from './helpers/e2e'
import { until } from './helpers/time'

const servers: Array<{ close(): Promise<void> }> = []
afterEach(async () => {
  while (servers.length) await servers.pop()!.close()
})

async function start(options: Partial<ServerOptions> = {}) {
  const server = await createServer({ authenticate, ...options })
  servers.push(server)
  const proxy = await createFaultProxy({ port: server.port })
  servers.push(proxy)
  return { server, proxy }
}

const ready = { ok: 'LoginOK', fail: ['LoginError'], timeout: 1000 }
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

/** A bus for alice recording what its handlers (`Quote` on her stream, `Bid` in rooms) and `resync` saw. */
function client(url: string, platform: ReturnType<typeof runtime>, seen: number[] = [], bids: number[] = []) {
  const b = bus({
    url,
    platform,
    login: () => ({ op: 'userLogin', payload: { openId: 'alice' } }),
    ready,
    ack: true,
    ...fast,
  })
  const resyncs: unknown[] = []
  b.on('Quote', (f: any) => void seen.push(f.n))
  b.on('Bid', (f: any) => void bids.push(f.n))
  b.events.on('resync', (r) => void resyncs.push(r))
  return { b, seen, bids, resyncs }
}

describe('receive path: no pushed frame missed after a join or by a second bus', () => {
  it('a handler that closes the bus mid-replay: the frames after it are handled by the next life', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const wx = runtime({ storage })
    const one = client(proxy.url(), wx)
    await until(() => one.b.state === 'ready', 'ready') // a position stored: the next login takes batches
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'server saw the drop')
    for (let n = 1; n <= 10; n++) await server.push('alice', 'Quote', { n })
    one.b.on('Quote', (f: any) => {
      if (f.n === 5) one.b.close()
    })
    wx.control.online()
    await until(() => one.b.state === 'closed', 'closed by its handler')
    expect(one.seen).toEqual(range(1, 5))
    const two = client(proxy.url(), runtime({ storage }))
    await until(() => two.seen.length === 5, 'the rest, in the next life')
    await server.push('alice', 'Quote', { n: 11 }) // a marker: a repeat would arrive before it
    await until(() => two.seen.length >= 6, 'the marker')
    expect(two.seen).toEqual(range(6, 11))
  })

  it('a room joined while the app is offline is replayed from the join, not started at its tip', async () => {
    const { server, proxy } = await start()
    await server.publish('r', 'Bid', { n: 0 }) // before the join: not this member's
    const wx = runtime()
    const { b, bids, resyncs } = client(proxy.url(), wx)
    await until(() => b.state === 'ready', 'ready')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'server saw the drop')
    await server.join('alice', 'r')
    for (let n = 1; n <= 10; n++) await server.publish('r', 'Bid', { n })
    wx.control.online()
    await until(() => bids.length === 10, 'the 10 published while offline')
    await server.publish('r', 'Bid', { n: 11 })
    await until(() => bids.length === 11, 'live')
    expect(bids).toEqual(range(1, 11))
    expect(resyncs).toEqual([])
  })

  it('a room joined while the app is killed is replayed from the join at the cold start', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const first = runtime({ storage })
    const one = client(proxy.url(), first)
    await until(() => one.b.state === 'ready', 'ready')
    first.control.kill()
    await until(() => server.connections('alice') === 0, 'server saw the kill')
    await server.join('alice', 'r')
    for (let n = 1; n <= 10; n++) await server.publish('r', 'Bid', { n })
    const two = client(proxy.url(), runtime({ storage }))
    await until(() => two.bids.length === 10, 'the 10 published while killed')
    // A marker published after: a frame seen twice would arrive before it.
    await server.publish('r', 'Bid', { n: 11 })
    await until(() => two.bids.length >= 11, 'the marker')
    expect(two.bids).toEqual(range(1, 11))
  })

  it('a first login still starts every stream at its tip: a room joined long before is not replayed', async () => {
    const { server, proxy } = await start()
    await server.join('alice', 'r')
    for (let n = 1; n <= 3; n++) await server.publish('r', 'Bid', { n })
    const { b, bids } = client(proxy.url(), runtime())
    await until(() => b.state === 'ready', 'ready')
    await server.publish('r', 'Bid', { n: 4 })
    await until(() => bids.length === 1, 'live')
    expect(bids).toEqual([4])
  })

  it('a bus that never logged in does not overwrite the position another wrote: nothing is seen by nobody', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    // B starts with empty storage while it cannot reach the server.
    const wxB = runtime({ storage })
    wxB.control.offline()
    const seenB: number[] = []
    const B = client(proxy.url(), wxB, seenB)
    // A logs in on the same storage, sees 10 and goes.
    const wxA = runtime({ storage })
    const A = client(proxy.url(), wxA)
    await until(() => A.b.state === 'ready', 'A ready')
    for (let n = 1; n <= 10; n++) await server.push('alice', 'Quote', { n })
    await until(() => A.seen.length === 10, 'A saw 10')
    A.b.close()
    await until(() => server.connections('alice') === 0, 'A gone')
    for (let n = 11; n <= 20; n++) await server.push('alice', 'Quote', { n })
    wxB.control.online()
    await until(() => seenB.length === 10, 'B sees what A did not')
    expect(seenB).toEqual(range(11, 20))
    B.b.close()
    // A later cold start resumes at 20: nothing again, nothing missed.
    await server.push('alice', 'Quote', { n: 21 })
    const C = client(proxy.url(), runtime({ storage }))
    await until(() => C.seen.length === 1, 'the cold start')
    await server.push('alice', 'Quote', { n: 22 }) // a marker: a repeat would arrive before it
    await until(() => C.seen.length >= 2, 'the marker')
    expect(C.seen).toEqual([21, 22])
  })
})

describe('receive path: storage at its floor', () => {
  it('a replay of 1,000 frames after an offline period: at most 0.05 storage writes per frame, each handled once, in order', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const wx = runtime({ storage })
    const { b, seen } = client(proxy.url(), wx)
    await until(() => b.state === 'ready', 'ready')
    await server.push('alice', 'Quote', { n: 0 })
    await until(() => seen.length === 1, 'live')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'dropped')
    for (let n = 1; n <= 1000; n++) await server.push('alice', 'Quote', { n, text: 'x'.repeat(60) })
    const before = wx.control.counters.setStorageSync
    wx.control.online()
    await until(() => seen.length === 1001, 'the replay', 10_000)
    const writes = wx.control.counters.setStorageSync - before
    expect(writes / 1000).toBeLessThanOrEqual(0.05)
    expect(seen).toEqual(range(0, 1000))
    // What the storage holds is the last frame: a cold start replays nothing again.
    wx.control.kill()
    await server.push('alice', 'Quote', { n: 1001 })
    const two = client(proxy.url(), runtime({ storage }))
    await until(() => two.seen.length === 1, 'cold start')
    await server.push('alice', 'Quote', { n: 1002 }) // a marker: a repeat would arrive before it
    await until(() => two.seen.length >= 2, 'the marker')
    expect(two.seen).toEqual([1001, 1002])
  })

  it('a client that names no Batch in its login gets one frame per message; one that does, a replay in few', async () => {
    const { server } = await start()
    const { epoch } = await server.push('alice', 'Quote', { n: 1 })
    for (let n = 2; n <= 50; n++) await server.push('alice', 'Quote', { n })
    const from = { 'user:alice': { offset: 0, epoch } }
    const old = await raw(server.port)
    old.send({ Operator: 'userLogin', openId: 'alice', Streams: from })
    await until(() => old.got.length === 51, 'one message per frame')
    expect(old.got.every((f) => !Array.isArray(f))).toBe(true)
    const batched = await raw(server.port)
    batched.send({ Operator: 'userLogin', openId: 'alice', Streams: from, Batch: 1 << 20 })
    await until(() => batched.got.length >= 1, 'the answer and replay')
    // A heartbeat after: its answer, in a later macrotask, comes after any frame of the replay.
    batched.send({ Operator: 'Heart' })
    await until(() => batched.got.length >= 2, 'the heartbeat answer')
    expect(batched.got).toHaveLength(2)
    expect(batched.got[1]).toMatchObject({ Operator: 'HeartOK' })
    expect(batched.got[0].map((f: any) => f.Operator)).toEqual(['LoginOK'].concat(Array(50).fill('Quote')))
    // A message never exceeds the bytes the client named.
    const small = await raw(server.port)
    small.send({ Operator: 'userLogin', openId: 'alice', Streams: from, Batch: 1000 })
    await until(() => small.got.flat().length === 51, 'in messages of at most 1000 bytes')
    expect(small.got.length).toBeGreaterThan(2)
    expect(small.got.flat().map((f: any) => f.n || 0)).toEqual([0].concat(range(1, 50)))
  })
})

describe('receive path: batches and the rest of the protocol', () => {
  it('frames waiting for the end of the macrotask leave before a close: SessionEnd reaches a client that takes batches', async () => {
    const { server } = await start()
    const { epoch } = await server.push('alice', 'Quote', { n: 1 })
    const c = await raw(server.port)
    c.send({
      Operator: 'userLogin',
      openId: 'alice',
      Streams: { 'user:alice': { offset: 1, epoch } },
      Batch: 1 << 20,
    })
    await until(() => c.got.length === 1, 'the answer')
    server.push('alice', 'Quote', { n: 2 })
    server.end('alice', 'logged in elsewhere')
    await until(() => c.closed.code, 'close')
    expect(c.closed.code).toBe(4001)
    expect(
      c.got
        .slice(1)
        .flat()
        .map((f: any) => f.Operator),
    ).toEqual(['Quote', 'SessionEnd'])
  })
})

describe('receive path: what a handler sees (README, "What a handler sees")', () => {
  it('killed in the background: every frame once, in order, across the cold start', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const wx = runtime({ storage, suspendDelay: 20 })
    const seen: number[] = []
    const one = client(proxy.url(), wx, seen)
    await until(() => one.b.state === 'ready', 'ready')
    for (let n = 1; n <= 5; n++) await server.push('alice', 'Quote', { n })
    await until(() => seen.length === 5, 'live')
    wx.control.hide()
    await until(() => server.connections('alice') === 0, 'suspended')
    for (let n = 6; n <= 10; n++) await server.push('alice', 'Quote', { n })
    wx.control.kill()
    for (let n = 11; n <= 15; n++) await server.push('alice', 'Quote', { n })
    const two = client(proxy.url(), runtime({ storage }), seen)
    await until(() => seen.length === 15, 'the cold start')
    await server.push('alice', 'Quote', { n: 16 }) // a marker: a repeat would arrive before it
    await until(() => seen.length >= 16, 'the marker')
    expect(seen).toEqual(range(1, 16))
    expect(two.resyncs).toEqual([])
  })

  it('a crash in the foreground while a message is handled: the rest of that message is not handled, nothing twice', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const wx = runtime({ storage })
    const seen: number[] = []
    let alive = true
    const b = bus({
      url: proxy.url(),
      platform: wx,
      login: () => ({ op: 'userLogin', payload: { openId: 'alice' } }),
      ready,
      ...fast,
    })
    // What a dead process's handlers did is gone with it.
    b.on('Quote', (f: any) => {
      if (!alive) return
      seen.push(f.n)
      if (f.n === 30) {
        wx.control.kill()
        alive = false
      }
    })
    await until(() => b.state === 'ready', 'ready')
    await server.push('alice', 'Quote', { n: 0 })
    await until(() => seen.length === 1, 'live')
    wx.control.offline()
    await until(() => server.connections('alice') === 0, 'dropped')
    // A replay of 50 in one message; the process dies at the 30th.
    for (let n = 1; n <= 50; n++) await server.push('alice', 'Quote', { n })
    wx.control.online()
    await until(() => !alive, 'the crash')
    b.close()
    for (let n = 51; n <= 55; n++) await server.push('alice', 'Quote', { n })
    client(proxy.url(), runtime({ storage }), seen)
    await until(() => seen.length === 31 + 5, 'the cold start')
    await server.push('alice', 'Quote', { n: 56 }) // a marker: a repeat would arrive before it
    await until(() => seen.length >= 31 + 6, 'the marker')
    expect(seen).toEqual(range(0, 30).concat(range(51, 56)))
  })

  it('storage that fails: reported, every frame handled, no repeat in this life; a cold start sees the frames since the last good write again', async () => {
    const { server, proxy } = await start()
    const storage = createStorageArea()
    const wx = runtime({ storage, totalLimit: 64 * 1024 })
    const seen: number[] = []
    const one = client(proxy.url(), wx, seen)
    const errors: string[] = []
    one.b.events.on('error', (e) => void errors.push(e.code))
    await until(() => one.b.state === 'ready', 'ready')
    await server.push('alice', 'Quote', { n: 1 })
    await until(() => seen.length === 1, 'stored')
    // The storage fills up (something else of the app's): every later write fails.
    storage.set('filler', JSON.stringify('x'.repeat(64 * 1024)))
    for (let n = 2; n <= 5; n++) await server.push('alice', 'Quote', { n })
    await until(() => seen.length === 5, 'handled')
    expect(errors).toContain('STORAGE_FULL')
    // A reconnect resumes from memory: no repeat in this life. (The drop and the way back can both
    // fall between two looks at the state: the state events say it happened.)
    let dropped = false
    one.b.events.on('state', (e) => {
      if (e.from === 'ready') dropped = true
    })
    proxy.reset()
    await until(() => dropped, 'dropped')
    await until(() => one.b.state === 'ready', 'back')
    await server.push('alice', 'Quote', { n: 6 })
    await until(() => seen.length === 6, 'live')
    expect(seen).toEqual(range(1, 6))
    // A cold start (the space freed) resumes from the last good write: 2..6 again, never fewer.
    wx.control.kill()
    storage.delete('filler')
    const again: number[] = []
    client(proxy.url(), runtime({ storage }), again)
    await until(() => again.length === 5, 'the cold start')
    expect(again).toEqual(range(2, 6))
  })
})

// Two `createBus` in one mini program (one `wx`, one storage, the default prefix), against the
// wx runtime, the test server and the fault proxy: each sends its own messages under its own
// login; what one leaves when closed, and what both leave when the app is killed, is sent by the
// bus of the next cold start at once. Nothing lost, nothing sent by two buses.
import { describe, expect, it, vi } from 'vitest'
import { createStorageArea } from '../src/testing/index'
import { bus, fast, framesOf, runtime, startServer } from './helpers/e2e'
import { until } from './helpers/time'

const ready = { ok: 'LoginOK', fail: ['LoginError', 'BanLogin'], timeout: 1000 }
const ACK = { ack: { op: 'Ack', idKey: 'MsgId' } }
const login = (userCode: string) => () => ({ op: 'userLogin', payload: { userCode } })

describe('two buses in one mini program', () => {
  it('interleaved sends, one closed, a kill and a cold start: every message once, each under its own login, in order', async () => {
    const { server, proxy } = await startServer(ACK)
    const area = createStorageArea()
    const wx = runtime({ storage: area })
    const options = { url: proxy.url(), platform: wx, ready, ack: true, ...fast }
    const a = bus({ ...options, login: login('a') })
    const b = bus({ ...options, login: login('b') })
    await until(() => a.state === 'ready' && b.state === 'ready', 'both ready')
    const sends: Promise<unknown>[] = []
    for (let i = 0; i < 5; i++)
      sends.push(a.send('Chat', { who: 'a', n: i }), b.send('Chat', { who: 'b', n: i }))
    await Promise.all(sends)
    // Offline: both queue, interleaved; then a is closed with its messages unsent.
    wx.control.offline()
    await until(() => a.state !== 'ready' && b.state !== 'ready', 'both offline')
    for (let i = 5; i < 10; i++) {
      a.send('Chat', { who: 'a', n: i }).catch(() => {})
      b.send('Chat', { who: 'b', n: i }).catch(() => {})
      await null // a's write lands before b's next one (the outbox commits in a microtask)
    }
    a.close()
    expect(b.queued).toBe(5)
    wx.control.kill()
    // The cold start: one bus sends what both left, at once: on a clock that stands still, so
    // nothing that waits for a timer (a backoff, a lease running out) can be part of it.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    const again = runtime({ storage: area })
    const c = bus({ ...options, platform: again, login: login('c') })
    const chats = () => framesOf(server, 'Chat')
    await until(() => chats().length >= 20, '20 messages').finally(() => vi.useRealTimers())
    // A last message after them on the same link: anything sent twice would arrive before it.
    await c.send('Chat', { who: 'c', n: 0 })
    // Which user each connection logged in as.
    const user = new Map<number, string>()
    for (const r of server.received)
      if (r.frame?.Operator === 'userLogin') user.set(r.client, r.frame.userCode)
    const got = server.received.filter((r) => r.frame?.Operator === 'Chat' && r.frame.who !== 'c')
    const firsts = got.filter((r, i) => got.findIndex((x) => x.frame.MsgId === r.frame.MsgId) === i)
    expect(firsts.length).toBe(20)
    for (const who of ['a', 'b']) {
      const mine = firsts.filter((r) => r.frame.who === who)
      expect(mine.map((r) => r.frame.n)).toEqual([...Array(10).keys()])
      // While both were open, each message went under its own sender's login; after, under c's.
      expect(mine.slice(0, 5).every((r) => user.get(r.client) === who)).toBe(true)
      expect(mine.slice(5).every((r) => user.get(r.client) === 'c')).toBe(true)
    }
    // Repeats only of the same id (the server drops them): nothing else was sent twice.
    expect(new Set(got.map((r) => `${r.frame.who}${r.frame.n}`)).size).toBe(20)
    expect(area.keys().filter((k) => k.includes('@'))).toEqual([])
  })
})

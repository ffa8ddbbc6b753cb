import { describe, expect, it } from 'vitest'
import WebsocketHeartbeat from '../src/compat/index'
import { framesOf, runtime, startServer } from './helpers/e2e'
import { skip, until, useSteppedClock } from './helpers/time'

describe('mpbus/compat (websocket-heartbeat-miniprogram API)', () => {
  it('refuses to start without miniprogram or url, like the original', async () => {
    await expect(WebsocketHeartbeat({} as any)).rejects.toThrow(/miniprogram/)
    await expect(WebsocketHeartbeat({ miniprogram: runtime() } as any)).rejects.toThrow(/url/)
  })

  it('keeps text sent while offline and flushes it in order, with the raw frames untouched', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime()
    wx.control.offline()
    const task = await WebsocketHeartbeat({
      miniprogram: wx,
      connectSocketParams: { url: proxy.url() },
      pingTimeout: 200,
    })
    const ok: string[] = []
    for (const text of ['a', 'b', 'c']) task.send({ data: text, success: () => ok.push(text) })
    await wx.control.flush() // the task has heard everything the runtime told it
    wx.control.online()
    await until(() => ok.length === 3, 'sends settle')
    // `success` means the socket took the bytes; they reach the server a moment later.
    const texts = () => server.received.map((r) => r.frame).filter((f) => typeof f === 'string')
    await until(() => texts().length === 3, 'frames at the server')
    expect(texts()).toEqual(['a', 'b', 'c'])
    task.close()
  })

  it('calls the hooks, delivers messages as {data}, and stays closed after close() during a reconnect delay', async () => {
    const { server, proxy } = await startServer()
    useSteppedClock()
    const wx = runtime()
    const task = await WebsocketHeartbeat({
      miniprogram: wx,
      connectSocketParams: { url: proxy.url() },
      reconnectTimeout: 300,
    })
    const seen: string[] = []
    task.onOpen = () => seen.push('open')
    task.onMessage = (event) => seen.push(`message:${event.data}`)
    task.onReconnect = () => seen.push('reconnect')
    await until(() => seen.includes('open'), 'open')
    server.broadcast('hello')
    await until(() => seen.includes('message:hello'), 'message')
    proxy.refuse()
    proxy.reset()
    await until(() => seen.includes('reconnect'), 'reconnect scheduled')
    task.close()
    proxy.pass()
    await skip(10_000) // far past the 300 ms reconnect delay: a reconnect would hold a socket now
    expect(wx.control.liveSockets()).toBe(0)
    expect(framesOf(server, 'x')).toHaveLength(0)
  })
})

describe('mpbus/compat: several tasks in one app', () => {
  it('keeps the offline queues of two tasks on two servers apart', async () => {
    // Both tasks persist through the same wx storage: with one fixed key prefix, the second task
    // loaded the first one's queue and sent its text to the wrong server.
    const a = await startServer()
    const b = await startServer()
    const wx = runtime()
    wx.control.offline()
    const chat = await WebsocketHeartbeat({ miniprogram: wx, connectSocketParams: { url: a.proxy.url() } })
    const ok: string[] = []
    chat.send({ data: 'for-a', success: () => ok.push('a') })
    await wx.control.flush() // the queue is in storage now
    const news = await WebsocketHeartbeat({ miniprogram: wx, connectSocketParams: { url: b.proxy.url() } })
    news.send({ data: 'for-b', success: () => ok.push('b') })
    await wx.control.flush()
    wx.control.online()
    await until(() => ok.length === 2, 'both sends settle')
    await until(() => a.server.received.length && b.server.received.length, 'frames at both servers')
    // A last text on each task: a frame one of them sent to the wrong server comes before its own.
    chat.send({ data: 'last-a' })
    news.send({ data: 'last-b' })
    const got = (s: typeof a) => s.server.received.map((r) => r.frame)
    await until(() => got(a).includes('last-a') && got(b).includes('last-b'), 'the last texts')
    expect(got(a).filter((f) => f !== 'last-a')).toEqual(['for-a'])
    expect(got(b).filter((f) => f !== 'last-b')).toEqual(['for-b'])
    chat.close()
    news.close()
  })

  it('reconnects after any server close, as websocket-heartbeat-miniprogram does (no stop codes)', async () => {
    const { server, proxy } = await startServer()
    const wx = runtime()
    const task = await WebsocketHeartbeat({
      miniprogram: wx,
      connectSocketParams: { url: proxy.url() },
      reconnectTimeout: 50,
    })
    let opens = 0
    task.onOpen = () => opens++
    await until(() => opens === 1, 'open')
    server.closeAll(4001, 'bye')
    await until(() => opens === 2, 'reopened after a 4001 close')
    task.close()
  })
})

import type { AddressInfo } from 'node:net'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type WebSocket, WebSocketServer } from 'ws'
import {
  createStorageArea,
  createWxRuntime,
  type WxRuntime,
  type WxSocketTask,
} from '../../src/testing/index'
import { until } from '../helpers/time'

let server: WebSocketServer
let url: string
let peers: WebSocket[]
let serverGot: Array<{ data: string | Buffer; binary: boolean }>
let serverCloses: Array<{ code: number; reason: string }>
const runtimes: WxRuntime[] = []

beforeEach(async () => {
  // Fresh arrays bound to this test's server: late events of the last test's server land elsewhere.
  const [p, got, closes]: [WebSocket[], typeof serverGot, typeof serverCloses] = [[], [], []]
  peers = p
  serverGot = got
  serverCloses = closes
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  server.on('connection', (ws) => {
    p.push(ws)
    ws.on('message', (data: Buffer, binary) => got.push({ data: binary ? data : data.toString(), binary }))
    ws.on('close', (code, reason) => closes.push({ code, reason: reason.toString() }))
  })
  await new Promise((resolve) => server.once('listening', resolve))
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterEach(async () => {
  vi.useRealTimers()
  for (const wx of runtimes.splice(0)) wx.control.kill()
  for (const ws of server.clients) ws.terminate()
  await new Promise((resolve) => server.close(resolve))
})

function runtime(options?: Parameters<typeof createWxRuntime>[0]) {
  const wx = createWxRuntime(options)
  runtimes.push(wx)
  return wx
}

/** A task with every event recorded in order. */
function connect(wx: WxRuntime, target = url) {
  const log: Array<[string, any]> = []
  const call: Array<[string, any]> = []
  const task = wx.connectSocket({
    url: target,
    success: (res) => call.push(['success', res]),
    fail: (res) => call.push(['fail', res]),
  })
  task.onOpen((res) => log.push(['open', res]))
  task.onMessage((res) => log.push(['message', res]))
  task.onError((res) => log.push(['error', res]))
  task.onClose((res) => log.push(['close', res]))
  const opened = () => until(() => log.some(([e]) => e === 'open'), 'open')
  const closed = () => until(() => log.find(([e]) => e === 'close')?.[1], 'close')
  return { task, log, call, opened, closed }
}

describe('wx SocketTask', () => {
  it('has only the documented methods: no off*, no readyState', () => {
    const task = runtime().connectSocket({ url })
    expect(Object.keys(task).sort()).toEqual(['close', 'onClose', 'onError', 'onMessage', 'onOpen', 'send'])
    expect((task as any).offMessage).toBeUndefined()
    expect((task as any).readyState).toBeUndefined()
  })

  it('fails a send before open through fail with an errMsg, asynchronously, then complete', async () => {
    const wx = runtime()
    const { task, opened } = connect(wx)
    const seen: string[] = []
    task.send({
      data: 'early',
      success: () => seen.push('success'),
      fail: (res) => seen.push(`fail:${res.errMsg}`),
      complete: () => seen.push('complete'),
    })
    expect(seen).toEqual([])
    await until(() => seen.length === 2, 'send callbacks')
    expect(seen).toEqual(['fail:sendSocketMessage:fail WebSocket is not connected', 'complete'])
    await opened()
    expect(serverGot).toEqual([])
  })

  it('carries text and binary both ways, to every listener, with WeChat result shapes', async () => {
    const wx = runtime()
    const { task, log, call, opened } = connect(wx)
    const second: unknown[] = []
    task.onMessage((res) => second.push(res.data))
    await opened()
    expect(call).toEqual([['success', { errMsg: 'connectSocket:ok' }]])
    expect(log[0]![1]).toMatchObject({ header: expect.any(Object), profile: {} })

    const sent: string[] = []
    task.send({ data: 'hello', success: (res) => sent.push(res.errMsg) })
    task.send({ data: new Uint8Array([1, 2, 255]).buffer })
    await until(() => serverGot.length === 2 && sent.length === 1, 'server receives')
    expect(sent).toEqual(['sendSocketMessage:ok'])
    expect(serverGot[0]).toEqual({ data: 'hello', binary: false })
    expect(serverGot[1]!.binary).toBe(true)
    expect([...(serverGot[1]!.data as Buffer)]).toEqual([1, 2, 255])

    peers[0]!.send('{"Operator":"Hi"}')
    peers[0]!.send(Buffer.from([9, 8, 7]))
    await until(() => second.length === 2, 'client receives')
    expect(second[0]).toBe('{"Operator":"Hi"}')
    expect(second[1]).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(second[1] as ArrayBuffer)]).toEqual([9, 8, 7])
    expect(log.filter(([e]) => e === 'message').map(([, r]) => Object.keys(r))).toEqual([['data'], ['data']])
  })

  it('refuses typed arrays: WeChat takes only string or ArrayBuffer', async () => {
    const wx = runtime()
    const { task, opened } = connect(wx)
    await opened()
    const errs: string[] = []
    task.send({ data: new Uint8Array([1]) as any, fail: (res) => errs.push(res.errMsg) })
    await until(() => errs.length === 1, 'fail')
    expect(errs[0]).toMatch(/^sendSocketMessage:fail parameter error/)
  })

  it('reports a server close with its code and reason', async () => {
    const wx = runtime()
    const { log, opened, closed } = connect(wx)
    await opened()
    peers[0]!.close(4001, 'bye')
    expect(await closed()).toEqual({ code: 4001, reason: 'bye' })
    expect(log.map(([e]) => e)).toEqual(['open', 'close'])
    expect(wx.control.liveSockets()).toBe(0)
  })

  it('closes from the client with the given code and reason, and reports the close', async () => {
    const wx = runtime()
    const { task, opened, closed } = connect(wx)
    await opened()
    const res: string[] = []
    task.close({ code: 4000, reason: 'done', success: (r) => res.push(r.errMsg) })
    expect(wx.control.liveSockets()).toBe(0)
    expect(await closed()).toEqual({ code: 4000, reason: 'done' })
    expect(res).toEqual(['closeSocket:ok'])
    await until(() => serverCloses.length === 1, 'server close')
    expect(serverCloses[0]).toEqual({ code: 4000, reason: 'done' })
  })

  it('fails a connect that is refused with onError, then onClose 1006', async () => {
    const wx = runtime()
    const port = (server.address() as AddressInfo).port
    await new Promise((resolve) => server.close(resolve))
    const { log, closed } = connect(wx, `ws://127.0.0.1:${port}`)
    expect(await closed()).toEqual({ code: 1006, reason: 'abnormal closure' })
    expect(log.map(([e]) => e)).toEqual(['error', 'close'])
    expect(log[0]![1].errMsg).toMatch(/^connectSocket:fail /)
    server = new WebSocketServer({ port: 0 }) // for afterEach
  })

  it('allows 5 live sockets; the 6th fails with exceed max concurrent count', async () => {
    const wx = runtime()
    const five = Array.from({ length: 5 }, () => connect(wx))
    await Promise.all(five.map((c) => c.opened()))
    expect(wx.control.liveSockets()).toBe(5)
    const sixth = connect(wx)
    await until(() => sixth.call.length === 1 && sixth.log.length === 2, 'sixth fails')
    const errMsg = 'createSocketTask:fail exceed max concurrent count'
    expect(sixth.call).toEqual([['fail', { errMsg }]])
    expect(sixth.log).toEqual([
      ['error', { errMsg }],
      ['close', { code: 1006, reason: 'abnormal closure' }],
    ])
    expect(peers.length).toBe(5)

    five[0]!.task.close({})
    const seventh = connect(wx)
    await seventh.opened()
    expect(wx.control.liveSockets()).toBe(5)
  })

  it('never calls back synchronously inside the call', () => {
    const wx = runtime()
    const seen: string[] = []
    const task = wx.connectSocket({ url, complete: () => seen.push('connect') })
    task.send({ data: 'x', complete: () => seen.push('send') })
    wx.getNetworkType({ complete: () => seen.push('network') })
    expect(seen).toEqual([])
  })
})

describe('wx storage', () => {
  it('round-trips a deep copy and returns "" for a missing key', () => {
    const wx = runtime()
    const value = { list: [1, { a: 'é' }], n: null }
    wx.setStorageSync('k', value)
    value.list.push(2)
    const read = wx.getStorageSync('k')
    expect(read).toEqual({ list: [1, { a: 'é' }], n: null })
    read.list.push(3)
    expect(wx.getStorageSync('k')).toEqual({ list: [1, { a: 'é' }], n: null })
    expect(wx.getStorageSync('missing')).toBe('')
    wx.removeStorageSync('k')
    expect(wx.getStorageSync('k')).toBe('')
  })

  it('throws setStorageSync:fail over 1 MB a key and keeps the old value', () => {
    const wx = runtime()
    wx.setStorageSync('big', 'old')
    // Size = key bytes + JSON bytes: 'big' (3) + the string's two quotes.
    const limit = 1024 * 1024
    expect(() => wx.setStorageSync('big', 'x'.repeat(limit - 4))).toThrow(/^setStorageSync:fail/)
    expect(wx.getStorageSync('big')).toBe('old')
    wx.setStorageSync('big', 'x'.repeat(limit - 5))
    expect(wx.getStorageSync('big')).toHaveLength(limit - 5)
  })

  it('throws setStorageSync:fail over 10 MB in all and keeps the old value; sizes are UTF-8 bytes', () => {
    const wx = runtime({ perKeyLimit: 100, totalLimit: 200 })
    wx.setStorageSync('a', '是'.repeat(30)) // 1 + 2 + 90 = 93 bytes
    wx.setStorageSync('b', '是'.repeat(30)) // 186 in all
    expect(() => wx.setStorageSync('c', 'x'.repeat(20))).toThrow(
      /^setStorageSync:fail exceed storage max size/,
    )
    expect(() => wx.setStorageSync('a', '是'.repeat(40))).toThrow(
      /^setStorageSync:fail exceed storage item max/,
    )
    expect(wx.getStorageSync('a')).toBe('是'.repeat(30))
    expect(wx.getStorageSync('c')).toBe('')
    // Replacing a value only counts the difference.
    wx.setStorageSync('b', '是'.repeat(32))
    expect(wx.control.storage.bytes()).toBe(93 + 99)
    expect(wx.getStorageInfoSync()).toEqual({ keys: ['a', 'b'], currentSize: 1, limitSize: 0 })
  })

  it('defaults to WeChat quotas and counts writes', () => {
    const wx = runtime()
    expect(wx.getStorageInfoSync().limitSize).toBe(10 * 1024)
    wx.setStorageSync('k', 'v')
    wx.setStorageSync('k', 'vv')
    expect(wx.control.counters).toMatchObject({ setStorageSync: 2, bytesWritten: 1 + 3 + 1 + 4 })
  })

  it('survives a kill on a shared storage area (cold start); the dead runtime writes nothing', () => {
    const area = createStorageArea()
    const first = runtime({ storage: area })
    first.setStorageSync('outbox', ['m1'])
    first.control.kill()
    first.setStorageSync('outbox', ['zombie'])
    const second = runtime({ storage: area })
    expect(second.getStorageSync('outbox')).toEqual(['m1'])
  })
})

describe('wx network', () => {
  it('offline closes live sockets with 1006, fails new connects, and online restores', async () => {
    const wx = runtime()
    const changes: unknown[] = []
    wx.onNetworkStatusChange((res) => changes.push(res))
    const live = connect(wx)
    await live.opened()

    wx.control.offline()
    expect(await live.closed()).toEqual({ code: 1006, reason: 'abnormal closure' })
    expect(changes).toEqual([{ isConnected: false, networkType: 'none' }])
    expect(wx.control.liveSockets()).toBe(0)
    await until(() => serverCloses.length === 1, 'server sees the drop')
    expect(serverCloses[0]!.code).toBe(1006)

    const types: string[] = []
    wx.getNetworkType({ success: (res) => types.push(res.networkType) })
    const failed = connect(wx)
    await failed.closed()
    expect(failed.log.map(([e]) => e)).toEqual(['error', 'close'])
    expect(failed.call[0]![0]).toBe('fail')
    expect(peers.length).toBe(1)
    expect(types).toEqual(['none'])

    wx.control.online()
    await connect(wx).opened()
    expect(changes).toEqual([
      { isConnected: false, networkType: 'none' },
      { isConnected: true, networkType: 'wifi' },
    ])
  })

  it('offNetworkStatusChange removes a listener', async () => {
    const wx = runtime()
    const seen: unknown[] = []
    const fn = (res: unknown) => seen.push(res)
    wx.onNetworkStatusChange(fn)
    wx.offNetworkStatusChange(fn)
    wx.control.offline()
    await wx.control.flush()
    expect(seen).toEqual([])
  })
})

describe('wx lifecycle', () => {
  it('closes sockets with 1000 "interrupted" 5 s after hide, and refuses connects while suspended', async () => {
    const wx = runtime({ suspend: 'whileHidden', resumeFailMs: 0 })
    const events: string[] = []
    wx.onAppHide(() => events.push('hide'))
    wx.onAppShow(() => events.push('show'))
    const c = connect(wx)
    await c.opened()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    wx.control.hide()
    await wx.control.flush()
    expect(events).toEqual(['hide'])
    vi.advanceTimersByTime(4999)
    await wx.control.flush() // a close it had scheduled would have been delivered now
    expect(c.log.map(([e]) => e)).toEqual(['open'])
    vi.advanceTimersByTime(1)
    expect(await c.closed()).toEqual({ code: 1000, reason: 'interrupted' })
    expect(wx.control.liveSockets()).toBe(0)
    await until(() => serverCloses.length === 1, 'server sees the close')
    expect(serverCloses[0]).toEqual({ code: 1000, reason: 'interrupted' })

    const during = connect(wx)
    await during.closed()
    expect(during.log[0]![1].errMsg).toMatch(/interrupted in suspend state/)

    wx.control.show()
    await connect(wx).opened()
    expect(events).toEqual(['hide', 'show'])
  })

  it('keeps sockets when the app is shown again within 5 s', async () => {
    const wx = runtime({ suspendDelay: 50 })
    const c = connect(wx)
    await c.opened()
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    wx.control.hide()
    await wx.control.flush()
    vi.advanceTimersByTime(20)
    wx.control.show()
    await wx.control.flush()
    vi.advanceTimersByTime(10_000) // far past the suspend delay: the cancelled suspend does nothing
    await wx.control.flush()
    expect(c.log.map(([e]) => e)).toEqual(['open'])
    expect(wx.control.liveSockets()).toBe(1)
    c.task.send({ data: 'still here' })
    await until(() => serverGot.length === 1, 'send after show')
  })

  it('offAppHide removes a listener', async () => {
    const wx = runtime()
    const seen: string[] = []
    const fn = () => seen.push('hide')
    wx.onAppHide(fn)
    wx.offAppHide(fn)
    wx.control.hide()
    await wx.control.flush()
    expect(seen).toEqual([])
  })
})

describe('wx kill', () => {
  it('destroys every socket and never calls back again', async () => {
    const wx = runtime({ suspendDelay: 10 })
    const seen: string[] = []
    wx.onNetworkStatusChange(() => seen.push('network'))
    wx.onAppHide(() => seen.push('hide'))
    const open = connect(wx)
    await open.opened()
    const task: WxSocketTask = open.task
    peers[0]!.send('queued before the kill')
    task.send({ data: 'x', complete: () => seen.push('send') })
    wx.control.hide()
    wx.control.kill()
    expect(wx.control.liveSockets()).toBe(0)
    wx.control.offline()
    wx.getNetworkType({ complete: () => seen.push('getNetworkType') })
    const late = connect(wx)
    await until(() => serverCloses.length === 1, 'server sees the socket die')
    await wx.control.flush() // whatever it had scheduled has had its turn
    expect(seen).toEqual([])
    expect(open.log.map(([e]) => e)).toEqual(['open'])
    expect(late.log).toEqual([])
    expect(late.call).toEqual([])
  })
})

describe('wx quirks by option (docs/platforms.md)', () => {
  it('closeCode replaces the server close code the app sees (1005, 1006); faithful by default', async () => {
    for (const [closeCode, seen] of [
      [undefined, 4001],
      [1005, 1005],
      [1006, 1006],
    ] as const) {
      const wx = runtime(closeCode ? { closeCode } : {})
      const c = connect(wx)
      await c.opened()
      peers.at(-1)!.close(4001, 'bye')
      expect((await c.closed()).code).toBe(seen)
    }
  })

  it('by default a close before open is ignored: the task opens later and holds its slot', async () => {
    const wx = runtime({ maxSockets: 1 })
    const c = connect(wx)
    c.task.close({})
    await c.opened()
    expect(wx.control.liveSockets()).toBe(1)
    const second = connect(wx)
    await second.closed()
    expect(second.call[0]![1].errMsg).toMatch(/exceed max concurrent count/)
    c.task.close({})
    await c.closed()
    expect(wx.control.liveSockets()).toBe(0)
  })

  it("closeWhileConnecting: 'effective' closes at once (the kind model)", async () => {
    const wx = runtime({ closeWhileConnecting: 'effective' })
    const c = connect(wx)
    c.task.close({ code: 1000 })
    expect(await c.closed()).toEqual({ code: 1000, reason: '' })
    expect(c.log.map(([e]) => e)).toEqual(['close'])
  })

  it('by default a suspended app hears nothing until show, then the close; connects fail briefly after', async () => {
    const wx = runtime({ suspendDelay: 20 })
    const c = connect(wx)
    await c.opened()
    const shows: number[] = []
    wx.onAppShow(() => shows.push(c.log.length))
    wx.control.hide()
    await until(() => wx.control.liveSockets() === 0, 'the suspension closed the socket') // 20 ms
    await wx.control.flush()
    expect(c.log.map(([e]) => e)).toEqual(['open'])
    wx.control.show()
    await c.closed()
    // showFirst: onAppShow ran while the close was still held.
    expect(shows).toEqual([1])
    const early = connect(wx)
    await early.closed()
    expect(early.call[0]![1].errMsg).toMatch(/interrupted in suspend state/)
    // After the resume window, connects open again.
    const tryOnce = () => {
      const c = connect(wx)
      return Promise.race([c.opened().then(() => true), c.closed().then(() => undefined)])
    }
    await until(tryOnce, 'a connect after the resume window')
  })
})

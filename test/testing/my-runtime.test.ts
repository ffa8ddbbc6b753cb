import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createMyRuntime, createStorageArea, type MyRuntime } from '../../src/testing/index'
import { rawServer } from '../helpers/servers'
import { until } from '../helpers/time'

let srv: Awaited<ReturnType<typeof rawServer>>
const runtimes: MyRuntime[] = []

beforeEach(async () => {
  srv = await rawServer()
})

afterEach(async () => {
  for (const my of runtimes.splice(0)) my.control.kill()
  await srv.close()
})

function runtime(options?: Parameters<typeof createMyRuntime>[0]) {
  const my = createMyRuntime(options)
  runtimes.push(my)
  return my
}

function task(my: MyRuntime) {
  const log: Array<[string, any]> = []
  const t = my.connectSocket({ url: srv.url, multiple: true })
  t.onOpen((res) => log.push(['open', res]))
  t.onMessage((res) => log.push(['message', res]))
  t.onError((res) => log.push(['error', res]))
  t.onClose((res) => log.push(['close', res]))
  const opened = () => until(() => log.some(([e]) => e === 'open'), 'open')
  return { t, log, opened }
}

describe('my SocketTask (multiple: true)', () => {
  it('has off* methods that remove listeners', async () => {
    const my = runtime()
    const t = my.connectSocket({ url: srv.url, multiple: true })
    expect(Object.keys(t).sort()).toEqual(
      [
        'close',
        'offClose',
        'offError',
        'offMessage',
        'offOpen',
        'onClose',
        'onError',
        'onMessage',
        'onOpen',
        'send',
      ].sort(),
    )
    const seen: string[] = []
    const a = () => seen.push('a')
    t.onOpen(a)
    t.onOpen(() => seen.push('b'))
    t.offOpen(a)
    await until(() => seen.length > 0, 'open')
    await my.control.flush() // every listener the open reached has run
    expect(seen).toEqual(['b'])
  })

  it('fails a send before open with error 10, in the object shape', async () => {
    const my = runtime()
    const { t } = task(my)
    const res: unknown[] = []
    t.send({ data: 'x', fail: (r) => res.push(r) })
    expect(res).toEqual([])
    await until(() => res.length === 1, 'fail')
    expect(res[0]).toEqual({ error: 10, errorMessage: '网络连接没有打开，无法发送消息' })
  })

  it('delivers nested {data: {data, isBuffer}} by default, binary as base64', async () => {
    const my = runtime()
    const { t, log, opened } = task(my)
    await opened()
    srv.peers[0]!.send('text')
    srv.peers[0]!.send(Buffer.from([1, 2, 3]))
    await until(() => log.filter(([e]) => e === 'message').length === 2, 'messages')
    const msgs = log.filter(([e]) => e === 'message').map(([, r]) => r)
    expect(msgs[0]).toEqual({ data: { data: 'text', isBuffer: false, socketTaskID: expect.any(Number) } })
    expect(msgs[1]).toEqual({ data: { data: 'AQID', isBuffer: true, socketTaskID: expect.any(Number) } })

    t.send({ data: 'up' })
    t.send({ data: Buffer.from([7, 8]).toString('base64'), isBuffer: true })
    const refused: unknown[] = []
    t.send({ data: new Uint8Array([9]).buffer, fail: (e) => refused.push(e) })
    await until(() => refused.length === 1, 'an ArrayBuffer refused by default')
    expect(refused[0]).toMatchObject({ error: 2 })
    const mine = runtime({ arrayBufferSend: true })
    const other = task(mine)
    await other.opened()
    other.t.send({ data: new Uint8Array([9]).buffer })
    await until(() => srv.got.length === 3, 'server receives')
    expect(srv.got[0]).toEqual({ data: 'up', binary: false })
    expect([...(srv.got[1]!.data as Buffer)]).toEqual([7, 8])
    expect([...(srv.got[2]!.data as Buffer)]).toEqual([9])
  })

  it("delivers flat {data, isBuffer} with messageShape: 'flat'", async () => {
    const my = runtime({ messageShape: 'flat' })
    const { log, opened } = task(my)
    await opened()
    srv.peers[0]!.send('text')
    await until(() => log.some(([e]) => e === 'message'), 'message')
    expect(log.find(([e]) => e === 'message')![1]).toEqual({ data: 'text', isBuffer: false })
  })

  it('reports a refused connect as {error, errorMessage} then close, and allows 5 tasks', async () => {
    const my = runtime({ closeShape: 'flat' })
    const five = Array.from({ length: 5 }, () => task(my))
    await Promise.all(five.map((c) => c.opened()))
    const fails: unknown[] = []
    my.connectSocket({ url: srv.url, multiple: true, fail: (r) => fails.push(r) })
    await until(() => fails.length === 1, 'sixth fails')
    expect(fails[0]).toMatchObject({ error: expect.any(Number), errorMessage: expect.any(String) })
    expect(srv.peers.length).toBe(5)
    await srv.close()
    for (const c of five) await until(() => c.log.some(([e]) => e === 'close'), 'close')
    const refused = task(my)
    await until(() => refused.log.length === 2, 'refused')
    expect(refused.log[0]![0]).toBe('error')
    expect(refused.log[0]![1]).toEqual({ error: expect.any(Number), errorMessage: expect.any(String) })
    expect(refused.log[1]).toEqual(['close', { code: 1006, reason: 'abnormal closure' }])
  })
})

describe('my single global socket', () => {
  it('returns undefined and drives my.onSocket* / sendSocketMessage / closeSocket', async () => {
    const my = runtime()
    const log: string[] = []
    my.onSocketOpen(() => log.push('open'))
    my.onSocketMessage((res) => log.push(`message:${res.data}:${res.isBuffer}`))
    my.onSocketClose((res) => log.push(`close:${res.code}`))
    const early: unknown[] = []
    my.sendSocketMessage({ data: 'early', fail: (r) => early.push(r) })
    expect(my.connectSocket({ url: srv.url })).toBeUndefined()
    await until(() => log.includes('open'), 'open')
    expect(early).toEqual([{ error: 10, errorMessage: '网络连接没有打开，无法发送消息' }])
    my.sendSocketMessage({ data: 'hi' })
    await until(() => srv.got.length === 1, 'server receives')
    srv.peers[0]!.send('back')
    await until(() => log.includes('message:back:false'), 'message')
    my.closeSocket({ code: 1000 })
    await until(() => log.includes('close:1000'), 'close')
  })

  it('a second connect replaces the first, which goes silent', async () => {
    const my = runtime()
    const log: string[] = []
    my.onSocketOpen(() => log.push('open'))
    my.onSocketClose(() => log.push('close'))
    my.connectSocket({ url: srv.url })
    await until(() => log.length === 1, 'first open')
    my.connectSocket({ url: srv.url })
    await until(() => log.length === 2, 'second open')
    await until(() => srv.closes.length === 1, 'first closed at the server')
    await my.control.flush() // a close of the first that leaked would have been delivered now
    expect(log).toEqual(['open', 'open'])
    my.sendSocketMessage({ data: 'to the second' })
    await until(() => srv.got.length === 1, 'send')
  })

  it('offSocketOpen() with no listener removes them all', async () => {
    const my = runtime()
    const log: string[] = []
    my.onSocketOpen(() => log.push('a'))
    my.onSocketOpen(() => log.push('b'))
    my.offSocketOpen()
    my.onSocketOpen(() => log.push('c'))
    my.connectSocket({ url: srv.url })
    await until(() => log.length > 0, 'open')
    await my.control.flush() // every listener the open reached has run
    expect(log).toEqual(['c'])
  })
})

describe('my storage', () => {
  it('takes objects, returns {data}, and null for a missing key', () => {
    const my = runtime()
    expect(my.setStorageSync({ key: 'k', data: { a: [1] } })).toEqual({ success: true })
    expect(my.getStorageSync({ key: 'k' })).toEqual({ data: { a: [1] } })
    expect(my.getStorageSync({ key: 'nope' })).toEqual({ data: null })
    my.removeStorageSync({ key: 'k' })
    expect(my.getStorageSync({ key: 'k' })).toEqual({ data: null })
  })

  it('returns error 14 over 200 KB a key without throwing, and keeps the old value', () => {
    const my = runtime()
    my.setStorageSync({ key: 'k', data: 'old' })
    const res = my.setStorageSync({ key: 'k', data: 'x'.repeat(200 * 1024) })
    expect(res).toEqual({ success: false, error: 14, errorMessage: 'data长度超限' })
    expect(my.getStorageSync({ key: 'k' }).data).toBe('old')
    expect(my.setStorageSync({ key: 'k', data: 'x'.repeat(200 * 1024 - 3) })).toEqual({ success: true })
  })

  it('returns error 12 over the total and keeps the old value', () => {
    const my = runtime({ totalLimit: 300 })
    my.setStorageSync({ key: 'a', data: 'x'.repeat(200) })
    const res = my.setStorageSync({ key: 'b', data: 'x'.repeat(100) })
    expect(res).toEqual({ success: false, error: 12, errorMessage: '存储总大小达到上限' })
    expect(my.getStorageSync({ key: 'b' })).toEqual({ data: null })
    expect(my.getStorageInfoSync()).toEqual({ keys: ['a'], currentSize: 1, limitSize: 0 })
  })

  it('shares a storage area across a kill', () => {
    const area = createStorageArea()
    const first = runtime({ storage: area })
    first.setStorageSync({ key: 'k', data: 1 })
    first.control.kill()
    expect(first.setStorageSync({ key: 'k', data: 2 })).toEqual({ success: true })
    expect(runtime({ storage: area }).getStorageSync({ key: 'k' })).toEqual({ data: 1 })
  })
})

describe('my network and lifecycle', () => {
  it('reports Alipay network types and closes sockets when offline', async () => {
    const my = runtime({ closeShape: 'flat' })
    const changes: unknown[] = []
    my.onNetworkStatusChange((res) => changes.push(res))
    const { log, opened } = task(my)
    await opened()
    my.control.offline()
    await until(() => log.some(([e]) => e === 'close'), 'close')
    expect(log.find(([e]) => e === 'close')![1]).toEqual({ code: 1006, reason: 'abnormal closure' })
    const types: unknown[] = []
    my.getNetworkType({ success: (res) => types.push(res) })
    await until(() => types.length === 1, 'getNetworkType')
    expect(types[0]).toEqual({ networkAvailable: false, networkType: 'NOTREACHABLE' })
    expect(changes).toEqual([{ isConnected: false, networkType: 'NOTREACHABLE' }])
  })

  it('closes with 1000 interrupted after hide, and off* stops lifecycle listeners', async () => {
    const my = runtime({ suspendDelay: 20, closeShape: 'flat' })
    const seen: string[] = []
    const onHide = () => seen.push('hide')
    my.onAppHide(onHide)
    my.onAppShow(() => seen.push('show'))
    const { log, opened } = task(my)
    await opened()
    my.control.hide()
    await until(() => log.some(([e]) => e === 'close'), 'close')
    expect(log.find(([e]) => e === 'close')![1]).toEqual({ code: 1000, reason: 'interrupted' })
    my.offAppHide(onHide)
    my.control.show()
    my.control.hide()
    await my.control.flush()
    expect(seen).toEqual(['hide', 'show'])
  })
})

describe('my quirks by option (docs/platforms.md)', () => {
  it("closeShape 'nested' (default): a task's close carries no code, its error nests the task id", async () => {
    const my = runtime()
    const { log, opened } = task(my)
    await opened()
    my.control.offline()
    await until(() => log.some(([e]) => e === 'close'), 'close')
    expect(log.find(([e]) => e === 'close')![1]).toEqual({ data: { socketTaskID: expect.any(Number) } })
  })

  it("storageResult 'ios' omits success; storageField 'APDataStorage' moves the value", () => {
    const my = runtime({ storageResult: 'ios', storageField: 'APDataStorage', perKeyLimit: 10 })
    expect(my.setStorageSync({ key: 'k', data: 'x'.repeat(20) })).toEqual({
      error: 14,
      errorMessage: expect.any(String),
    })
    my.setStorageSync({ key: 'k', data: 'v' })
    expect(my.getStorageSync({ key: 'k' })).toEqual({ data: null, APDataStorage: 'v' })
  })

  it('maxSockets limits the live tasks', async () => {
    const my = runtime({ maxSockets: 2 })
    await Promise.all([task(my).opened(), task(my).opened()])
    const fails: unknown[] = []
    my.connectSocket({ url: srv.url, multiple: true, fail: (r) => fails.push(r) })
    await until(() => fails.length === 1, 'third fails')
  })
})

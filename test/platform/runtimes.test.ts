/**
 * The adapters over the test runtimes of src/testing (faithful wx and Alipay fakes on real `ws`
 * sockets) against a real test server: the documented shapes end to end.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { MpbusError } from '../../src/errors'
import { alipayPlatform, miniProgramPlatform } from '../../src/platform/mini-program'
import type { Platform, Socket, SocketData } from '../../src/platform/types'
import { createMyRuntime, createTestServer, createWxRuntime, type TestServer } from '../../src/testing'
import { recorder } from '../helpers/platform-fakes'
import { until } from '../helpers/time'

let server: TestServer
const runtimes: { control: { kill(): void; flush(): Promise<void> } }[] = []

beforeEach(async () => {
  server = await createTestServer()
})

afterEach(async () => {
  for (const r of runtimes.splice(0)) r.control.kill()
  await server.close()
})

function track<T extends { control: { kill(): void; flush(): Promise<void> } }>(rt: T): T {
  runtimes.push(rt)
  return rt
}

/** Sends and checks that `done` came exactly once. */
async function sendP(s: Socket, data: SocketData): Promise<MpbusError | undefined> {
  const calls: (MpbusError | undefined)[] = []
  s.send(data, (e) => calls.push(e))
  await until(() => calls.length > 0)
  // Every callback the runtimes scheduled has run: a second `done` would have come by now.
  for (const rt of runtimes) await rt.control.flush()
  expect(calls).toHaveLength(1)
  return calls[0]
}

function login(p: Platform) {
  const r = recorder()
  const s = p.connect(server.url, r.listeners)
  return { r, s }
}

describe('miniProgramPlatform over createWxRuntime', () => {
  it('opens, logs in and gets LoginOK; send done once; nothing after close()', async () => {
    const wx = track(createWxRuntime())
    const { r, s } = login(miniProgramPlatform(wx))
    const early = await sendP(s, 'too early')
    expect(early?.code).toBe('SOCKET_ERROR')
    expect(early?.message).toMatch(/^sendSocketMessage:fail/)
    await until(() => r.names().includes('open'))
    expect(await sendP(s, JSON.stringify({ Operator: 'userLogin', userOpenId: 'u1' }))).toBeUndefined()
    await until(() => r.names().includes('message'))
    expect(JSON.parse(r.events[1]![1]).Operator).toBe('LoginOK')
    expect(server.received.map((f) => f.frame.Operator)).toEqual(['userLogin'])
    s.close()
    server.broadcast({ Operator: 'late' })
    await until(() => server.clients() === 0)
    await wx.control.flush()
    expect(r.names()).toEqual(['open', 'message'])
  })

  it('reports the server closing, and a replaced task never reaches the new listeners', async () => {
    const wx = track(createWxRuntime())
    const p = miniProgramPlatform(wx)
    const a = login(p)
    await until(() => a.r.names().includes('open'))
    a.s.close(4000, 'replaced')
    const b = login(p)
    await until(() => b.r.names().includes('open'))
    server.closeAll(4001, 'bye')
    await until(() => b.r.names().includes('close'))
    await wx.control.flush()
    expect(a.r.names()).toEqual(['open'])
    expect(b.r.events.at(-1)).toEqual(['close', { code: 4001, reason: 'bye' }])
  })

  it('going offline closes the socket (1006), reports offline, and fails new connects', async () => {
    const wx = track(createWxRuntime())
    const p = miniProgramPlatform(wx)
    const net: boolean[] = []
    p.watchNetwork!((on) => net.push(on))
    const { r } = login(p)
    await until(() => r.names().includes('open'))
    wx.control.offline()
    await until(() => r.names().includes('close'))
    expect(r.events.at(-1)![1].code).toBe(1006)
    expect(net).toEqual([false])
    const again = login(p)
    await until(() => again.r.events.length > 0)
    await wx.control.flush()
    expect(again.r.names()).toEqual(['error'])
    expect((again.r.events[0]![1] as MpbusError).message).toMatch(/^connectSocket:fail/)
    wx.control.online()
    await wx.control.flush()
    expect(net).toEqual([false, true])
  })

  it('hide closes the socket with 1000 interrupted after the suspend delay', async () => {
    const wx = track(createWxRuntime({ suspendDelay: 30, suspend: 'whileHidden' }))
    const p = miniProgramPlatform(wx)
    const app: boolean[] = []
    p.watchApp!((v) => app.push(v))
    const { r } = login(p)
    await until(() => r.names().includes('open'))
    wx.control.hide()
    await until(() => r.names().includes('close'))
    expect(r.events.at(-1)).toEqual(['close', { code: 1000, reason: 'interrupted' }])
    wx.control.show()
    await wx.control.flush()
    expect(app).toEqual([false, true])
  })

  it('storage: quota throws become STORAGE_FULL, the old value stays, and it survives a kill', () => {
    const wx = createWxRuntime({ perKeyLimit: 64 })
    const s = miniProgramPlatform(wx).storage!
    s.set('outbox', 'old')
    expect(() => s.set('outbox', 'x'.repeat(100))).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    expect(s.get('outbox')).toBe('old')
    expect(s.get('missing')).toBeUndefined()
    wx.setStorageSync('theirs', { n: 1 })
    expect(s.get('theirs')).toBeUndefined()
    wx.control.kill()
    const cold = miniProgramPlatform(createWxRuntime({ storage: wx.control.storage })).storage!
    expect(cold.get('outbox')).toBe('old')
    expect(cold.keys().sort()).toEqual(['outbox', 'theirs'])
    cold.del('outbox')
    expect(cold.keys()).toEqual(['theirs'])
  })
})

describe('alipayPlatform over createMyRuntime', () => {
  for (const messageShape of ['nested', 'flat'] as const) {
    it(`receives text and base64 binary (${messageShape} messages) on a multiple task`, async () => {
      const my = track(createMyRuntime({ messageShape }))
      const { r, s } = login(alipayPlatform(my))
      await until(() => r.names().includes('open'))
      expect(await sendP(s, JSON.stringify({ Operator: 'userLogin' }))).toBeUndefined()
      await until(() => r.names().includes('message'))
      expect(JSON.parse(r.events[1]![1]).Operator).toBe('LoginOK')
      server.broadcast(new Uint8Array([0, 250, 7]))
      await until(() => r.events.length === 3)
      expect(r.events[2]![1]).toBeInstanceOf(ArrayBuffer)
      expect([...new Uint8Array(r.events[2]![1])]).toEqual([0, 250, 7])
      // Binary goes up as base64 with isBuffer: the runtime refuses an ArrayBuffer, as documented.
      expect(await sendP(s, new Uint8Array([1, 2, 250]).buffer)).toBeUndefined()
      await until(() =>
        server.received.some((f) => Buffer.isBuffer(f.frame) && f.frame.equals(Buffer.from([1, 2, 250]))),
      )
      s.close()
      await until(() => server.clients() === 0)
      await my.control.flush()
      expect(r.events).toHaveLength(3)
    })
  }

  it('falls back to the one global socket when connectSocket gives no task', async () => {
    const my = track(createMyRuntime())
    // An old base library: `multiple` is ignored and nothing comes back.
    const old = Object.assign(Object.create(my), {
      connectSocket: (o: any) => my.connectSocket({ ...o, multiple: false }),
    })
    const p = alipayPlatform(old)
    const a = login(p)
    await until(() => a.r.names().includes('open'))
    const b = login(p)
    await until(() => b.r.names().includes('open'))
    expect(await sendP(b.s, JSON.stringify({ Operator: 'Heart' }))).toBeUndefined()
    await until(() => b.r.names().includes('message'))
    expect(JSON.parse(b.r.events[1]![1]).Operator).toBe('HeartOK')
    await until(() => server.clients() === 1)
    server.closeAll(4003, 'server')
    await until(() => b.r.names().includes('close'))
    expect(b.r.events.at(-1)).toEqual(['close', { code: 4003, reason: 'server' }])
    expect(a.r.names()).toEqual(['open'])
  })

  it('storage: error 14 becomes STORAGE_FULL with the old value intact', () => {
    const my = createMyRuntime({ perKeyLimit: 64 })
    const s = alipayPlatform(my).storage!
    s.set('k', 'old')
    expect(() => s.set('k', 'y'.repeat(100))).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    expect(s.get('k')).toBe('old')
    expect(s.get('nope')).toBeUndefined()
    expect(s.keys()).toEqual(['k'])
    my.control.kill()
  })

  it('reports offline at start from getNetworkType (networkAvailable: false)', async () => {
    const my = track(createMyRuntime())
    my.control.offline()
    const net: boolean[] = []
    alipayPlatform(my).watchNetwork!((on) => net.push(on))
    await my.control.flush()
    expect(net).toEqual([false])
  })
})

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { MpbusError } from '../../src/errors'
import { alipayPlatform } from '../../src/platform/mini-program'
import { fakeMy, recorder } from '../helpers/platform-fakes'
import { tick } from '../helpers/time'

// The fakes answer later on a 0 ms timer (getNetworkType, Taro's Promise): `tick` runs it.
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('alipayPlatform with multiple: true tasks', () => {
  it('asks for a task and normalises nested base64 data and {error, errorMessage}', () => {
    const my = fakeMy()
    const r = recorder()
    const p = alipayPlatform(my)
    expect(p.name).toBe('my')
    p.connect('wss://x', r.listeners)
    expect(my.calls[0]).toMatchObject({ url: 'wss://x', multiple: true })
    const t = my.tasks[0]
    t.fire('Open')
    t.fire('Message', { data: { socketTaskID: 1, data: 'AAEC/w==', isBuffer: true } })
    t.fire('Message', { data: 'flat' })
    t.fire('Error', { error: 11, errorMessage: '消息发送失败' })
    expect(r.names()).toEqual(['open', 'message', 'message', 'error'])
    expect([...new Uint8Array(r.events[1]![1])]).toEqual([0, 1, 2, 255])
    expect(r.events[2]![1]).toBe('flat')
    const e = r.events[3]![1] as MpbusError
    expect([e.code, e.message]).toEqual(['SOCKET_ERROR', '消息发送失败'])
  })

  it('sends, closes with 1000 and ignores the task afterwards', () => {
    const my = fakeMy()
    const r = recorder()
    const s = alipayPlatform(my).connect('wss://x', r.listeners)
    const t = my.tasks[0]
    t.fire('Open')
    const done: unknown[] = []
    s.send('hello', (err) => done.push(err))
    s.close()
    t.fire('Message', { data: 'stale' })
    t.fire('Close', { code: 1000, reason: '' })
    expect(t.sent).toEqual(['hello'])
    expect(done).toEqual([undefined])
    expect(t.closed[0].code).toBe(1000)
    expect(r.names()).toEqual(['open'])
  })
})

describe('alipayPlatform on the single global socket (no task)', () => {
  it('uses the global handlers and sendSocketMessage', () => {
    const my = fakeMy({ single: true })
    const r = recorder()
    const s = alipayPlatform(my).connect('wss://x', r.listeners)
    my.fireGlobal('Open')
    my.fireGlobal('Message', { data: 'AQI=', isBuffer: true })
    const done: unknown[] = []
    s.send('x', (e) => done.push(e))
    expect(my.globalSent).toEqual(['x'])
    expect(done).toEqual([undefined])
    expect([...new Uint8Array(r.events[1]![1])]).toEqual([1, 2])
    my.fireGlobal('Close', { code: 1000, reason: '' })
    expect(r.names()).toEqual(['open', 'message', 'close'])
  })

  it('closes the previous socket and clears its handlers before the next connect', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    const a = recorder()
    p.connect('wss://x', a.listeners)
    my.fireGlobal('Open')
    const b = recorder()
    p.connect('wss://x', b.listeners)
    expect(my.closes).toBe(1)
    for (const n of ['Open', 'Message', 'Close', 'Error']) expect(my.globalCount(n)).toBe(1)
    // the old socket's close arrives late, at the new handlers: it is not the new socket's close
    my.fireGlobal('Close', { code: 1000, reason: '' })
    my.fireGlobal('Open')
    my.fireGlobal('Message', { data: 'new' })
    expect(a.names()).toEqual(['open'])
    expect(b.names()).toEqual(['open', 'message'])
    my.fireGlobal('Close', { code: 1006, reason: '' })
    expect(b.names()).toEqual(['open', 'message', 'close'])
  })

  it('forgets an owed close once the new socket opens (a replaced socket may never report it)', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    p.connect('wss://x', recorder().listeners)
    my.fireGlobal('Open')
    const b = recorder()
    p.connect('wss://x', b.listeners)
    my.fireGlobal('Open')
    my.fireGlobal('Close', { code: 1006, reason: '' })
    expect(b.names()).toEqual(['open', 'close'])
  })

  it('owes no close for a socket the platform already closed', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    p.connect('wss://x', recorder().listeners)
    my.fireGlobal('Close', { code: 1006, reason: '' })
    const b = recorder()
    p.connect('wss://x', b.listeners)
    expect(my.closes).toBe(0)
    my.fireGlobal('Close', { code: 1006, reason: '' })
    expect(b.names()).toEqual(['close'])
  })

  it('counts the close owed by close() even when it arrives before the next connect', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    const a = recorder()
    const s = p.connect('wss://x', a.listeners)
    s.close()
    expect(my.closes).toBe(1)
    my.fireGlobal('Close', { code: 1000, reason: '' })
    const b = recorder()
    p.connect('wss://x', b.listeners)
    expect(my.closes).toBe(1)
    my.fireGlobal('Close', { code: 1006, reason: '' })
    expect(a.names()).toEqual([])
    expect(b.names()).toEqual(['close'])
  })

  it('closes a global socket that failed, and its close after the error does not end the next one', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    const a = recorder()
    const s = p.connect('wss://x', a.listeners)
    my.fireGlobal('Open')
    my.fireGlobal('Error', { error: 11, errorMessage: 'send failed' })
    s.close()
    // an errored WebSocket may still be up: it is closed before the next connect
    expect(my.closes).toBe(1)
    const b = recorder()
    p.connect('wss://x', b.listeners)
    // the failed socket reports its close after the new handlers are on
    my.fireGlobal('Close', { code: 1006, reason: '' })
    my.fireGlobal('Open')
    expect(a.names()).toEqual(['open', 'error'])
    expect(b.names()).toEqual(['open'])
  })

  it('closing a replaced socket does not close the current one', () => {
    const my = fakeMy({ single: true })
    const p = alipayPlatform(my)
    const old = p.connect('wss://x', recorder().listeners)
    p.connect('wss://x', recorder().listeners)
    expect(my.closes).toBe(1)
    old.close()
    expect(my.closes).toBe(1)
  })
})

describe('alipayPlatform storage ({key, data} form)', () => {
  it('round-trips, lists and deletes', () => {
    const s = alipayPlatform(fakeMy()).storage!
    s.set('a', 'v')
    expect(s.get('a')).toBe('v')
    expect(s.get('missing')).toBeUndefined()
    expect(s.keys()).toEqual(['a'])
    s.del('a')
    expect(s.keys()).toEqual([])
  })

  it('maps error 14 (and 12) to STORAGE_FULL, keeping the old value', () => {
    const my = fakeMy({ perKey: 5 })
    const s = alipayPlatform(my).storage!
    s.set('k', 'old')
    expect(() => s.set('k', '123456')).toThrow(
      expect.objectContaining({ code: 'STORAGE_FULL', message: 'data长度超限' }),
    )
    expect(s.get('k')).toBe('old')
    my.setStorageSync = () => ({ success: false, error: 12, errorMessage: '存储总大小达到上限' })
    expect(() => s.set('k', 'x')).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
  })

  it('maps other failures, returned or thrown, to STORAGE_ERROR', () => {
    const my = fakeMy()
    const s = alipayPlatform(my).storage!
    my.setStorageSync = () => ({ success: false, error: 11, errorMessage: '参数错误' })
    expect(() => s.set('k', 'x')).toThrow(
      expect.objectContaining({ code: 'STORAGE_ERROR', message: '参数错误' }),
    )
    my.setStorageSync = () => {
      throw new Error('boom')
    }
    expect(() => s.set('k', 'x')).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR' }))
  })
})

describe('alipayPlatform network and app', () => {
  it('reads networkAvailable: false as offline at start', async () => {
    const my = fakeMy()
    const seen: boolean[] = []
    alipayPlatform(my).watchNetwork!((on) => seen.push(on))
    await tick()
    my.fireLife('NetworkStatusChange', { isConnected: true, networkType: 'WIFI' })
    expect(seen).toEqual([false, true])
  })

  it('reports hide and show', () => {
    const my = fakeMy()
    const seen: boolean[] = []
    const stop = alipayPlatform(my).watchApp!((v) => seen.push(v))
    my.fireLife('AppHide')
    my.fireLife('AppShow', {})
    stop()
    my.fireLife('AppHide')
    expect(seen).toEqual([false, true])
  })
})

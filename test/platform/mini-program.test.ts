import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../../src/errors'
import { miniProgramPlatform } from '../../src/platform/mini-program'
import { fakeMiniProgram, recorder } from '../helpers/platform-fakes'
import { tick } from '../helpers/time'

// The fakes answer later on a 0 ms timer (getNetworkType, Taro's Promise): `tick` runs it.
beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

describe('miniProgramPlatform sockets (documented shapes)', () => {
  it('attaches all four listeners before connect returns', () => {
    const api = fakeMiniProgram()
    const r = recorder()
    miniProgramPlatform(api).connect('wss://x', r.listeners)
    const t = api.tasks[0]
    for (const n of ['Open', 'Message', 'Close', 'Error']) expect(t.count(n)).toBe(1)
    expect(api.calls[0].url).toBe('wss://x')
    t.fire('Open', { header: {} })
    t.fire('Message', { data: 'hi' })
    t.fire('Close', { code: 1000, reason: 'interrupted' })
    expect(r.events).toEqual([['open'], ['message', 'hi'], ['close', { code: 1000, reason: 'interrupted' }]])
  })

  it('passes a callback so uni-app returns the task instead of a Promise', () => {
    const api = fakeMiniProgram({ kind: 'uni' })
    const r = recorder()
    const s = miniProgramPlatform(api, 'uni').connect('wss://x', r.listeners)
    api.tasks[0].fire('Open')
    expect(r.names()).toEqual(['open'])
    let ok = false
    s.send('ping', (e) => {
      ok = !e
    })
    expect(ok).toBe(true)
    expect(api.tasks[0].sent).toEqual(['ping'])
  })

  it('normalises Douyin string close codes', () => {
    const api = fakeMiniProgram({ kind: 'tt' })
    const r = recorder()
    miniProgramPlatform(api, 'tt').connect('wss://x', r.listeners)
    api.tasks[0].fire('Close', { code: '1001', reason: 'background' })
    expect(r.events).toEqual([['close', { code: 1001, reason: 'background' }]])
  })

  it('turns {errMsg} into SOCKET_ERROR, from onError and from a refused connect', () => {
    for (const via of ['onError', 'fail']) {
      const api = fakeMiniProgram({ kind: 'swan' })
      const r = recorder()
      miniProgramPlatform(api, 'swan').connect('wss://x', r.listeners)
      const err = { errMsg: 'connectSocket:fail url not in domain list' }
      if (via === 'fail') api.calls[0].fail(err)
      else api.tasks[0].fire('Error', err)
      api.tasks[0].fire('Close', { code: 1006, reason: '' })
      expect(r.names()).toEqual(['error'])
      const e = r.events[0]![1] as MpbusError
      expect(e).toBeInstanceOf(MpbusError)
      expect(e.code).toBe('SOCKET_ERROR')
      expect(e.message).toBe(err.errMsg)
      expect(e.cause).toBe(err)
    }
  })

  it('ignores every event of a task after close() (wx tasks cannot remove listeners)', () => {
    const api = fakeMiniProgram()
    const p = miniProgramPlatform(api)
    const old = recorder()
    const s1 = p.connect('wss://x', old.listeners)
    api.tasks[0].fire('Open')
    s1.close(4001, 'replaced')
    expect(api.tasks[0].closed).toEqual([{ code: 4001, reason: 'replaced' }])
    const cur = recorder()
    p.connect('wss://x', cur.listeners)
    // the replaced task keeps firing into its listeners: they must stay silent
    api.tasks[0].fire('Message', { data: 'stale' })
    api.tasks[0].fire('Close', { code: 1000, reason: 'normal closure' })
    api.tasks[0].fire('Error', { errMsg: 'x' })
    api.tasks[1].fire('Open')
    expect(old.names()).toEqual(['open'])
    expect(cur.names()).toEqual(['open'])
  })

  it('ignores events after the platform closed the task', () => {
    const api = fakeMiniProgram()
    const r = recorder()
    miniProgramPlatform(api).connect('wss://x', r.listeners)
    const t = api.tasks[0]
    t.fire('Open')
    t.fire('Close', { code: 1006, reason: 'abnormal closure' })
    t.fire('Message', { data: 'late' })
    t.fire('Error', { errMsg: 'late' })
    t.fire('Close', { code: 1000, reason: '' })
    expect(r.names()).toEqual(['open', 'close'])
  })

  it('close defaults to code 1000 and never throws', () => {
    const api = fakeMiniProgram()
    const s = miniProgramPlatform(api).connect('wss://x', recorder().listeners)
    s.close()
    expect(api.tasks[0].closed[0].code).toBe(1000)
    api.tasks[0].close = () => {
      throw new Error('closeSocket:fail')
    }
    expect(() => s.close()).not.toThrow()
  })

  it('calls send done once, with SOCKET_ERROR on fail', () => {
    const api = fakeMiniProgram()
    const s = miniProgramPlatform(api).connect('wss://x', recorder().listeners)
    api.tasks[0].failSend = true
    const got: unknown[] = []
    s.send('x', (e) => got.push(e))
    expect(got).toHaveLength(1)
    expect((got[0] as MpbusError).code).toBe('SOCKET_ERROR')
  })

  it('throws when the platform gives no task, so the caller counts a failed connect', () => {
    const api = fakeMiniProgram()
    api.connectSocket = () => undefined
    expect(() => miniProgramPlatform(api).connect('wss://x', recorder().listeners)).toThrow(MpbusError)
  })
})

describe('miniProgramPlatform on Taro (a Promise of the task)', () => {
  it('attaches when the Promise resolves and sees onOpen normally', async () => {
    const api = fakeMiniProgram({ kind: 'taro', readyState: true })
    const r = recorder()
    const s = miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    const early: unknown[] = []
    s.send('too early', (e) => early.push(e?.code))
    expect(early).toEqual(['SOCKET_ERROR'])
    await tick()
    api.tasks[0].fire('Open')
    api.tasks[0].fire('Message', { data: 'm' })
    expect(r.names()).toEqual(['open', 'message'])
  })

  it('reports open when onOpen fired before the Promise resolved (readyState OPEN)', async () => {
    const api = fakeMiniProgram({ kind: 'taro', readyState: true, openBeforeResolve: true })
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    await tick()
    expect(r.names()).toEqual(['open'])
  })

  it('without readyState, takes the first frame as the missed open', async () => {
    const api = fakeMiniProgram({ kind: 'taro', openBeforeResolve: true })
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    await tick()
    expect(r.names()).toEqual([])
    api.tasks[0].fire('Message', { data: 'LoginOK' })
    expect(r.events).toEqual([['open'], ['message', 'LoginOK']])
  })

  it('reports a close that happened before the Promise resolved', async () => {
    const api = fakeMiniProgram({ kind: 'taro' })
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    api.tasks[0].readyState = 3
    await tick()
    expect(r.names()).toEqual(['close'])
  })

  it('closes a task that arrives after close() and reports nothing', async () => {
    const api = fakeMiniProgram({ kind: 'taro', readyState: true, openBeforeResolve: true })
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners).close()
    await tick()
    expect(api.tasks[0].closed).toHaveLength(1)
    expect(r.names()).toEqual([])
  })

  it('reports a Promise that gives no task (Taro on Alipay) as SOCKET_ERROR at once', async () => {
    const api = fakeMiniProgram({ kind: 'taro' })
    api.connectSocket = () => Promise.resolve(undefined)
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    await tick()
    expect(r.names()).toEqual(['error'])
    expect((r.events[0]![1] as MpbusError).code).toBe('SOCKET_ERROR')
  })

  it('reports a rejected Promise as SOCKET_ERROR', async () => {
    const api = fakeMiniProgram({ kind: 'taro' })
    api.connectSocket = () => Promise.reject({ errMsg: 'connectSocket:fail' })
    const r = recorder()
    miniProgramPlatform(api, 'taro').connect('wss://x', r.listeners)
    await tick()
    expect(r.names()).toEqual(['error'])
    expect((r.events[0]![1] as MpbusError).message).toBe('connectSocket:fail')
  })
})

describe('miniProgramPlatform storage ((key, data) form)', () => {
  it('round-trips strings and lists keys', () => {
    const api = fakeMiniProgram()
    const s = miniProgramPlatform(api).storage!
    s.set('a', '1')
    s.set('b', '2')
    expect(s.get('a')).toBe('1')
    expect(s.keys().sort()).toEqual(['a', 'b'])
    s.del('a')
    expect(s.get('a')).toBeUndefined()
    expect(s.keys()).toEqual(['b'])
  })

  it('reads a missing key (wx answers "") and foreign non-string data as undefined', () => {
    const api = fakeMiniProgram()
    api.map.set('theirs', { some: 'object' })
    const s = miniProgramPlatform(api).storage!
    expect(s.get('missing')).toBeUndefined()
    expect(s.get('theirs')).toBeUndefined()
  })

  it('maps a quota throw to STORAGE_FULL and leaves the old value', () => {
    const api = fakeMiniProgram({ perKey: 10 })
    const s = miniProgramPlatform(api).storage!
    s.set('k', 'old')
    expect(() => s.set('k', 'x'.repeat(11))).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    expect(s.get('k')).toBe('old')
  })

  it('maps other throws to STORAGE_ERROR', () => {
    const api = fakeMiniProgram()
    api.getStorageSync = () => {
      throw { errMsg: 'getStorageSync:fail data parse error' }
    }
    expect(() => miniProgramPlatform(api).storage!.get('k')).toThrow(
      expect.objectContaining({ code: 'STORAGE_ERROR', message: 'getStorageSync:fail data parse error' }),
    )
  })

  it('has no storage when the API has none', () => {
    const api = fakeMiniProgram()
    delete api.setStorageSync
    expect(miniProgramPlatform(api).storage).toBeUndefined()
  })
})

describe('miniProgramPlatform network and app', () => {
  it('reports changes, the initial offline state, and stops after unsubscribe', async () => {
    const api = fakeMiniProgram({ networkType: 'none' })
    const seen: boolean[] = []
    const stop = miniProgramPlatform(api).watchNetwork!((on) => seen.push(on))
    await tick()
    expect(seen).toEqual([false])
    api.fireLife('NetworkStatusChange', { isConnected: true, networkType: 'wifi' })
    stop()
    api.fireLife('NetworkStatusChange', { isConnected: false, networkType: 'none' })
    expect(seen).toEqual([false, true])
  })

  it('says nothing at start when online, and ignores a stale initial answer after a change', async () => {
    const online = fakeMiniProgram()
    const a: boolean[] = []
    miniProgramPlatform(online).watchNetwork!((on) => a.push(on))
    await tick()
    expect(a).toEqual([])
    const offline = fakeMiniProgram({ networkType: 'none' })
    const b: boolean[] = []
    miniProgramPlatform(offline).watchNetwork!((on) => b.push(on))
    offline.fireLife('NetworkStatusChange', { isConnected: true })
    await tick()
    expect(b).toEqual([true])
  })

  it('stays silent after unsubscribe even without off* (old base libraries)', () => {
    const api = fakeMiniProgram({ offLifecycle: false })
    const seen: boolean[] = []
    const p = miniProgramPlatform(api)
    const stopNet = p.watchNetwork!((on) => seen.push(on))
    const stopApp = p.watchApp!((v) => seen.push(v))
    api.fireLife('AppHide')
    api.fireLife('AppShow')
    stopNet()
    stopApp()
    api.fireLife('AppHide')
    api.fireLife('NetworkStatusChange', { isConnected: false })
    expect(seen).toEqual([false, true])
  })

  it('removes its handlers with off* when the API has them', () => {
    const api = fakeMiniProgram()
    const p = miniProgramPlatform(api)
    const calls: string[] = []
    for (const n of ['offAppShow', 'offAppHide', 'offNetworkStatusChange']) {
      const f = api[n]
      api[n] = (h: any) => {
        calls.push(n)
        f(h)
      }
    }
    p.watchApp!(() => {})()
    p.watchNetwork!(() => {})()
    expect(calls.sort()).toEqual(['offAppHide', 'offAppShow', 'offNetworkStatusChange'])
  })

  it('omits watchers the API lacks', () => {
    const api = fakeMiniProgram()
    delete api.onAppShow
    delete api.onNetworkStatusChange
    const p = miniProgramPlatform(api)
    expect(p.watchApp).toBeUndefined()
    expect(p.watchNetwork).toBeUndefined()
  })
})

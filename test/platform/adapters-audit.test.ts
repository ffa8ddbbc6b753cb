/**
 * The adapter fixes for the platforms' documented quirks (docs/platforms.md), against hand-made fakes;
 * the end-to-end proofs against the emulations are in quirks.e2e.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { decodeBase64, encodeBase64 } from '../../src/platform/alipay'
import { toPlatform } from '../../src/platform/detect'
import { miniProgramPlatform } from '../../src/platform/mini-program'
import { fakeMiniProgram, fakeMy, recorder } from '../helpers/platform-fakes'

const g = globalThis as any
afterEach(() => {
  for (const n of ['my', 'uni', 'Taro', 'wx']) delete g[n]
})

describe('uni-app and Taro compiled to Alipay', () => {
  it('resolve to the native my, so connect asks for multiple: true and gets a task', () => {
    const my = fakeMy()
    g.my = my
    const uni = Object.assign(fakeMiniProgram({ kind: 'uni' }), { $on() {} })
    g.uni = uni
    const p = toPlatform(uni)
    expect(p.name).toBe('my')
    p.connect('wss://x', recorder().listeners)
    expect(my.calls[0].multiple).toBe(true)
    expect(uni.calls).toEqual([])
    const taro = Object.assign(fakeMiniProgram({ kind: 'taro' }), { getEnv() {} })
    g.Taro = taro
    expect(toPlatform(taro).name).toBe('my')
  })

  it('stay themselves where there is no my', () => {
    const uni = fakeMiniProgram({ kind: 'uni' })
    g.uni = uni
    expect(toPlatform(uni).name).toBe('uni')
  })
})

describe('detection', () => {
  it('keeps the global wx on the wx dialect even when it has offSocketClose', () => {
    const wx = Object.assign(fakeMiniProgram(), { offSocketClose() {} })
    g.wx = wx
    expect(toPlatform(wx).name).toBe('wx')
  })
})

describe('a close before open', () => {
  it('closes again a task that opens after it was given up on, and reports nothing', () => {
    const api = fakeMiniProgram()
    const r = recorder()
    const s = miniProgramPlatform(api).connect('wss://x', r.listeners)
    s.close()
    const t = api.tasks[0]
    expect(t.closed.length).toBe(1)
    t.fire('Open', {})
    expect(t.closed.length).toBe(2)
    expect(r.events).toEqual([])
  })

  it('passes the caller connect timeout where the platform documents one', () => {
    for (const [name, passed] of [
      ['wx', true],
      ['tt', true],
      ['my', true],
      ['swan', false],
      ['qq', false],
    ] as const) {
      const api = name === 'my' ? fakeMy() : fakeMiniProgram()
      miniProgramPlatform(api, name).connect('wss://x', recorder().listeners, { timeout: 7000 })
      expect(api.calls[0].timeout).toBe(passed ? 7000 : undefined)
    }
  })
})

describe('Baidu offAppShow/offAppHide take no argument', () => {
  it('are never called on swan; the handlers go silent', () => {
    const api = fakeMiniProgram({ kind: 'swan' })
    let offs = 0
    api.offAppShow = api.offAppHide = () => offs++
    const seen: boolean[] = []
    const stop = miniProgramPlatform(api, 'swan').watchApp!((v) => seen.push(v))
    api.fireLife('AppHide')
    stop()
    api.fireLife('AppShow')
    expect(offs).toBe(0)
    expect(seen).toEqual([false])
  })
})

describe('Alipay shapes', () => {
  it('sends binary as base64 with isBuffer, text as it is', () => {
    const my = fakeMy()
    const s = miniProgramPlatform(my, 'my').connect('wss://x', recorder().listeners)
    const sent: any[] = []
    my.tasks[0].send = (o: any) => {
      sent.push({ data: o.data, isBuffer: o.isBuffer })
      o.success()
    }
    s.send(new Uint8Array([1, 2, 250]).buffer)
    s.send('hi')
    expect(sent).toEqual([
      { data: 'AQL6', isBuffer: true },
      { data: 'hi', isBuffer: undefined },
    ])
  })

  it('reads a value under APDataStorage', () => {
    const my = fakeMy()
    my.getStorageSync = () => ({ data: null, APDataStorage: 'v' })
    expect(miniProgramPlatform(my, 'my').storage!.get('k')).toBe('v')
  })

  it('reads a nested close (no code) as 1005', () => {
    const my = fakeMy()
    const r = recorder()
    miniProgramPlatform(my, 'my').connect('wss://x', r.listeners)
    my.tasks[0].fire('Open', {})
    my.tasks[0].fire('Close', { data: { socketTaskID: 1 } })
    expect(r.events).toEqual([['open'], ['close', { code: 1005, reason: '' }]])
  })

  it('base64 round-trips every length', () => {
    for (let n = 0; n < 10; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 97 + 13) & 255)
      expect(encodeBase64(bytes.buffer)).toBe(Buffer.from(bytes).toString('base64'))
      expect(new Uint8Array(decodeBase64(encodeBase64(bytes.buffer)))).toEqual(bytes)
    }
  })
})

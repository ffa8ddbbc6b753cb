import { afterEach, describe, expect, it } from 'vitest'
import { detectPlatform, toPlatform } from '../../src/platform/detect'
import type { Platform } from '../../src/platform/types'
import { fakeMiniProgram, fakeMy, recorder } from '../helpers/platform-fakes'

const g = globalThis as any
const NAMES = ['my', 'tt', 'swan', 'qq', 'wx', 'uni', 'Taro', 'WebSocket']
const saved = NAMES.map((n) => [n, Object.getOwnPropertyDescriptor(g, n)] as const)

afterEach(() => {
  for (const [n, d] of saved) {
    if (d) Object.defineProperty(g, n, d)
    else delete g[n]
  }
})

function stub(names: string[]) {
  const apis: Record<string, any> = {}
  for (const n of names)
    apis[n] = g[n] = n === 'my' ? fakeMy() : fakeMiniProgram({ kind: n === 'Taro' ? 'taro' : 'wx' })
  return apis
}

describe('detectPlatform', () => {
  it('throws NO_PLATFORM when nothing is there (Node 20 has no WebSocket)', () => {
    delete g.WebSocket
    expect(() => detectPlatform()).toThrow(expect.objectContaining({ code: 'NO_PLATFORM' }))
  })

  it('prefers a native global over a wx shim, and wx over uni and Taro', () => {
    const cases: [string[], string][] = [
      [['wx', 'uni', 'Taro'], 'wx'],
      [['my', 'wx'], 'my'],
      [['qq', 'wx'], 'qq'],
      [['tt', 'wx', 'Taro'], 'tt'],
      [['swan', 'uni'], 'swan'],
      [['uni', 'Taro'], 'uni'],
      [['Taro'], 'taro'],
    ]
    for (const [names, want] of cases) {
      for (const n of NAMES) delete g[n]
      const apis = stub(names)
      const p = detectPlatform()
      expect(p.name, names.join('+')).toBe(want)
      // and it drives that very object
      p.connect('wss://x', recorder().listeners)
      const used = apis[want === 'taro' ? 'Taro' : want]
      expect(used.calls).toHaveLength(1)
    }
  })

  it('skips a global without connectSocket and falls back to the browser WebSocket', () => {
    delete g.wx
    g.my = { someone: 'else' }
    g.WebSocket = function WebSocket() {}
    expect(detectPlatform().name).toBe('websocket')
  })
})

describe('toPlatform', () => {
  it('returns a ready Platform as it is', () => {
    const p: Platform = { name: 'mine', connect: () => ({ send() {}, close() {} }) }
    expect(toPlatform(p)).toBe(p)
  })

  it('picks the Alipay adapter for the my global and for an Alipay-like object', () => {
    const my = fakeMy()
    g.my = my
    expect(toPlatform(my).name).toBe('my')
    delete g.my
    // not the global: told by offSocketClose (docs/platforms.md)
    const p = toPlatform(fakeMy())
    expect(p.name).toBe('my')
    // object-form storage proves the adapter: a wx adapter would call setStorageSync(key, data)
    p.storage!.set('k', 'v')
    expect(p.storage!.get('k')).toBe('v')
  })

  it('keeps uni and Taro on the wx dialect even when they forward offSocketClose', () => {
    const uni = Object.assign(fakeMiniProgram(), { offSocketClose() {}, $on() {} })
    const taro = Object.assign(fakeMiniProgram({ kind: 'taro' }), { offSocketClose() {}, getEnv() {} })
    expect(toPlatform(uni).name).toBe('wx')
    expect(toPlatform(taro).name).toBe('wx')
    g.uni = uni
    expect(toPlatform(uni).name).toBe('uni')
  })

  it("takes Taro's and uni-app's web builds for the browser: compiled Taro H5, tree-shaken uni, or with connectSocket", () => {
    g.WebSocket = function WebSocket() {}
    // A Taro H5 app as compiled: the babel plugin imports each API by name, the default object keeps getEnv.
    expect(toPlatform({ getEnv: () => 'WEB' }).name).toBe('websocket')
    // Their H5 connectSocket works, but their network events watch navigator.connection: the browser's own are used.
    const taro = Object.assign(fakeMiniProgram({ kind: 'taro' }), { getEnv: () => 'WEB' })
    expect(toPlatform(taro).name).toBe('websocket')
    g.uni = {} // a tree-shaken uni-app H5 production build
    expect(toPlatform(g.uni).name).toBe('websocket')
    g.uni = fakeMiniProgram()
    expect(detectPlatform().name).toBe('websocket')
    // Taro on a mini program says so, and keeps its adapter.
    expect(toPlatform(Object.assign(fakeMiniProgram({ kind: 'taro' }), { getEnv: () => 'WEAPP' })).name).toBe(
      'wx',
    )
    expect(() => toPlatform({ getEnv: () => 'WEAPP' })).toThrow(
      expect.objectContaining({ code: 'NO_PLATFORM' }),
    )
  })

  it('names the adapter after the global it is', () => {
    const tt = fakeMiniProgram({ kind: 'tt' })
    g.tt = tt
    expect(toPlatform(tt).name).toBe('tt')
    expect(toPlatform(fakeMiniProgram()).name).toBe('wx')
  })

  it('refuses what is neither', () => {
    for (const v of [undefined, null, {}, { connectSocket: 1 }]) {
      expect(() => toPlatform(v)).toThrow(expect.objectContaining({ code: 'NO_PLATFORM' }))
    }
  })
})

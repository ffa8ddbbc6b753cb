/**
 * The wx family's build (miniprogram_dist): alipay.ts and websocket.ts swapped for their stubs, as
 * scripts/wx-family.mjs does. The wx-family adapter keeps every behaviour of the full build that
 * its platforms can meet (frames as they come, binary sent as is, `(key, data)` storage, detection),
 * and whatever needs the swapped-out code says where to find it instead of misbehaving.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { MpbusError } from '../../src/errors'
import { detectPlatform, toPlatform } from '../../src/platform/detect'
import { alipayPlatform, miniProgramPlatform } from '../../src/platform/mini-program'
import { localStorageStorage, webSocketPlatform } from '../../src/platform/websocket'
import { fakeMiniProgram, fakeMy, recorder } from '../helpers/platform-fakes'

vi.mock('../../src/platform/alipay', () => import('../../src/platform/alipay.stub'))
vi.mock('../../src/platform/websocket', () => import('../../src/platform/websocket.stub'))

const g = globalThis as any
afterEach(() => {
  for (const n of ['my', 'wx', 'uni', 'WebSocket']) delete g[n]
})

const refused = (f: () => unknown, text: string) =>
  expect(f).toThrow(expect.objectContaining({ code: 'NO_PLATFORM', message: expect.stringContaining(text) }))

describe('the wx family build (alipay.ts and websocket.ts stubbed)', () => {
  it('wx: frames as they come, binary sent as an ArrayBuffer, (key, data) storage', () => {
    const api = fakeMiniProgram()
    const r = recorder()
    const p = miniProgramPlatform(api)
    const s = p.connect('wss://x', r.listeners, { timeout: 5000 })
    expect(api.calls[0]).toMatchObject({ url: 'wss://x', timeout: 5000 })
    expect(api.calls[0].multiple).toBeUndefined()
    const t = api.tasks[0]
    t.fire('Open')
    const bytes = new Uint8Array([0, 1, 255]).buffer
    t.fire('Message', { data: 'text' })
    t.fire('Message', { data: bytes })
    expect(r.events).toEqual([['open'], ['message', 'text'], ['message', bytes]])
    s.send(bytes)
    expect(t.sent).toEqual([bytes])
    p.storage!.set('k', 'v')
    expect(p.storage!.get('k')).toBe('v')
    expect(p.storage!.keys()).toEqual(['k'])
  })

  it('detects wx, and refuses Alipay and the browser with where to look instead', () => {
    g.wx = fakeMiniProgram()
    expect(detectPlatform().name).toBe('wx')
    expect(toPlatform(g.wx).name).toBe('wx')
    refused(() => alipayPlatform(fakeMy()), 'node_modules')
    refused(() => miniProgramPlatform(fakeMy(), 'my'), 'node_modules')
    g.my = fakeMy()
    refused(() => detectPlatform(), 'node_modules')
    refused(() => webSocketPlatform(), 'pass platform')
    refused(() => localStorageStorage(), 'pass platform')
  })

  it('takes uni in a mini program for what it is, even with a WebSocket global about', () => {
    g.WebSocket = class {}
    g.uni = fakeMiniProgram({ kind: 'uni' })
    expect(toPlatform(g.uni).name).toBe('uni')
  })

  it('a task that gives no SocketTask is an error, not the global socket', () => {
    const api = fakeMiniProgram()
    api.connectSocket = () => undefined
    expect(() => miniProgramPlatform(api).connect('wss://x', recorder().listeners)).toThrow(MpbusError)
  })
})

/**
 * The durability point at hide: the bus commits the outbox synchronously when the platform says
 * the app or page may be killed next, so a send just before (or inside) that event survives a kill
 * that comes before any timer or microtask.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { createBus } from '../src/bus'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { miniProgramPlatform } from '../src/platform/mini-program'
import type { Storage } from '../src/platform/types'
import { webSocketPlatform } from '../src/platform/websocket'
import { createStorageArea, createWxRuntime } from '../src/testing'
import { createOutbox } from './helpers/resolved'
import { createQuotaStorage } from './outbox.storage'
import { until } from './testing/util'

/** Ops of the messages a cold start on `storage` finds. */
const coldStart = (storage: Storage) =>
  createOutbox({ storage })
    .list()
    .map((e) => e.op)

const url = 'ws://127.0.0.1:1/'

describe('wx: onAppHide', () => {
  /**
   * The app's own onAppHide listener sends; the process is killed right after the hide event's
   * listeners ran, before any microtask or timer (a third listener kills it).
   */
  async function life(watchHide: boolean) {
    const area = createStorageArea()
    const wx = createWxRuntime({ storage: area })
    let bus: ReturnType<typeof createBus> | undefined
    wx.onAppHide(() => bus!.send('Bye', {}).catch(() => {}))
    const platform = miniProgramPlatform(wx)
    bus = createBus({ url, platform: watchHide ? platform : { ...platform, watchHide: undefined } })
    wx.onAppHide(() => wx.control.kill())
    wx.control.hide()
    await until(() => !!bus!.queued)
    await wx.control.flush()
    bus.close()
    return coldStart(miniProgramPlatform(createWxRuntime({ storage: area })).storage!)
  }

  it('a send in an onAppHide listener survives a kill right after the event', async () => {
    expect(await life(true)).toEqual(['Bye'])
  })

  it('(without watchHide, that kill loses it: the commit at hide is what stored it)', async () => {
    expect(await life(false)).toEqual([])
  })
})

describe('a write refused for quota, then room again', () => {
  /**
   * Storage full: the send's end-of-task write is refused (STORAGE_FULL). Room is freed, and the app
   * hides before the 500 ms retry: the commit at hide stores it, so a kill right after keeps it.
   */
  async function life(watchHide: boolean) {
    const wx = createWxRuntime()
    const storage = createQuotaStorage(0)
    const platform = miniProgramPlatform(wx)
    const bus = createBus({
      url,
      storage,
      platform: watchHide ? platform : { ...platform, watchHide: undefined },
    })
    const errors: string[] = []
    bus.events.on('error', (e) => errors.push(e.code))
    bus.send('Hi', {}).catch(() => {})
    await Promise.resolve()
    expect(errors).toContain('STORAGE_FULL')
    expect(coldStart(storage)).toEqual([])
    storage.quota = Number.POSITIVE_INFINITY
    // Killed right after the hide event's listeners (the bus's first): no timer (the retry) ran.
    let found: string[] | undefined
    wx.onAppHide(() => {
      found = coldStart(storage)
      wx.control.kill()
    })
    wx.control.hide()
    await until(() => found)
    bus.close()
    return found
  }

  it('the commit at hide retries it: a kill right after the event keeps it', async () => {
    expect(await life(true)).toEqual(['Hi'])
  })

  it('(without watchHide it waits for the retry timer, and that kill loses it)', async () => {
    expect(await life(false)).toEqual([])
  })
})

describe('mini program watchHide', () => {
  function fakeApi() {
    const hide = new Set<() => void>()
    const offCalls: unknown[][] = []
    return {
      hide,
      offCalls,
      connectSocket() {},
      onAppHide: (h: () => void) => hide.add(h),
      offAppHide: (...args: any[]) => {
        offCalls.push(args)
        if (args.length) hide.delete(args[0])
        else hide.clear()
      },
    }
  }

  it('wx: removes its own handler with offAppHide(handler)', () => {
    const api = fakeApi()
    const seen: number[] = []
    const stop = miniProgramPlatform(api, 'wx').watchHide!(() => seen.push(1))
    for (const h of api.hide) h()
    stop()
    expect(seen).toEqual([1])
    expect(api.offCalls).toHaveLength(1)
    expect(api.hide.size).toBe(0)
  })

  it('swan: never calls offAppHide (it removes every listener of the app); the handler goes silent', () => {
    const api = fakeApi()
    const other = () => {}
    api.hide.add(other)
    const seen: number[] = []
    const stop = miniProgramPlatform(api, 'swan').watchHide!(() => seen.push(1))
    stop()
    for (const h of api.hide) h()
    expect(seen).toEqual([])
    expect(api.offCalls).toEqual([])
    expect(api.hide.has(other)).toBe(true)
  })
})

describe('browser: visibilitychange to hidden, pagehide, freeze', () => {
  const g = globalThis as any
  const saved = { document: g.document, add: g.addEventListener, remove: g.removeEventListener }
  let win: EventTarget
  let doc: EventTarget & { visibilityState: string }

  function page() {
    win = new EventTarget()
    doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    g.document = doc
    g.addEventListener = win.addEventListener.bind(win)
    g.removeEventListener = win.removeEventListener.bind(win)
  }
  afterEach(() => {
    g.document = saved.document
    g.addEventListener = saved.add
    g.removeEventListener = saved.remove
  })

  it('reports each, not a change to visible, and nothing after the unsubscribe', () => {
    page()
    const seen: string[] = []
    const stop = webSocketPlatform(WebSocket, createMemoryStorage()).watchHide!(() => seen.push('hide'))
    doc.dispatchEvent(new Event('visibilitychange'))
    doc.visibilityState = 'hidden'
    doc.dispatchEvent(new Event('visibilitychange'))
    win.dispatchEvent(new Event('pagehide'))
    doc.dispatchEvent(new Event('freeze'))
    expect(seen).toEqual(['hide', 'hide', 'hide'])
    stop()
    win.dispatchEvent(new Event('pagehide'))
    doc.dispatchEvent(new Event('freeze'))
    expect(seen).toHaveLength(3)
  })

  it('a send made in a pagehide listener is stored before the page goes', () => {
    page()
    const storage = createMemoryStorage()
    const platform = webSocketPlatform(WebSocket, storage)
    // The app's own listener, added before the bus: the bus's commit runs after it.
    let bus: ReturnType<typeof createBus> | undefined
    win.addEventListener('pagehide', () => bus!.send('Bye', {}).catch(() => {}))
    bus = createBus({ url, platform })
    win.dispatchEvent(new Event('pagehide'))
    // The page is gone now: no timer or microtask runs. What is stored is what the next load sees.
    expect(coldStart(storage)).toEqual(['Bye'])
    bus.close()
  })

  it('close() removes every hide listener it added', () => {
    page()
    const live = new Set<unknown>()
    for (const target of [g, doc] as any[]) {
      const add = target.addEventListener
      const remove = target.removeEventListener
      target.addEventListener = (type: string, h: unknown) => {
        if (type !== 'online' && type !== 'offline') live.add(h)
        add.call(target, type, h)
      }
      target.removeEventListener = (type: string, h: unknown) => {
        live.delete(h)
        remove.call(target, type, h)
      }
    }
    const bus = createBus({ url, platform: webSocketPlatform(WebSocket, createMemoryStorage()) })
    expect(live.size).toBeGreaterThanOrEqual(3)
    bus.close()
    // watchApp's visibilitychange listener belongs to the transport, which removes it too.
    expect(live.size).toBe(0)
  })
})

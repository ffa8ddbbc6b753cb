// Baidu (`swan`) end to end: the wx runtime with swan's documented `offAppShow()` / `offAppHide()`,
// which take no argument and remove every listener of the app, the host app's included
// (docs/platforms.md, Baidu). mpbus must never call them, so the host's listeners outlive a bus
// that hides, shows and closes; and nothing sent across the hides is lost or reordered.
import { afterEach, expect, it } from 'vitest'
import { toPlatform } from '../../src/platform'
import { bus, fast, framesOf, runtime, startServer } from '../helpers/e2e'
import { until } from '../helpers/time'

const g = globalThis as any
afterEach(() => {
  delete g.swan
})

/** A swan global over the wx runtime: `off*` with or without a listener removes them all. */
function swanOf(wx: ReturnType<typeof runtime>) {
  const added = { show: new Set<any>(), hide: new Set<any>() }
  const calls = { offAppShow: 0, offAppHide: 0 }
  const api: any = Object.assign({}, wx, {
    onAppShow(fn: any) {
      added.show.add(fn)
      wx.onAppShow(fn)
    },
    onAppHide(fn: any) {
      added.hide.add(fn)
      wx.onAppHide(fn)
    },
    offAppShow() {
      calls.offAppShow++
      for (const fn of added.show) wx.offAppShow(fn)
      added.show.clear()
    },
    offAppHide() {
      calls.offAppHide++
      for (const fn of added.hide) wx.offAppHide(fn)
      added.hide.clear()
    },
  })
  return { api, calls }
}

it("swan: hides, shows and close() leave the host app's show/hide listeners in place; 0 lost, in order", async () => {
  const { server, proxy } = await startServer({})
  const wx = runtime({ suspendDelay: 100 })
  const { api, calls } = swanOf(wx)
  g.swan = api
  const host = { show: 0, hide: 0 }
  api.onAppShow(() => host.show++)
  api.onAppHide(() => host.hide++)

  const platform = toPlatform(api)
  const b = bus({ url: proxy.url(), platform, ack: true, ...fast })
  await until(() => b.state === 'ready', 'ready')
  const sends: Promise<unknown>[] = []
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5; i++) sends.push(b.send('Chat', { n: round * 5 + i }))
    wx.control.hide()
    await until(() => wx.control.liveSockets() === 0, 'the suspension closed the socket') // 100 ms
    wx.control.show()
  }
  await Promise.all(sends)
  const ns = framesOf(server, 'Chat').map((f) => f.n)
  expect(ns.filter((n, i) => ns.indexOf(n) === i)).toEqual([...Array(15).keys()])
  b.close()

  expect(calls).toEqual({ offAppShow: 0, offAppHide: 0 })
  const before = { ...host }
  wx.control.hide()
  wx.control.show()
  await wx.control.flush() // the runtime delivers lifecycle events in a later macrotask
  expect(host).toEqual({ show: before.show + 1, hide: before.hide + 1 })
})

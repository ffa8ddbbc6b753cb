// mpbus on Taro's own H5 runtime (@tarojs/taro-h5, Taro 4) in headless Chromium: the API object as
// a compiled Taro H5 app has it, and records that Taro's storage wrapped. The runtime is installed
// in test/h5 (its own package.json and lockfile), out of the library's install.
import { beforeAll, expect, it } from 'vitest'
import { until } from '../helpers/time'
import {
  arrived,
  chromiumPath,
  describeInChromium,
  expectOfflineThenRecovery,
  h5Bundle,
  openPageWith,
  range,
  startServer,
} from './harness'

declare const window: any
declare const mpbus: any
declare const localStorage: any
let taro = ''
beforeAll(async () => {
  if (!chromiumPath) return
  // What Taro's H5 build defines; `Taro` is the default export, the named APIs are what its babel plugin imports.
  taro = await h5Bundle(
    `import Taro, * as api from '@tarojs/taro-h5'; window.Taro = Taro; window.TaroApi = api`,
    {
      define: { 'process.env.TARO_ENV': '"h5"', 'process.env.TARO_PLATFORM': '"web"', process: '{"env":{}}' },
    },
  )
}, 120_000)
const withTaro = () => openPageWith(taro)

describeInChromium('mpbus on @tarojs/taro-h5 in Chromium', () => {
  it('platform: Taro as a compiled H5 app has it (no connectSocket) runs on the browser platform', async () => {
    const { server, proxy } = await startServer()
    const { page } = await withTaro()
    const seen = await page.evaluate((url) => {
      const shape = [typeof window.Taro.connectSocket, window.Taro.getEnv()]
      window.startBus(url, { platform: window.Taro })
      window.send(0, 10)
      return shape
    }, proxy.url())
    expect(seen).toEqual(['undefined', 'WEB'])
    await until(() => arrived(server).length >= 10, '10 messages')
    expect(arrived(server)).toEqual(range(10))
  })

  it('records Taro\'s storage wrapped (`{"data":…}`) are delivered by the browser default after a reload', async () => {
    const { server, proxy } = await startServer()
    const { page, load } = await withTaro()
    proxy.refuse()
    await page.evaluate((url) => {
      // An app that ran mpbus through Taro's own storage (its H5 setStorageSync wraps every value).
      const api = window.TaroApi
      const platform = mpbus.miniProgramPlatform(
        Object.assign({}, api, { connectSocket: api.connectSocket }),
        'taro',
      )
      window.startBus(url, { platform })
      window.send(0, 5)
    }, proxy.url())
    const stored = await until(() => page.evaluate(() => localStorage.getItem('mpbus/1')), 'the stored queue')
    expect(String(stored).slice(0, 8)).toBe('{"data":')
    await page.reload()
    await load()
    proxy.pass()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(() => arrived(server).length >= 5, '5 messages')
    expect(arrived(server)).toEqual(range(5))
  })

  it("platform: Taro with taro-h5's own connectSocket and network events: no attempts while offline, delivery soon after online", async () => {
    // Taro's H5 onNetworkStatusChange watches navigator.connection, which stays "connected" while
    // the browser is offline: the bus must use the browser's own online/offline signal.
    const { server, proxy } = await startServer()
    const { context, page } = await withTaro()
    const shape = await page.evaluate((url) => {
      const api = window.TaroApi
      window.startBus(url, { platform: api })
      return [typeof api.connectSocket, typeof api.onNetworkStatusChange, api.getEnv()]
    }, proxy.url())
    expect(shape).toEqual(['function', 'function', 'WEB'])
    await expectOfflineThenRecovery(context, page, server)
  })
})

// mpbus on uni-app's own H5 runtime (@dcloudio/uni-h5, uni-app 3, with its Vue fork) in headless
// Chromium: `platform: uni` in a tree-shaken production build (`uni = {}`) and with uni-h5's
// `connectSocket`, whose `onNetworkStatusChange` watches `navigator.connection` and so misses
// `context.setOffline`: the bus must use the browser's own signal.
import fs from 'node:fs'
import path from 'node:path'
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

let uni = ''
beforeAll(async () => {
  if (!chromiumPath) return
  // The compile-time flags uni-app's vite plugin defines; every optional UI feature off.
  const source = fs.readFileSync(
    path.join(__dirname, '../h5/node_modules/@dcloudio/uni-h5/dist/uni-h5.es.js'),
    'utf8',
  )
  const define: Record<string, string> = { __DEV__: 'false' }
  for (const flag of new Set(source.match(/\b__UNI_FEATURE_[A-Z0-9_]+__\b/g)))
    define[flag] = flag === '__UNI_FEATURE_ROUTER_MODE__' ? '"hash"' : 'false'
  uni = await h5Bundle(
    `import * as api from '@dcloudio/uni-h5'; window.uniApi = { connectSocket: api.connectSocket, setStorageSync: api.setStorageSync, getStorageSync: api.getStorageSync, removeStorageSync: api.removeStorageSync, getStorageInfoSync: api.getStorageInfoSync, onNetworkStatusChange: api.onNetworkStatusChange }`,
    // Aliases resolve from the working directory, so the fork is named by its path.
    { define, alias: { vue: path.join(__dirname, '../h5/node_modules/@dcloudio/uni-h5-vue') } },
  )
}, 120_000)

describeInChromium('mpbus on @dcloudio/uni-h5 in Chromium', () => {
  it('platform: uni in a tree-shaken build (uni = {}) runs on the browser platform', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPageWith(uni)
    await page.evaluate((url) => {
      window.uni = {}
      window.startBus(url, { platform: window.uni })
      window.send(0, 10)
    }, proxy.url())
    await until(() => arrived(server).length >= 10, '10 messages')
    expect(arrived(server)).toEqual(range(10))
  })

  it("platform: uni with uni-h5's connectSocket: no attempts while offline, delivery soon after online", async () => {
    const { server, proxy } = await startServer()
    const { context, page } = await openPageWith(uni)
    await page.evaluate((url) => {
      window.uni = window.uniApi
      window.startBus(url, { platform: window.uni })
    }, proxy.url())
    await expectOfflineThenRecovery(context, page, server)
  })
})

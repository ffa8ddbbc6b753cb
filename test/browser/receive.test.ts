// What mpbus/server pushes, received in real headless Chromium (see harness.ts): a room joined
// while the page is offline, and a tab that never logged in while another tab stored positions
// on the same localStorage. Each pushed frame is seen once, in order, by some tab.
import { expect, it } from 'vitest'
import { createServer } from '../../src/server/index'
import { createFaultProxy } from '../../src/testing/index'
import { until } from '../helpers/time'
import { describeInChromium, openPage } from './harness'

declare const window: any

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

async function start() {
  const server = await createServer({
    authenticate: (login) => (typeof login.userOpenId === 'string' ? login.userOpenId : null),
  })
  const proxies = [
    await createFaultProxy({ port: server.port }),
    await createFaultProxy({ port: server.port }),
  ]
  return {
    server,
    proxies,
    close: async () => {
      for (const proxy of proxies) await proxy.close()
      await server.close()
    },
  }
}

/** Starts the page's bus (user u1) recording its `Quote` and `Bid` frames and its resyncs. */
async function startBus(page: any, url: string) {
  await page.evaluate((u: string) => {
    window.startBus(u)
    window.quotes = []
    window.bids = []
    window.resyncs = []
    window.bus.on('Quote', (f: any) => window.quotes.push(f.n))
    window.bus.on('Bid', (f: any) => window.bids.push(f.n))
    window.bus.events.on('resync', (r: any) => window.resyncs.push(r))
  }, url)
}

const read = (page: any, what: string) => page.evaluate((w: string) => window[w], what)

describeInChromium('mpbus/server pushes in headless Chromium', () => {
  it('a room joined while the page is offline: the frames published meanwhile arrive, once, in order', async () => {
    const { server, proxies, close } = await start()
    try {
      const { context, page } = await openPage()
      await startBus(page, proxies[0]!.url())
      await until(() => page.evaluate(() => window.bus.state === 'ready'), 'ready')
      await context.setOffline(true)
      await until(() => page.evaluate(() => window.bus.state === 'offline'), 'offline')
      await until(() => server.connections('u1') === 0, 'the server saw the drop')
      await server.join('u1', 'r')
      for (let n = 1; n <= 10; n++) await server.publish('r', 'Bid', { n })
      await context.setOffline(false)
      await until(async () => (await read(page, 'bids')).length >= 10, '10 bids')
      await server.publish('r', 'Bid', { n: 11 })
      await until(async () => (await read(page, 'bids')).length >= 11, 'a live bid')
      expect(await read(page, 'bids')).toEqual(range(1, 11))
      expect(await read(page, 'resyncs')).toEqual([])
    } finally {
      await close()
    }
  })

  it('a tab that never logged in does not overwrite the position another tab stored', async () => {
    const { server, proxies, close } = await start()
    try {
      // Tab B opens on empty storage while its server is unreachable.
      const { context, page: tabB, origin } = await openPage()
      proxies[1]!.refuse()
      await startBus(tabB, proxies[1]!.url())
      // Tab A, on the same localStorage, logs in, sees 10 and closes.
      const tabA = await context.newPage()
      await tabA.goto(`${origin}/`)
      await startBus(tabA, proxies[0]!.url())
      await until(() => tabA.evaluate(() => window.bus.state === 'ready'), 'A ready')
      for (let n = 1; n <= 10; n++) await server.push('u1', 'Quote', { n })
      await until(async () => (await read(tabA, 'quotes')).length >= 10, 'A saw 10')
      await tabA.close()
      await until(() => server.connections('u1') === 0, 'A gone')
      for (let n = 11; n <= 20; n++) await server.push('u1', 'Quote', { n })
      // B finally logs in: it gets what A did not see.
      proxies[1]!.pass()
      await until(async () => (await read(tabB, 'quotes')).length >= 10, 'B saw 10')
      expect(await read(tabB, 'quotes')).toEqual(range(11, 20))
      await tabB.close()
      // A later cold start resumes after 20.
      await server.push('u1', 'Quote', { n: 21 })
      const tabC = await context.newPage()
      await tabC.goto(`${origin}/`)
      await startBus(tabC, proxies[0]!.url())
      await until(async () => (await read(tabC, 'quotes')).length >= 1, 'C saw one')
      expect(await read(tabC, 'quotes')).toEqual([21])
    } finally {
      await close()
    }
  })
})

// mpbus in real headless Chromium (see harness.ts): every test ends with all messages at the
// real server, each once, in the order they were sent.
import { expect, it } from 'vitest'
import { until } from '../helpers/time'
import {
  arrived,
  describeInChromium,
  expectOfflineThenRecovery,
  openPage,
  range,
  startServer,
} from './harness'

// Page code runs in Chromium; the Node side has no DOM types.
declare const window: any
declare const document: any
declare const localStorage: any

const diag = async (page: any, server: any) =>
  JSON.stringify({
    page: await page.evaluate(() => ({
      state: window.bus.state,
      attempts: window.attempts,
      delivered: window.delivered,
      rejected: window.rejected,
      states: window.states,
      errors: window.errors,
      log: (window.log || []).slice(0, 30),
      // What of ours is in localStorage (the quota test's filler left out).
      keys: Object.keys(localStorage).filter((k) => !k.startsWith('fill')),
    })),
    arrived: arrived(server),
  })

describeInChromium('mpbus in headless Chromium', () => {
  it('cold start: queued with the server down, reloaded, delivered by the new page', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    proxy.refuse()
    await page.evaluate((url) => {
      window.startBus(url)
      window.send(0, 20)
    }, proxy.url())
    await until(() => page.evaluate(() => window.attempts >= 2), 'refused attempts')
    await page.reload()
    proxy.pass()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(() => arrived(server).length >= 20, '20 messages')
    expect(arrived(server)).toEqual(range(20))
    await until(
      () => page.evaluate(() => !Object.keys(localStorage).some((k) => /^mpbus\/\d/.test(k))),
      'outbox records removed',
    )
  })

  it("a refused connect says what happened: Chromium's error event carries nothing", async () => {
    const { proxy } = await startServer()
    const { page } = await openPage()
    proxy.refuse()
    const messages = await page.evaluate((url) => {
      window.startBus(url)
      return new Promise((r) => window.bus.events.on('error', (e: any) => r([e.code, e.message])))
    }, proxy.url())
    expect(messages).toEqual(['SOCKET_ERROR', `WebSocket error on ${proxy.url()}, readyState 3 (closed)`])
  })

  it('offline (context.setOffline): no attempts while offline, recovery on online', async () => {
    const { server, proxy } = await startServer()
    const { context, page } = await openPage()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await expectOfflineThenRecovery(context, page, server)
  })

  it('a frozen link (fault proxy freeze) is noticed by the heartbeat and nothing is lost', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    await page.evaluate((url) => {
      window.startBus(url)
      window.send(0, 5)
    }, proxy.url())
    await until(() => arrived(server).length >= 5, 'first 5')
    proxy.freeze()
    await page.evaluate(() => window.send(5, 15))
    await until(() => page.evaluate(() => window.attempts >= 2), 'a reconnect after the heartbeat timeout')
    proxy.pass()
    await until(
      () => arrived(server).length >= 15,
      '15 messages',
      10_000,
      () => diag(page, server),
    )
    expect(arrived(server)).toEqual(range(15))
    // Each send settles on its Ack, which reaches the page a moment after the frame reached the server.
    await until(() => page.evaluate(() => window.delivered === 15), 'every send settled')
    expect(await page.evaluate(() => window.delivered)).toBe(15)
  })

  it('a hidden tab keeps working: it reconnects and sends while hidden (visibilitychange dispatched)', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(() => page.evaluate(() => window.bus.state === 'ready'), 'ready')
    // Headless Chromium has no tab strip to hide: the page's visibility is overridden and the event dispatched.
    await page.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true })
      Object.defineProperty(document, 'hidden', { value: true, configurable: true })
      document.dispatchEvent(new Event('visibilitychange'))
    })
    await page.evaluate(() => window.send(0, 5))
    await until(
      () => arrived(server).length >= 5,
      '5 messages while hidden',
      10_000,
      () => diag(page, server),
    )
    server.closeAll(1012)
    await until(
      () => page.evaluate(() => window.attempts === 2 && window.bus.state === 'ready'),
      'a reconnect while hidden',
    )
    await page.evaluate(() => window.send(5, 10))
    await until(
      () => arrived(server).length >= 10,
      '10 messages while hidden',
      10_000,
      () => diag(page, server),
    )
    expect(arrived(server)).toEqual(range(10))
  })

  it('a message sent as the server closes the link is resent on the next one', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(() => page.evaluate(() => window.bus.state === 'ready'), 'ready')
    server.closeAll(1012)
    await page.evaluate(() => window.send(0, 10))
    await until(
      () => arrived(server).length >= 10,
      '10 messages',
      10_000,
      () => diag(page, server),
    )
    expect(arrived(server)).toEqual(range(10))
  })

  it('freeze/resume (dispatched Page Lifecycle events) suspends and resumes the bus', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    await page.evaluate((url) => {
      window.states = []
      window.startBus(url)
      window.bus.events.on('state', (s: any) => window.states.push(s.to || s))
      document.addEventListener('freeze', () => window.send(0, 5))
    }, proxy.url())
    await until(() => page.evaluate(() => window.bus.state === 'ready'), 'ready')
    // Page.setWebLifecycleState freezes the page but headless Chromium dispatches no freeze
    // event for it, so the events are dispatched as Chrome does on freezing and resuming.
    await page.evaluate(() => document.dispatchEvent(new Event('freeze')))
    expect(await page.evaluate(() => window.bus.state)).toBe('suspended')
    const sent = await page.evaluate(() => window.sent)
    await page.clock.runFor(10_000) // whatever a timer would send while frozen is sent now
    expect(await page.evaluate(() => window.sent)).toBe(sent) // a frozen page sends nothing
    expect(arrived(server)).toEqual([])
    await page.evaluate(() => document.dispatchEvent(new Event('resume')))
    await until(
      () => arrived(server).length >= 5,
      '5 messages after resume',
      10_000,
      () => diag(page, server),
    )
    expect(arrived(server)).toEqual(range(5))
    const states = await page.evaluate(() => window.states)
    expect(states).toContain('suspended')
  })

  it("localStorage full (the browser's own QuotaExceededError): STORAGE_FULL, and still delivered", async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    proxy.refuse()
    await page.evaluate((url) => {
      // Fill the origin's quota with filler, then leave no room at all.
      const chunk = 'x'.repeat(256 * 1024)
      let i = 0
      try {
        for (;;) window.localStorage.setItem(`fill${i++}`, chunk)
      } catch {}
      let small = 'x'.repeat(1024)
      while (small.length) {
        try {
          window.localStorage.setItem(`fill${i++}`, small)
        } catch {
          small = small.slice(0, small.length >> 1)
        }
      }
      window.errors = []
      window.log = []
      window.startBus(url, { debug: (...a: any[]) => window.log.push(a.map(String).join(' ')) })
      window.bus.events.on('error', (e: any) => window.errors.push(e.code))
      window.send(0, 10)
    }, proxy.url())
    await until(
      () => page.evaluate(() => window.errors.includes('STORAGE_FULL')),
      'STORAGE_FULL',
      10_000,
      () => diag(page, server),
    )
    const codes = await page.evaluate(() => window.errors)
    expect(codes, await diag(page, server)).toContain('STORAGE_FULL')
    proxy.pass()
    await until(() => arrived(server).length >= 10, '10 messages', 15_000)
    expect(arrived(server)).toEqual(range(10))
  })
})

describeInChromium('mpbus in headless Chromium: storage shared with other pages', () => {
  it('two tabs on one localStorage: the page that comes back delivers both queues, once and in order', async () => {
    const { server, proxy } = await startServer()
    const { context, page } = await openPage()
    const other = await context.newPage()
    await other.goto(page.url())
    proxy.refuse() // both queue, so both outboxes are in localStorage at once
    for (const [p, from] of [
      [page, 0],
      [other, 100],
    ] as const) {
      await p.evaluate(
        ([url, n]) => {
          window.startBus(url)
          window.send(n, n + 10)
        },
        [proxy.url(), from] as const,
      )
    }
    // Both tabs go away with their queues in the one localStorage; one page comes back. The
    // closed tab's namespace is an orphan once its Web Lock is free, which the browser does a
    // moment after close() resolves; a page that loads before that adopts it at its next load.
    await other.close()
    await until(
      () =>
        page.evaluate(async () => {
          const { held = [] } = await (globalThis as any).navigator.locks.query()
          return new Set(held.map((l: any) => l.clientId)).size <= 1
        }),
      'the closed tab’s locks released',
    )
    await page.reload()
    proxy.pass()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(
      () => arrived(server).length >= 20,
      '20 messages',
      10_000,
      () => diag(page, server),
    )
    const all = arrived(server)
    expect(all.filter((n) => n < 100)).toEqual(range(10))
    expect(all.filter((n) => n >= 100)).toEqual(range(10).map((n) => n + 100))
    expect(all).toHaveLength(20)
  })

  it('two tabs open at once on one localStorage, both sending interleaved, one closed, then a reload: every message once, in order per tab', async () => {
    const { server, proxy } = await startServer()
    const { context, page } = await openPage()
    const other = await context.newPage()
    await other.goto(page.url())
    for (const p of [page, other]) await p.evaluate((url) => window.startBus(url), proxy.url())
    const interleave = async (from: number, to: number) => {
      for (let n = from; n < to; n++)
        for (const [p, base] of [
          [page, 0],
          [other, 100],
        ] as const)
          await p.evaluate((m) => window.send(m, m + 1), base + n)
    }
    const diagBoth = async () => `${await diag(page, server)} other: ${await diag(other, server)}`
    await interleave(0, 5)
    await until(() => arrived(server).length >= 10, '10 messages online', 10_000, diagBoth)
    // Offline: both queue at once in the one localStorage.
    proxy.refuse()
    proxy.reset()
    await interleave(5, 10)
    // The first tab (it holds the main namespace) is closed with 5 unsent: the other sends them.
    await page.close()
    proxy.pass()
    await until(
      () => arrived(server).length >= 20,
      '20 messages after a tab closed',
      10_000,
      () => diag(other, server),
    )
    // The other tab queues 5 more offline and is reloaded: the new page sends them.
    proxy.refuse()
    proxy.reset()
    await other.evaluate(() => window.send(110, 115))
    await other.reload()
    proxy.pass()
    await other.evaluate((url) => window.startBus(url), proxy.url())
    await until(
      () => arrived(server).length >= 25,
      '25 messages after the reload',
      10_000,
      () => diag(other, server),
    )
    const all = arrived(server)
    expect(all.filter((n) => n < 100)).toEqual(range(10))
    expect(all.filter((n) => n >= 100)).toEqual(range(15).map((n) => n + 100))
    expect(all).toHaveLength(25)
    // Nothing left behind: no namespace of a closed tab, no scratch record.
    await until(
      () => other.evaluate(() => !Object.keys(localStorage).some((k) => /^mpbus\/(@|\d)/.test(k))),
      'outbox records removed',
    )
  })

  it('a send() in pagehide is delivered by the page after the reload', async () => {
    const { server, proxy } = await startServer()
    const { page } = await openPage()
    proxy.refuse()
    await page.evaluate((url) => {
      window.startBus(url)
      window.addEventListener('pagehide', () => window.send(0, 5))
    }, proxy.url())
    await page.reload()
    proxy.pass()
    await page.evaluate((url) => window.startBus(url), proxy.url())
    await until(
      () => arrived(server).length >= 5,
      '5 messages',
      10_000,
      () => diag(page, server),
    )
    expect(arrived(server)).toEqual(range(5))
  })
})

// Real headless Chromium for the browser tests: Debian's `chromium` driven by playwright-core
// (never a downloaded browser build), a page served from 127.0.0.1 that loads an esbuild bundle
// of src/ as the global `mpbus`, and the project's real ws test server behind the real TCP fault proxy.
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, inject } from 'vitest'
import { createFaultProxy, createTestServer } from '../../src/testing/index'
import { until } from '../helpers/time'

/** The Chromium the set-up found (scripts/setup.mjs: `CHROMIUM_PATH`, else on the PATH), or null. */
export const chromiumPath = inject('chromium')

/** `describe`, skipped when there is no Chromium (the set-up said so, once, with the command to run). */
export const describeInChromium = describe.skipIf(!chromiumPath)

const disposers: (() => unknown)[] = []
afterEach(async () => {
  while (disposers.length) await disposers.pop()!()
})

let browser: Browser
let site: { origin: string; close(): Promise<void> }
beforeAll(async () => {
  if (!chromiumPath) return
  const bundle = await build({
    entryPoints: [path.join(__dirname, '../../src/index.ts')],
    bundle: true,
    format: 'iife',
    globalName: 'mpbus',
    target: 'es2015',
    write: false,
  })
  site = await serve(bundle.outputFiles[0]!.text)
  browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] })
}, 60_000)
afterAll(async () => {
  await browser?.close()
  await site?.close()
})

/** Serves `/mpbus.js` and a page that loads it, for any path (two paths: two pages, one origin). */
async function serve(js: string) {
  const server = http.createServer((req, res) => {
    if (req.url === '/mpbus.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(js)
    } else {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>mpbus</title><script src="/mpbus.js"></script>')
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

/** A fresh browser context (its own localStorage) with one page open on the site. */
export async function openPage() {
  const context = await browser.newContext()
  disposers.push(() => context.close())
  // The page's timers on Playwright's clock: it follows real time until a test runs it ahead
  // (runFor) or stops it (pauseAt).
  await context.clock.install()
  await context.addInitScript(PAGE_SETUP)
  const page = await context.newPage()
  await page.goto(`${site.origin}/`)
  return { context, page, origin: site.origin }
}

/** The test server, numbering `Seq` frames for its order check, behind a fault proxy. */
export async function startServer() {
  const server = await createTestServer({ sequence: (f) => (f.Operator === 'Seq' ? f.n : undefined) })
  disposers.push(() => server.close())
  const proxy = await createFaultProxy({ port: server.port })
  disposers.push(() => proxy.close())
  return { server, proxy }
}

/**
 * Installed in the page: counts WebSocket constructions (connect attempts) and frames sent, and
 * starts a bus as `window.bus` with fast heartbeat and backoff settings.
 */
export const PAGE_SETUP = `
  window.attempts = 0
  window.sent = 0
  const Native = window.WebSocket
  const nativeSend = Native.prototype.send
  Native.prototype.send = function (data) { window.sent++; return nativeSend.call(this, data) }
  window.WebSocket = function (url, p) { window.attempts++; return new Native(url, p) }
  window.WebSocket.prototype = Native.prototype
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 })
  window.startBus = (url, extra) => {
    window.bus = mpbus.createBus(Object.assign({
      url,
      ack: true,
      // One user across reconnects, so the server drops a resent repeat by its id.
      login: () => ({ op: 'userLogin', payload: { userOpenId: 'u1' } }),
      ready: { ok: 'LoginOK' },
      heartbeat: { interval: 300, timeout: 300 },
      reconnect: { minDelay: 50, maxDelay: 200 },
      connectTimeout: 1000,
    }, extra))
    window.delivered = 0
    window.send = (from, to) => {
      for (let n = from; n < to; n++) window.bus.send('Seq', { n }).then(() => window.delivered++, (e) => (window.rejected = (window.rejected || []).concat(e.code)))
    }
  }
`

/**
 * The `n`s of the `Seq` frames the server recorded, in arrival order (it drops repeats by id):
 * `[0, 1, ..., count - 1]` is 0 lost and 0 reordered.
 */
export function arrived(server: { received: { frame: any }[] }): number[] {
  return server.received
    .map((r) => r.frame)
    .filter((f) => f && f.Operator === 'Seq')
    .map((f) => f.n)
}

export const range = (count: number) => Array.from({ length: count }, (_, n) => n)

const h5 = path.join(__dirname, '../h5')

/**
 * An esbuild IIFE bundle of `contents`, resolved in test/h5 (the frameworks' H5 runtimes, with
 * their own lockfile, installed by the set-up before any test runs: test/global-setup.ts).
 */
export async function h5Bundle(
  contents: string,
  options: { define?: Record<string, string>; alias?: Record<string, string> } = {},
): Promise<string> {
  const out = await build({
    stdin: { contents, resolveDir: h5 },
    bundle: true,
    format: 'iife',
    write: false,
    logLevel: 'error',
    loader: { '.css': 'empty' },
    define: { 'process.env.NODE_ENV': '"production"', ...options.define },
    alias: options.alias,
  })
  return out.outputFiles[0]!.text
}

/** A page (see `openPage`) with `script` loaded after mpbus; `load()` loads it again after a reload. */
export async function openPageWith(script: string) {
  const opened = await openPage()
  const load = () => opened.page.addScriptTag({ content: script })
  await load()
  return { ...opened, load }
}

/**
 * With a bus `ready` on `page`: goes offline (`context.setOffline`), sends 10, runs the page's
 * clock 10 s ahead and checks that no connect was attempted, comes back online and checks that
 * all 10 arrive in order at once: with the page's clock stopped, so with no timer's help.
 */
export async function expectOfflineThenRecovery(
  context: import('playwright-core').BrowserContext,
  page: import('playwright-core').Page,
  server: { received: { frame: any }[] },
): Promise<void> {
  await until(() => page.evaluate(() => (globalThis as any).bus.state === 'ready'), 'ready')
  await context.setOffline(true)
  await until(() => page.evaluate(() => (globalThis as any).bus.state === 'offline'), 'offline')
  const before = await page.evaluate(() => (globalThis as any).attempts)
  await page.evaluate(() => (globalThis as any).send(0, 10))
  await page.clock.runFor(10_000) // many backoff periods: none may be spent
  expect(await page.evaluate(() => (globalThis as any).attempts)).toBe(before)
  // Paused a little ahead of the page's time (pauseAt cannot go back, and the page's clock moves
  // on meanwhile); the second it skips, offline, has no timer to run.
  await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 1000)
  await context.setOffline(false)
  await until(() => arrived(server).length >= 10, '10 messages')
  await page.clock.resume()
  expect(arrived(server)).toEqual(range(10))
}

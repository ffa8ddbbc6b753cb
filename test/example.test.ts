// examples/wechat, checked as CI can without WeChat DevTools: its JS parses as the ES2017 scripts
// WeChat compiles, and app.js and each page run under a small App/Page shim against the test server.
import fs from 'node:fs'
import path from 'node:path'
import { parse } from 'acorn'
import { afterEach, describe, expect, it } from 'vitest'
import { createTestServer, type TestServer } from '../src/testing/index'
import { createAppShim } from './helpers/app-shim'
import { framesOf, sleep, until } from './helpers/e2e'

const root = path.join(__dirname, '..', 'examples', 'wechat')

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

async function start() {
  const server = await createTestServer()
  cleanups.push(() => server.close())
  // The example's index page expects the server to confirm a saved note.
  server.route('SaveNote', (frame, ctx) => ctx.reply({ Operator: 'NoteSaved', text: frame.text }))
  return server
}

function shim(server: TestServer, storage?: ReturnType<typeof createAppShim>['wx']['control']['storage']) {
  const s = createAppShim({ root, url: server.url, runtime: { storage } })
  cleanups.push(() => s.wx.control.kill())
  return s
}

/** Launches the app and opens its first page in the same tick, as WeChat does. */
function launch(s: ReturnType<typeof createAppShim>) {
  const app = s.launch()
  cleanups.push(() => app.bus.close())
  const index = s.open('pages/index/index')
  return { app, index }
}

function jsFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory())
      return entry.name === 'node_modules' || entry.name === 'miniprogram_npm' ? [] : jsFiles(full)
    return entry.name.endsWith('.js') ? [full] : []
  })
}

describe('examples/wechat', () => {
  it('every .js file parses as an ES2017 script, and every page in app.json has its files', () => {
    const files = jsFiles(root)
    expect(files.map((f) => path.relative(root, f)).sort()).toEqual(
      expect.arrayContaining(['app.js', 'config.js', 'pages/index/index.js', 'pages/status/status.js']),
    )
    for (const file of files) {
      expect(
        () => parse(fs.readFileSync(file, 'utf8'), { ecmaVersion: 2017, sourceType: 'script' }),
        file,
      ).not.toThrow()
    }
    const appJson = JSON.parse(fs.readFileSync(path.join(root, 'app.json'), 'utf8'))
    for (const page of appJson.pages) {
      for (const ext of ['.js', '.json', '.wxml'])
        expect(fs.existsSync(path.join(root, page + ext)), page + ext).toBe(true)
    }
    JSON.parse(fs.readFileSync(path.join(root, 'project.config.json'), 'utf8'))
  })

  it('app.js logs in with the wx.login code, stores the openId from LoginOK, and the index page shows it', async () => {
    const server = await start()
    const s = shim(server)
    const { app, index } = launch(s)
    await until(() => index.data.openId, 'the index page to get LoginOK')
    const [login] = framesOf(server, 'userLogin')
    expect(login).toEqual({ Operator: 'userLogin', userCode: 'code-1' })
    expect(s.wx.getStorageSync('openId')).toBe(index.data.openId)
    expect(app.bus.state).toBe('ready')

    // A cold start on the same storage logs in with the stored openId, and the server knows the user.
    const openId = index.data.openId
    s.wx.control.kill()
    app.bus.close()
    const again = shim(server, s.wx.control.storage)
    const second = launch(again)
    await until(() => second.index.data.openId, 'LoginOK after the cold start')
    // It also names its position in the user's stream (docs/protocol.md, "Pushes and resume"), the
    // tip the first login's answer gave it, and with it the largest batch it takes (1 MiB).
    expect(framesOf(server, 'userLogin')[1]).toEqual({
      Operator: 'userLogin',
      userCode: 'code-1',
      userOpenId: openId,
      Streams: { [`user:${openId}`]: { offset: 0, epoch: expect.any(String) } },
      Batch: 1 << 20,
    })
    expect(second.index.data.openId).toBe(openId)
  })

  it('the index page sends while offline; the note arrives after online(); after onUnload it hears nothing', async () => {
    const server = await start()
    const s = shim(server)
    const { app, index } = launch(s)
    await until(() => app.bus.state === 'ready', 'ready')
    s.wx.control.offline()
    await until(() => app.bus.state === 'offline', 'offline')
    index.onInput({ detail: { value: 'written in a lift' } })
    index.send()
    expect(index.data.draft).toBe('')
    expect(index.data.queued).toBe(1)
    await sleep(50)
    expect(framesOf(server, 'SaveNote')).toHaveLength(0)
    expect(app.bus.queued).toBe(1)

    s.wx.control.online()
    await until(() => index.data.notes.length === 1, 'NoteSaved on the page')
    expect(index.data.notes).toEqual(['written in a lift'])
    expect(framesOf(server, 'SaveNote')).toEqual([
      { Operator: 'SaveNote', text: 'written in a lift', MsgId: expect.any(String) },
    ])
    await until(() => index.data.queued === 0, 'queued back to 0 once acknowledged')
    expect(s.wx.calls).toEqual([])

    index.openStatus()
    expect(s.wx.calls).toEqual([{ api: 'navigateTo', option: { url: '/pages/status/status' } }])

    s.close(index)
    const unhandled: any[] = []
    app.bus.events.on('unhandled', (frame: any) => unhandled.push(frame))
    server.broadcast({ Operator: 'NoteSaved', text: 'after unload' })
    await until(() => unhandled.length === 1, 'the frame to go unhandled')
    expect(unhandled[0]).toEqual({ Operator: 'NoteSaved', text: 'after unload' })
    expect(index.data.notes).toEqual(['written in a lift'])
  })

  it('the status page shows a banner while offline, clears it when ready, and stops updating after onUnload', async () => {
    const server = await start()
    const s = shim(server)
    const { app } = launch(s)
    await until(() => app.bus.state === 'ready', 'ready')
    const status = s.open('pages/status/status')
    expect(status.data).toEqual({ state: 'ready', banner: '' })

    s.wx.control.offline()
    await until(() => status.data.state === 'offline', 'offline on the page')
    expect(status.data.banner).toMatch(/Offline/)
    s.wx.control.online()
    await until(() => status.data.state === 'ready', 'ready again')
    expect(status.data.banner).toBe('')

    s.close(status)
    s.wx.control.offline()
    await until(() => app.bus.state === 'offline', 'offline')
    await sleep(20)
    expect(status.data).toEqual({ state: 'ready', banner: '' })
  })
})

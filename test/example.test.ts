// examples/wechat, checked as CI can without WeChat DevTools: its JS parses as the ES2017 scripts
// WeChat compiles, and app.js and each page run under a small App/Page shim in the wx runtime of
// mpbus/testing, against the example's own server (examples/wechat/server, mpbus/server in a
// process of its own).
import fs from 'node:fs'
import path from 'node:path'
import { parse } from 'acorn'
import { afterEach, describe, expect, it } from 'vitest'
import { createAppShim } from './helpers/app-shim'
import { type ExampleProcess, runExample } from './helpers/example-server'
import { until } from './helpers/time'

const root = path.join(__dirname, '..', 'examples', 'wechat')

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

async function start() {
  const server = await runExample('examples/wechat/server/server.js')
  cleanups.push(() => server.stop())
  return server
}

function shim(
  server: ExampleProcess,
  storage?: ReturnType<typeof createAppShim>['wx']['control']['storage'],
) {
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
      return ['node_modules', 'miniprogram_npm', 'server'].includes(entry.name) ? [] : jsFiles(full)
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
    // The server made the openId up from the wx.login code (where a real one asks code2Session).
    expect(index.data.openId).toBe('openid-code-1')
    expect(s.wx.getStorageSync('openId')).toBe(index.data.openId)
    expect(app.bus.state).toBe('ready')

    // A cold start on the same storage logs in with the stored openId, and the server knows the user.
    const openId = index.data.openId
    s.wx.control.kill()
    app.bus.close()
    const again = shim(server, s.wx.control.storage)
    const second = launch(again)
    await until(() => second.index.data.openId, 'LoginOK after the cold start')
    // The new runtime's wx.login gives code-1 again: the openId the server knows the user by is
    // the stored one the app sent, not one made from the code.
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
    // Offline, the runtime holds no socket that could carry it; what it had scheduled has run.
    await s.wx.control.flush()
    expect(s.wx.control.liveSockets()).toBe(0)
    expect(index.data.notes).toEqual([])
    expect(app.bus.queued).toBe(1)

    s.wx.control.online()
    await until(() => index.data.notes.length === 1, 'NoteSaved on the page')
    expect(index.data.notes).toEqual(['written in a lift'])
    await until(() => index.data.queued === 0, 'queued back to 0 once acknowledged')
    expect(s.wx.calls).toEqual([])

    index.openStatus()
    expect(s.wx.calls).toEqual([{ api: 'navigateTo', option: { url: '/pages/status/status' } }])

    s.close(index)
    const unhandled: any[] = []
    app.bus.events.on('unhandled', (frame: any) => unhandled.push(frame))
    await app.bus.send('SaveNote', { text: 'after unload' })
    await until(() => unhandled.length === 1, 'the frame to go unhandled')
    expect(unhandled[0]).toMatchObject({ Operator: 'NoteSaved', text: 'after unload' })
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
    // The state event went out as the state changed: a page still listening has heard it.
    await s.wx.control.flush()
    expect(status.data).toEqual({ state: 'ready', banner: '' })
  })
})

describe('examples/wechat: what its README says to install', () => {
  it('depends on the tarball `npm pack` writes in the repository root (with miniprogram_dist), and keeps server/ out of the mini program', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
    const { version } = JSON.parse(fs.readFileSync(path.join(root, '../../package.json'), 'utf8'))
    expect(pkg.dependencies.mpbus).toBe(`file:../../mpbus-${version}.tgz`)
    expect(pkg.dependencies.ws).toBeDefined()
    const project = JSON.parse(fs.readFileSync(path.join(root, 'project.config.json'), 'utf8'))
    expect(project.packOptions.ignore).toContainEqual({ type: 'folder', value: 'server' })
    const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
    expect(readme).toContain('npm pack')
    expect(readme).toContain('npm run server')
  })
})

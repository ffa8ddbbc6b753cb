// Runs a WeChat mini program's JS (examples/wechat) in Node: a tiny CommonJS loader, the `App`,
// `Page` and `getApp` globals, and `wx` from the test kit's runtime, with the few extra wx APIs
// the example calls (`login`, `showToast`, `navigateTo`) added here rather than to the kit.
import fs from 'node:fs'
import path from 'node:path'
import * as mpbus from '../../src/index'
import { createWxRuntime, type WxRuntime, type WxRuntimeOptions } from '../../src/testing/index'

export interface ShimWx extends WxRuntime {
  login(option: { success?(res: { code: string; errMsg: string }): void; fail?(res: unknown): void }): void
  showToast(option: { title: string; icon?: string }): void
  navigateTo(option: { url: string }): void
  /** What the app asked for through showToast and navigateTo, in order. */
  readonly calls: Array<{ api: string; option: unknown }>
}

/** A page instance as WeChat makes one: the config's fields, its own copy of `data`, and `setData`. */
export interface PageInstance {
  route: string
  data: Record<string, any>
  setData(patch: Record<string, unknown>, callback?: () => void): void
  [key: string]: any
}

export interface AppShimOptions {
  /** The mini program's folder (where app.js is). */
  root: string
  /** What `require('./config')` returns, as `{ url }`. */
  url: string
  runtime?: WxRuntimeOptions
}

export function createAppShim(options: AppShimOptions) {
  const calls: ShimWx['calls'] = []
  let codes = 0
  const wx = Object.assign(createWxRuntime(options.runtime), {
    // A fresh code each call, asynchronously, as WeChat's login does.
    login(option: Parameters<ShimWx['login']>[0]) {
      const code = `code-${++codes}`
      setTimeout(() => option.success?.({ code, errMsg: 'login:ok' }), 1)
    },
    showToast: (option: unknown) => void calls.push({ api: 'showToast', option }),
    navigateTo: (option: unknown) => void calls.push({ api: 'navigateTo', option }),
    calls,
  }) as ShimWx

  let app: any
  let registered: any

  // WeChat's App() keeps the config object itself as the app instance: getApp() returns it.
  const App = (config: any) => {
    if (app) throw new Error('App() called twice')
    app = config
  }
  const Page = (config: any) => {
    registered = config
  }
  const getApp = () => app

  /** Runs one file as a CommonJS module with the mini program's globals in scope. */
  function load(file: string): unknown {
    const code = fs.readFileSync(path.join(options.root, file), 'utf8')
    const module = { exports: {} as unknown }
    const require = (id: string) => {
      if (id === 'mpbus') return mpbus
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(file), id)).replace(/\.js$/, '')
      if (target === 'config') return { url: options.url }
      throw new Error(`app shim: require('${id}') from ${file} is not mapped`)
    }
    const run = new Function('require', 'module', 'exports', 'wx', 'App', 'Page', 'getApp', code)
    run(require, module, module.exports, wx, App, Page, getApp)
    return module.exports
  }

  return {
    wx,
    /** Loads app.js and calls App's onLaunch (then onShow), as a cold start does. */
    launch(): any {
      load('app.js')
      if (!app) throw new Error('app.js did not call App()')
      const launchOptions = { path: 'pages/index/index', query: {}, scene: 1001 }
      app.onLaunch?.(launchOptions)
      app.onShow?.(launchOptions)
      return app
    },
    /** Loads a page's JS (e.g. `pages/index/index`), makes an instance and calls onLoad (then onShow). */
    open(route: string, query: Record<string, string> = {}): PageInstance {
      registered = undefined
      load(`${route}.js`)
      if (!registered) throw new Error(`${route}.js did not call Page()`)
      const page = Object.assign({}, registered, {
        route,
        data: structuredClone(registered.data ?? {}),
        // Top-level keys only: enough for the example; WeChat also takes paths like 'a.b[0]'.
        setData(this: PageInstance, patch: Record<string, unknown>, callback?: () => void) {
          Object.assign(this.data, structuredClone(patch))
          callback?.()
        },
      }) as PageInstance
      page.onLoad?.(query)
      page.onShow?.()
      return page
    },
    /** Navigating away for good (navigateBack, redirectTo): onUnload. */
    close(page: PageInstance): void {
      page.onUnload?.()
    },
  }
}

// Check 2: miniprogram_dist runs where a mini program runs it. The context holds only what a mini
// program's JS engine offers (https://developers.weixin.qq.com/miniprogram/dev/framework/runtime/js-support.html): the ECMAScript built-ins that node:vm gives a new
// context, timers, `console` and `wx`. No `process`, no global `require`, no DOM, no `crypto`, no
// `WebSocket`, no `Buffer`; code generation from strings is refused (no `eval`/`new Function`) and
// `Proxy` is removed (missing on some old clients). Each file is wrapped in a function that receives
// `module` and `exports`, as WeChat's module system does.

import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import vm from 'node:vm'
import { createFakeWx } from './fake-wx.mjs'

// Globals that a Node or browser build might reach for and a mini program lacks. If any is defined in
// the context, the sandbox is not faithful and the check would prove nothing.
const ABSENT = [
  'process',
  'require',
  'module',
  'exports',
  'global',
  'window',
  'self',
  'document',
  'navigator',
  'location',
  'crypto',
  'WebSocket',
  'XMLHttpRequest',
  'fetch',
  'Buffer',
  'setImmediate',
  'queueMicrotask',
  'TextEncoder',
  'TextDecoder',
  'Proxy',
]

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Mini-program style timers (numeric ids) that remember which are still pending. */
function createTimers(onThrow) {
  const pending = new Map() // id -> { handle, kind }
  let nextId = 1
  const guard = (fn, args) => {
    try {
      fn(...args)
    } catch (error) {
      onThrow(error)
    }
  }
  return {
    pending,
    globals: {
      setTimeout(fn, ms, ...args) {
        const id = nextId++
        const handle = setTimeout(() => {
          pending.delete(id)
          guard(fn, args)
        }, ms)
        pending.set(id, { handle, kind: 'timeout', ms })
        return id
      },
      clearTimeout(id) {
        const t = pending.get(id)
        if (t) clearTimeout(t.handle)
        pending.delete(id)
      },
      setInterval(fn, ms, ...args) {
        const id = nextId++
        pending.set(id, { handle: setInterval(() => guard(fn, args), ms), kind: 'interval', ms })
        return id
      },
      clearInterval(id) {
        const t = pending.get(id)
        if (t) clearInterval(t.handle)
        pending.delete(id)
      },
    },
    clearAll() {
      for (const t of pending.values()) {
        clearTimeout(t.handle)
        clearInterval(t.handle)
      }
      pending.clear()
    },
  }
}

/** Runs one CommonJS file of miniprogram_dist in the context; `requireFn` is its module-local require. */
function loadModule(context, file, requireFn) {
  const code = readFileSync(file, 'utf8')
  const params = requireFn ? 'module, exports, require' : 'module, exports'
  const wrapper = vm.runInContext(`(function (${params}) {${code}\n})`, context, { filename: file })
  const mod = vm.runInContext('({ exports: {} })', context)
  wrapper.call(mod.exports, mod, mod.exports, requireFn)
  return mod.exports
}

/** The test kit's wx runtime when dist/testing.js has it, else the minimal fake. */
async function getWx(root) {
  const testing = join(root, 'dist', 'testing.js')
  if (existsSync(testing)) {
    const kit = await import(pathToFileURL(testing).href)
    if (typeof kit.createWxRuntime === 'function') {
      const runtime = kit.createWxRuntime({})
      const wx = runtime && typeof runtime.connectSocket === 'function' ? runtime : runtime?.wx
      if (wx && typeof wx.connectSocket === 'function') {
        // The kit's runtime is the wx object itself, with test controls under `control`; kill() stops
        // its sockets and timers.
        const dispose = () => {
          if (typeof runtime.control?.kill === 'function') return runtime.control.kill()
          for (const name of ['dispose', 'destroy']) {
            if (typeof runtime[name] === 'function') return runtime[name]()
          }
        }
        return { wx, dispose, source: "createWxRuntime() from dist/testing.js, on real 'ws' sockets" }
      }
    }
  }
  const fake = createFakeWx()
  return {
    ...fake,
    source: 'the minimal wx of scripts/check/fake-wx.mjs (dist/testing.js has no createWxRuntime)',
  }
}

export async function checkVm({ root }) {
  const dir = join(root, 'miniprogram_dist')
  const failures = []
  const details = []
  const notes = []
  const thrown = []
  const onThrow = (error) => thrown.push(error)
  const timers = createTimers(onThrow)
  let wxRuntime = null
  // A listener called by the host-side wx (socket events) runs mpbus code outside any try: catch
  // what escapes so it fails this check instead of killing the whole script.
  // An unhandled rejection inside the sandbox is a Promise the library itself dropped.
  const onRejection = (reason) => thrown.push(reason)
  process.on('uncaughtException', onThrow)
  process.on('unhandledRejection', onRejection)
  try {
    const context = vm.createContext(
      { ...timers.globals, console },
      { name: 'mini program', codeGeneration: { strings: false, wasm: false } },
    )
    vm.runInContext('delete globalThis.Proxy', context)

    const present = vm.runInContext(
      `${JSON.stringify(ABSENT)}.filter(function (n) { return typeof globalThis[n] !== 'undefined' })`,
      context,
    )
    if (present.length) failures.push(`the sandbox is not a mini program: it defines ${present.join(', ')}`)
    const evalRefused = vm.runInContext(
      "(function () { try { eval('1'); return false } catch (e) { return e instanceof EvalError } })()",
      context,
    )
    if (!evalRefused) failures.push('the sandbox allows eval')
    details.push(`sandbox: no ${ABSENT.join(', ')}; eval and new Function refused`)

    const index = loadModule(context, join(dir, 'index.js'))
    const names = Object.keys(index).sort()
    details.push(`index.js loaded, exports: ${names.join(', ')}`)
    if (typeof index.MpbusError !== 'function') {
      failures.push('index.js does not export MpbusError')
    } else {
      const error = new index.MpbusError('SOCKET_ERROR', 'probe')
      const ctxError = vm.runInContext('Error', context)
      if (!(error instanceof ctxError) || error.code !== 'SOCKET_ERROR' || error.name !== 'MpbusError') {
        failures.push('new MpbusError(code, message) is not an Error with that code')
      }
    }
    // The wx family's build: the Alipay dialect and the browser adapter are stubs that say where
    // the real ones are (README, Size), and none of their code is in the file.
    for (const name of ['alipayPlatform', 'webSocketPlatform']) {
      let code
      try {
        index[name]({ connectSocket() {} })
      } catch (error) {
        code = error?.code
      }
      if (code !== 'NO_PLATFORM')
        failures.push(`${name} in miniprogram_dist does not refuse with NO_PLATFORM`)
    }
    const shipped = readFileSync(join(dir, 'index.js'), 'utf8')
    const foreign = ['APDataStorage', 'sendSocketMessage', 'getItem', 'binaryType'].filter((w) =>
      shipped.includes(w),
    )
    if (foreign.length)
      failures.push(`miniprogram_dist/index.js carries Alipay or browser code: ${foreign.join(', ')}`)
    else
      details.push(
        'alipayPlatform and webSocketPlatform refuse with NO_PLATFORM; no Alipay or browser code in index.js',
      )
    if (existsSync(join(dir, 'compat.js'))) {
      // WeChat's module-local require resolves siblings inside miniprogram_npm/mpbus.
      const compat = loadModule(context, join(dir, 'compat.js'), (spec) => {
        if (spec === './index' || spec === './index.js') return index
        throw new Error(`compat.js required ${spec}: only ./index exists in miniprogram_npm/mpbus`)
      })
      const names = Object.keys(compat).sort()
      if ('MpbusError' in compat && compat.MpbusError !== index.MpbusError) {
        failures.push(
          'compat.js exports an MpbusError other than the one of index.js (a second copy of the core)',
        )
      } else details.push(`compat.js loaded on top of index.js, exports: ${names.join(', ')}`)
    }

    if (typeof index.createBus !== 'function') {
      failures.push('index.js does not export createBus')
    } else {
      wxRuntime = await getWx(root)
      details.push(`wx: ${wxRuntime.source}`)
      // Build the options inside the context so they are the context's own objects, as in a mini program.
      const start = vm.runInContext(
        `(function (createBus, wx, settled) {
          var bus = createBus({ url: 'ws://127.0.0.1:1/', platform: wx })
          var sent = bus.send('Hello', { a: 1 })
          // send() may return a Promise that close() settles: its outcome is the caller's to handle.
          if (sent && typeof sent.then === 'function') {
            sent.then(
              function () { settled('resolved') },
              function (e) { settled('rejected ' + (e && e.code ? e.code : e)) }
            )
          }
          return bus
        })`,
        context,
      )
      let bus
      let sendOutcome = 'not settled'
      try {
        bus = start(index.createBus, wxRuntime.wx, (outcome) => {
          sendOutcome = outcome
        })
        details.push(
          "createBus({ url: 'ws://127.0.0.1:1/', platform: wx }) and bus.send('Hello', { a: 1 }) ran",
        )
      } catch (error) {
        failures.push(`createBus/send threw: ${error?.stack ? error.stack : error}`)
      }
      if (bus) {
        const keys = wxRuntime.wx.getStorageInfoSync().keys
        details.push(
          `wx storage after send: ${keys.length} key(s)${keys.length ? ` (${keys.join(', ')})` : ''}`,
        )
        // Let the connect fail (ECONNREFUSED or the fake's error) so a reconnect timer is likely armed.
        await sleep(150)
        const before = timers.pending.size
        try {
          const closing = bus.close()
          if (closing && typeof closing.then === 'function') await Promise.race([closing, sleep(2000)])
        } catch (error) {
          failures.push(`bus.close() threw: ${error?.stack ? error.stack : error}`)
        }
        const left = () =>
          [...timers.pending.values()].map((t) => `${t.kind} of ${t.ms} ms`).join(', ') || 'none'
        if (timers.pending.size) failures.push(`timers still pending right after bus.close(): ${left()}`)
        await sleep(100)
        if (timers.pending.size) failures.push(`timers pending 100 ms after bus.close(): ${left()}`)
        details.push(`bus.close(): ${before} timer(s) pending before, ${timers.pending.size} after`)
        details.push(`the Promise of bus.send('Hello', { a: 1 }): ${sendOutcome}`)
      }
    }
    for (const error of thrown)
      failures.push(`uncaught inside the sandbox: ${error?.stack ? error.stack : error}`)
  } catch (error) {
    failures.push(`loading threw: ${error?.stack ? error.stack : error}`)
  } finally {
    process.off('uncaughtException', onThrow)
    process.off('unhandledRejection', onRejection)
    timers.clearAll()
    if (wxRuntime) await wxRuntime.dispose()
  }
  return {
    summary: failures.length ? undefined : 'loads in a bare mini-program sandbox',
    details,
    notes,
    failures,
  }
}

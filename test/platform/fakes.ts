/**
 * Hand-made fakes of the documented platform shapes (docs/platforms.md), for what the test
 * runtimes in src/testing do not cover: Douyin's string close codes, uni-app's callback rule,
 * Taro's late Promise, swan, and Alipay's single global socket. Events are fired by hand.
 */

type Fn = (arg?: any) => void

/** A SocketTask: `send/close/onOpen/onMessage/onClose/onError`, no `off*` unless asked (Alipay has them). */
export function fakeTask(opts: { off?: boolean; failSend?: boolean } = {}) {
  const handlers: Record<string, Fn[]> = { Open: [], Message: [], Close: [], Error: [] }
  const task: any = {
    sent: [] as any[],
    closed: [] as any[],
    failSend: !!opts.failSend,
    send(o: any) {
      task.sent.push(o.data)
      if (task.failSend) o.fail({ errMsg: 'sendSocketMessage:fail socket is not connected' })
      else o.success()
    },
    close(o: any) {
      task.closed.push(o)
    },
    /** Fires `name` (Open, Message, Close, Error) on every listener, as the platform would. */
    fire(name: string, arg?: any) {
      for (const f of handlers[name]!.slice()) f(arg)
    },
    count: (name: string) => handlers[name]!.length,
  }
  for (const n of Object.keys(handlers)) {
    task['on' + n] = (f: Fn) => handlers[n]!.push(f)
    if (opts.off) task['off' + n] = (f?: Fn) => (handlers[n] = f ? handlers[n]!.filter((g) => g !== f) : [])
  }
  return task
}

/** Positional `(key, data)` storage that throws when a value is over `perKey` characters, like wx. */
function positionalStorage(map: Map<string, unknown>, perKey: number) {
  return {
    setStorageSync(key: string, data: unknown) {
      if (typeof data === 'string' && data.length > perKey) {
        throw new Error('setStorageSync:fail entry size limit reached')
      }
      map.set(key, data)
    },
    // wx answers '' for a missing key.
    getStorageSync: (key: string) => (map.has(key) ? map.get(key) : ''),
    removeStorageSync: (key: string) => map.delete(key),
    getStorageInfoSync: () => ({ keys: Array.from(map.keys()), currentSize: 0, limitSize: 10240 }),
  }
}

/** App and network events with `off*`, as wx ≥ 2.9.3 has them (docs/platforms.md). */
function lifecycle(off: boolean, networkType: () => string) {
  const on: Record<string, Fn[]> = { NetworkStatusChange: [], AppShow: [], AppHide: [] }
  const api: any = {
    fireLife(name: string, arg?: any) {
      for (const f of on[name]!.slice()) f(arg)
    },
    getNetworkType: (o: any) => setTimeout(() => o.success({ networkType: networkType() }), 0),
  }
  for (const n of Object.keys(on)) {
    api['on' + n] = (f: Fn) => on[n]!.push(f)
    if (off) api['off' + n] = (f: Fn) => (on[n] = on[n]!.filter((g) => g !== f))
  }
  return api
}

export interface FakeOptions {
  /** 'uni' returns a task only when a callback is passed; 'taro' a Promise of the task. */
  kind?: 'wx' | 'tt' | 'swan' | 'uni' | 'taro'
  /** For 'taro': fire `onOpen` on the task before the Promise resolves, and set `readyState`. */
  openBeforeResolve?: boolean
  /** For 'taro': declare `readyState` on the task (Taro's typings do). */
  readyState?: boolean
  offLifecycle?: boolean
  networkType?: string
  perKey?: number
}

/** A wx-family API object. `tasks` lists every task handed out; `calls` every connectSocket option. */
export function fakeMiniProgram(opts: FakeOptions = {}) {
  const kind = opts.kind || 'wx'
  const tasks: any[] = []
  const calls: any[] = []
  const map = new Map<string, unknown>()
  const api: any = {
    ...lifecycle(opts.offLifecycle !== false, () => opts.networkType || 'wifi'),
    ...positionalStorage(map, opts.perKey || 1024),
    tasks,
    calls,
    map,
    connectSocket(o: any) {
      calls.push(o)
      const task = fakeTask()
      tasks.push(task)
      if (kind === 'uni' && !o.success && !o.fail && !o.complete) return Promise.resolve({ errMsg: 'ok' })
      if (kind !== 'taro') return task
      // Taro resolves after the native success (docs/platforms.md, uni-app and Taro); the open may come first.
      return new Promise((resolve) =>
        setTimeout(() => {
          if (opts.readyState) task.readyState = opts.openBeforeResolve ? 1 : 0
          if (opts.openBeforeResolve) task.fire('Open', {})
          resolve(Object.assign(task, { errMsg: 'connectSocket:ok' }))
        }, 0),
      )
    },
  }
  return api
}

/** An Alipay `my`: object storage with `{success, error}` results, tasks with `off*`, or (`single`) only the global socket. */
export function fakeMy(opts: { single?: boolean; perKey?: number } = {}) {
  const map = new Map<string, unknown>()
  const perKey = opts.perKey || 1024
  const global: Record<string, Fn[]> = { Open: [], Message: [], Close: [], Error: [] }
  const api: any = {
    ...lifecycle(true, () => 'WIFI'),
    map,
    tasks: [] as any[],
    calls: [] as any[],
    closes: 0,
    globalSent: [] as any[],
    getNetworkType: (o: any) =>
      setTimeout(() => o.success({ networkAvailable: false, networkType: 'NOTREACHABLE' }), 0),
    connectSocket(o: any) {
      api.calls.push(o)
      if (opts.single) return undefined
      const task = fakeTask({ off: true })
      api.tasks.push(task)
      return task
    },
    fireGlobal(name: string, arg?: any) {
      for (const f of global[name]!.slice()) f(arg)
    },
    globalCount: (name: string) => global[name]!.length,
    sendSocketMessage(o: any) {
      api.globalSent.push(o.data)
      o.success()
    },
    closeSocket() {
      api.closes++
    },
    setStorageSync({ key, data }: any) {
      if (typeof data === 'string' && data.length > perKey) {
        return { success: false, error: 14, errorMessage: 'data长度超限' }
      }
      map.set(key, data)
      return { success: true }
    },
    getStorageSync: ({ key }: any) => ({ data: map.has(key) ? map.get(key) : null }),
    removeStorageSync: ({ key }: any) => {
      map.delete(key)
      return { success: true }
    },
    getStorageInfoSync: () => ({ keys: Array.from(map.keys()), currentSize: 0, limitSize: 10240 }),
  }
  for (const n of Object.keys(global)) {
    api['onSocket' + n] = (f: Fn) => global[n]!.push(f)
    api['offSocket' + n] = (f?: Fn) => (global[n] = f ? global[n]!.filter((g) => g !== f) : [])
  }
  return api
}

/** Listeners that record every call in order. */
export function recorder() {
  const events: [string, any?][] = []
  return {
    events,
    names: () => events.map((e) => e[0]),
    listeners: {
      open: () => events.push(['open']),
      message: (d: any) => events.push(['message', d]),
      close: (i: any) => events.push(['close', i]),
      error: (e: any) => events.push(['error', e]),
    },
  }
}

export const tick = () => new Promise((r) => setTimeout(r, 5))

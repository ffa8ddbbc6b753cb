import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { WebSocket, WebSocketServer } from 'ws'
import type { MpbusError } from '../../src/errors'
import { localStorageStorage, webSocketPlatform } from '../../src/platform/websocket'
import { corkTask, uncork } from '../../src/task'
import { recorder } from '../helpers/platform-fakes'
import { countWrites } from '../helpers/servers'
import { nextTurn, until } from '../helpers/time'

let server: WebSocketServer
let url: string
const received: string[] = []

beforeEach(async () => {
  received.length = 0
  server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  await new Promise((r) => server.once('listening', r))
  url = `ws://127.0.0.1:${(server.address() as any).port}`
  server.on('connection', (sock) => {
    sock.on('message', (data, isBinary) => {
      const text = data.toString()
      received.push(isBinary ? `bin:${text}` : text)
      if (text === 'binary please') sock.send(Buffer.from([1, 2, 3]))
      else if (text === 'close please') sock.close(4001, 'asked')
      else sock.send(`echo:${text}`)
    })
  })
})

/** A socket of the platform, open, and the `ws` client under it. */
/** A `ws` WebSocket class that keeps the sockets it made, to watch their state. */
function recorded() {
  const made: any[] = []
  class Recorded extends WebSocket {
    constructor(address: string) {
      super(address)
      made.push(this)
    }
  }
  /** The socket has emitted its own `close`: what the adapter does with it is done. */
  const closed = () => until(() => made[0].readyState === WebSocket.CLOSED, 'the client closed')
  return { Recorded, made, closed }
}

async function openWithClient() {
  const { Recorded, made } = recorded()
  const r = recorder()
  const s = webSocketPlatform(Recorded).connect(url, r.listeners)
  await until(() => r.names().includes('open'))
  return { s, client: made[0] }
}

afterEach(async () => {
  for (const c of server.clients) c.terminate()
  await new Promise((r) => server.close(r))
})

describe('webSocketPlatform over ws', () => {
  it('opens, sends text, receives text and ArrayBuffer, and sees the server close', async () => {
    const r = recorder()
    const s = webSocketPlatform(WebSocket).connect(url, r.listeners)
    await until(() => r.names().includes('open'))
    const done: unknown[] = []
    s.send('hello', (e) => done.push(e))
    expect(done).toEqual([undefined])
    s.send('binary please')
    await until(() => r.events.length >= 3)
    expect(r.events[1]).toEqual(['message', 'echo:hello'])
    expect(r.events[2]![1]).toBeInstanceOf(ArrayBuffer)
    expect([...new Uint8Array(r.events[2]![1])]).toEqual([1, 2, 3])
    s.send('close please')
    await until(() => r.names().includes('close'))
    expect(r.events.at(-1)).toEqual(['close', { code: 4001, reason: 'asked' }])
    expect(received).toEqual(['hello', 'binary please', 'close please'])
  })

  it('fails a send before open or after close through done, once', async () => {
    const r = recorder()
    const s = webSocketPlatform(WebSocket).connect(url, r.listeners)
    const early: unknown[] = []
    s.send('early', (e) => early.push((e as MpbusError).code))
    expect(early).toEqual(['SOCKET_ERROR'])
    await until(() => r.names().includes('open'))
    s.close()
    const late: unknown[] = []
    s.send('late', (e) => late.push((e as MpbusError).code))
    expect(late).toEqual(['SOCKET_ERROR'])
  })

  it('the cork holds nothing back when a fake clock owns queueMicrotask, and uncork() before terminate() keeps the last frame', async () => {
    const { s, client } = await openWithClient()
    vi.useFakeTimers({ toFake: ['queueMicrotask'] })
    try {
      s.send('a')
      s.send('b')
      await until(() => received.length === 2)
    } finally {
      vi.useRealTimers()
    }
    expect(received).toEqual(['a', 'b'])
    // The server's side: a frame corked in the task that terminates the connection.
    const [side] = [...server.clients] as any[]
    const last = new Promise((resolve) => client.once('message', (data: Buffer) => resolve(String(data))))
    corkTask(side)
    side.send('last words')
    uncork(side)
    side.terminate()
    expect(await last).toBe('last words')
  })

  it('reports nothing after close(), and the server sees the code', async () => {
    const r = recorder()
    let serverClose: number | undefined
    server.on('connection', (sock) => sock.on('close', (code) => (serverClose = code)))
    const { Recorded, closed } = recorded()
    const s = webSocketPlatform(Recorded).connect(url, r.listeners)
    await until(() => r.names().includes('open'))
    s.close(4002, 'bye')
    await until(() => serverClose !== undefined)
    expect(serverClose).toBe(4002)
    await closed() // the client's own close event has come and gone
    expect(r.names()).toEqual(['open'])
  })

  it('falls back to a plain close when the code is refused, and never throws', async () => {
    const r = recorder()
    let serverClose: number | undefined
    server.on('connection', (sock) => sock.on('close', (code) => (serverClose = code)))
    const s = webSocketPlatform(WebSocket).connect(url, r.listeners)
    await until(() => r.names().includes('open'))
    expect(() => s.close(1006)).not.toThrow()
    await until(() => serverClose !== undefined)
    expect(serverClose).toBe(1005)
  })

  it('reports a refused connection as one SOCKET_ERROR and no close', async () => {
    const port = (server.address() as any).port
    await new Promise((res) => server.close(res))
    for (const c of server.clients) c.terminate()
    const r = recorder()
    const { Recorded, closed } = recorded()
    webSocketPlatform(Recorded).connect(`ws://127.0.0.1:${port}`, r.listeners)
    await until(() => r.events.length > 0)
    await closed() // ws emits its close after the error: the adapter must not pass it on
    expect(r.names()).toEqual(['error'])
    expect((r.events[0]![1] as MpbusError).code).toBe('SOCKET_ERROR')
    expect((r.events[0]![1] as MpbusError).message).toMatch(/ECONNREFUSED/)
    server = new WebSocketServer({ port: 0 })
  })

  it('closing while connecting reports nothing and does not crash', async () => {
    const r = recorder()
    const { Recorded, closed } = recorded()
    webSocketPlatform(Recorded).connect(url, r.listeners).close()
    await closed()
    expect(r.names()).toEqual([])
  })

  it('with Node `ws`, the frames of one task reach the kernel in one write, in order, task after task', async () => {
    const { s, client } = await openWithClient()
    const writes = countWrites(client._socket)
    const sent = Array.from({ length: 60 }, (_, n) => `m${n}`)
    for (const text of sent.slice(0, 30)) s.send(text)
    expect(writes()).toBe(0)
    await nextTurn() // the next task
    expect(writes()).toBe(1)
    for (const text of sent.slice(30)) s.send(text)
    await until(() => received.length === 60)
    expect(writes()).toBe(2)
    expect(received).toEqual(sent)
  })
  it('looks the global WebSocket up at connect, and throws NO_PLATFORM without one', () => {
    const g = globalThis as any
    const saved = g.WebSocket
    try {
      delete g.WebSocket
      const p = webSocketPlatform()
      expect(p.name).toBe('websocket')
      expect(() => p.connect(url, recorder().listeners)).toThrow(
        expect.objectContaining({ code: 'NO_PLATFORM' }),
      )
      g.WebSocket = WebSocket
      const r = recorder()
      p.connect(url, r.listeners).close()
      expect(r.names()).toEqual([])
    } finally {
      if (saved) g.WebSocket = saved
      else delete g.WebSocket
    }
  })

  it('in Node has no storage, network or app watchers unless given', () => {
    const p = webSocketPlatform(WebSocket)
    expect(p.storage).toBeUndefined()
    expect(p.watchNetwork).toBeUndefined()
    expect(p.watchApp).toBeUndefined()
  })
})

/** A Web Storage with a byte quota that throws like browsers do. */
function fakeLocalStorage(quota: number) {
  const map = new Map<string, string>()
  return {
    get length() {
      return map.size
    },
    key: (i: number) => Array.from(map.keys())[i] ?? null,
    getItem: (k: string) => map.get(k) ?? null,
    setItem(k: string, v: string) {
      let size = v.length
      for (const [key, value] of map) if (key !== k) size += value.length
      if (size > quota) {
        const e = new Error("Failed to execute 'setItem' on 'Storage': Setting the value exceeded the quota.")
        e.name = 'QuotaExceededError'
        throw e
      }
      map.set(k, v)
    },
    removeItem: (k: string) => map.delete(k),
  }
}

describe('localStorageStorage', () => {
  it('round-trips and maps QuotaExceededError to STORAGE_FULL, keeping the old value', () => {
    const s = localStorageStorage(fakeLocalStorage(10))
    s.set('a', 'old')
    expect(s.get('a')).toBe('old')
    expect(s.get('nope')).toBeUndefined()
    expect(() => s.set('a', 'x'.repeat(11))).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    expect(s.get('a')).toBe('old')
    s.set('b', 'new')
    expect(s.keys()).toEqual(['a', 'b'])
    s.del('a')
    expect(s.keys()).toEqual(['b'])
  })
})

describe("localStorageStorage and Taro's wrapped values", () => {
  it('reads what Taro H5 stored (`{"data": value}`) and the plain form, so records survive a move between them', () => {
    const ls = fakeLocalStorage(1000)
    // Taro H5's setStorageSync(key, data) stores JSON.stringify({ data }).
    ls.setItem('mpbus/1', JSON.stringify({ data: '{"v":1,"m":[]}' }))
    ls.setItem('mpbus/2', '{"v":1,"m":[]}')
    ls.setItem('other', '{"data":1}')
    const s = localStorageStorage(ls)
    expect(s.get('mpbus/1')).toBe('{"v":1,"m":[]}')
    expect(s.get('mpbus/2')).toBe('{"v":1,"m":[]}')
    expect(s.get('other')).toBe('{"data":1}') // not a wrapped string: left as it is
  })
})

describe('webSocketPlatform with browser globals', () => {
  const g = globalThis as any
  const saved = ['localStorage', 'addEventListener', 'removeEventListener', 'navigator', 'document'].map(
    (k) => [k, Object.getOwnPropertyDescriptor(g, k)] as const,
  )
  afterEach(() => {
    for (const [k, d] of saved) {
      if (d) Object.defineProperty(g, k, d)
      else delete g[k]
    }
  })

  function stubWindow(onLine: boolean) {
    const target = new EventTarget()
    const doc = new EventTarget() as any
    doc.visibilityState = 'visible'
    Object.defineProperty(g, 'navigator', { value: { onLine }, configurable: true, writable: true })
    g.addEventListener = target.addEventListener.bind(target)
    g.removeEventListener = target.removeEventListener.bind(target)
    g.document = doc
    g.localStorage = fakeLocalStorage(100)
    return { target, doc }
  }

  it('uses localStorage, online/offline, and freeze/resume (not visibilitychange) for the app', () => {
    const { target, doc } = stubWindow(false)
    const p = webSocketPlatform(WebSocket)
    p.storage!.set('k', 'v')
    expect(g.localStorage.getItem('k')).toBe('v')
    const net: boolean[] = []
    const stopNet = p.watchNetwork!((on) => net.push(on))
    target.dispatchEvent(new Event('online'))
    stopNet()
    target.dispatchEvent(new Event('offline'))
    expect(net).toEqual([false, true])
    const app: boolean[] = []
    const stopApp = p.watchApp!((v) => app.push(v))
    doc.dispatchEvent(new Event('freeze'))
    doc.visibilityState = 'hidden'
    doc.dispatchEvent(new Event('visibilitychange'))
    doc.dispatchEvent(new Event('resume'))
    stopApp()
    doc.dispatchEvent(new Event('freeze'))
    // A hidden tab keeps working; only the Page Lifecycle freeze suspends it.
    expect(app).toEqual([false, true])
  })

  it('prefers the storage it is given, and survives a localStorage that throws on access', () => {
    stubWindow(true)
    const mine = localStorageStorage(fakeLocalStorage(5))
    expect(webSocketPlatform(WebSocket, mine).storage).toBe(mine)
    Object.defineProperty(g, 'localStorage', {
      get() {
        throw new Error('SecurityError')
      },
      configurable: true,
    })
    expect(webSocketPlatform(WebSocket).storage).toBeUndefined()
  })
})

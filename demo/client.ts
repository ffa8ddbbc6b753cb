/**
 * One simulated mini program: a bus on its own wx runtime, with its own storage file, sending
 * `Demo {client, n}` at a steady rate, n counting up from 0 for the whole run (across cold starts:
 * the person using the app keeps going, the app's process is what dies).
 *
 * It keeps a log of when its bus became ready and when it stopped being ready, which the report
 * turns into "time to notice" and "time to recover"; and what its handlers saw of the server's
 * pushes (`Tick` to its user, `RoomTick` to the room), its `resync` events, and when it was dead.
 */
import path from 'node:path'
import { type Bus, createBus } from '../src/index'
import { createWxRuntime, type WxRuntime } from '../src/testing/index'
import { FileStorageArea } from './file-area'

export interface Timing {
  /** Ping after this much silence; the link is dead when nothing answers within `timeout`. */
  heartbeat: { interval: number; timeout: number }
  reconnect: { minDelay: number; maxDelay: number }
  connectTimeout: number
  /** How long LoginOK may take. */
  readyTimeout: number
  /** How long after `hide()` the runtime closes the app's sockets (WeChat: about 5 s). */
  suspendDelay: number
}

export interface ClientOptions {
  index: number
  url: string
  /** Where this client's storage file lives. */
  dir: string
  timing: Timing
  /** Messages per second. */
  rate: number
  /** Delay before the first message, so the clients do not all tick together. */
  phase: number
  /** ms since the start of the run. */
  clock: () => number
}

/** A pushed frame a handler saw: its number, its stream position, when. */
export interface Seen {
  k: number
  offset: number
  epoch: string
  at: number
}

/** A `resync` the bus emitted: the stream's history no longer covered the gap, so the app must reload. */
export interface Resync {
  stream: 'user' | 'room'
  offset: number
  epoch: string
  at: number
}

/** The user the demo server makes of client `index` (see demo/server-node.ts). */
export const userOf = (index: number) => `o-client-${String(index).padStart(2, '0')}`

/** `ready`: the bus became ready. `down`: it stopped being ready (a close, a hide, a kill). */
export interface ClientEvent {
  at: number
  kind: 'ready' | 'down'
}

export type Client = ReturnType<typeof createClient>

export function createClient(options: ClientOptions) {
  const { index, timing, clock } = options
  const name = `client-${String(index).padStart(2, '0')}`
  const file = path.join(options.dir, `${name}.json`)
  const log: ClientEvent[] = []
  /** n of each message whose send() promise resolved, in the order they resolved. */
  const resolved: number[] = []
  /** Codes of send() rejections other than CLOSED (a closed bus leaves its messages in storage). */
  const rejected: string[] = []
  /** What the handlers saw, in order, over every life. */
  const seen: { user: Seen[]; room: Seen[] } = { user: [], room: [] }
  const resyncs: Resync[] = []
  /** From the kill to the cold start. */
  const deaths: Array<{ from: number; to?: number }> = []
  let sent = 0
  /** Each bus created counts as a life; events of an earlier life are ignored. */
  let life = 0
  let logins = 0
  let wx: WxRuntime
  let bus: Bus
  let ticker: ReturnType<typeof setInterval> | undefined
  let phaseTimer: ReturnType<typeof setTimeout> | undefined

  /** A launch: first start or cold start. Storage comes from the file, so the outbox is what the last life left. */
  function boot(): void {
    const current = ++life
    wx = createWxRuntime({ storage: new FileStorageArea(file), suspendDelay: timing.suspendDelay })
    const runtime = wx
    bus = createBus({
      url: options.url,
      platform: runtime,
      ack: true,
      // A fresh wx.login code every time, plus the openId the server gave us last time.
      login: () => ({
        op: 'userLogin',
        payload: {
          userCode: `${name}.${++logins}`,
          userOpenId: runtime.getStorageSync('openId') || undefined,
        },
      }),
      ready: { ok: 'LoginOK', fail: ['LoginError', 'BanLogin'], timeout: timing.readyTimeout },
      heartbeat: timing.heartbeat,
      reconnect: timing.reconnect,
      connectTimeout: timing.connectTimeout,
      // The faults are the demo's own doing and its tables count them: no console warning each.
      warn: false,
    })
    bus.on('LoginOK', (frame: any) => {
      if (frame.openId) runtime.setStorageSync('openId', frame.openId)
    })
    const record = (list: Seen[]) => (frame: any) => {
      if (current === life)
        list.push({ k: frame.k, offset: frame.Stream?.offset, epoch: frame.Stream?.epoch, at: clock() })
    }
    bus.on('Tick', record(seen.user))
    bus.on('RoomTick', record(seen.room))
    bus.events.on('resync', ({ stream, offset, epoch }) => {
      const kind = stream.startsWith('room:') ? 'room' : 'user'
      if (current === life) resyncs.push({ stream: kind, offset, epoch, at: clock() })
    })
    bus.events.on('ready', () => {
      if (current === life) log.push({ at: clock(), kind: 'ready' })
    })
    bus.events.on('state', ({ from }) => {
      if (current === life && from === 'ready') log.push({ at: clock(), kind: 'down' })
    })
  }

  function tick(): void {
    const n = sent++
    bus.send('Demo', { client: index, n }).then(
      () => resolved.push(n),
      (error) => {
        if (error.code !== 'CLOSED') rejected.push(error.code)
      },
    )
  }

  function startSending(delay: number): void {
    phaseTimer = setTimeout(() => {
      phaseTimer = undefined
      ticker = setInterval(tick, 1000 / options.rate)
    }, delay)
  }

  function stopSending(): void {
    clearTimeout(phaseTimer)
    clearInterval(ticker)
    phaseTimer = undefined
    ticker = undefined
  }

  return {
    index,
    name,
    /** The openId this client's server knows it by, once it has logged in. */
    openId: (): string | undefined => wx.getStorageSync('openId') || undefined,
    log,
    seen,
    resyncs,
    deaths,
    resolved,
    rejected,
    get sent() {
      return sent
    },
    get ready() {
      return bus.state === 'ready'
    },
    get queued() {
      return bus.queued
    },
    start(): void {
      boot()
      startSending(options.phase)
    },
    stopSending,
    offline: () => wx.control.offline(),
    online: () => wx.control.online(),
    hide: () => wx.control.hide(),
    show: () => wx.control.show(),
    /**
     * The app is killed between two sends; resolves with how many messages its outbox held.
     * The outbox's durability point is the end of the macrotask that queued a message (its commit
     * runs on a 0 ms timer), so the kill waits one timer turn after the last send: every message
     * queued is on disk. (A real kill can land inside that window and lose what was queued in that
     * same macrotask: the guarantee starts at the commit.)
     */
    async kill(): Promise<number> {
      stopSending()
      await new Promise((resolve) => setTimeout(resolve, 20))
      const queued = bus.queued
      if (bus.state === 'ready') log.push({ at: clock(), kind: 'down' })
      life++ // nothing from the dead bus is logged
      wx.control.kill()
      deaths.push({ from: clock() })
      // Only to cancel its timers: the runtime is dead, so this writes and sends nothing.
      bus.close()
      return queued
    },
    /** A cold start: a new runtime and a new bus on the same storage file. */
    coldStart(): void {
      const death = deaths[deaths.length - 1]
      if (death) death.to = clock()
      boot()
      startSending(0)
    },
    /** End of the run: stop everything (messages still queued stay in the file). */
    close(): void {
      stopSending()
      if (life === 0) return // never started
      life++
      bus.close()
      wx.control.kill()
    },
  }
}

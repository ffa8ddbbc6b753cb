// The bus's own timing and bookkeeping, on a scripted platform with fake timers: what the
// end-to-end tests (test/bus.test.ts) cannot interleave precisely.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { login, ready, setupBus } from './helpers/script-bus'
import { tick } from './helpers/time'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const setup = setupBus

describe('bus: session across app hide/show with the socket kept', () => {
  it('a login Promise that resolves while the app is hidden is not lost: back in front, a login goes out', async () => {
    // wx.login answers while the app is hidden: the kept socket takes no frame then. This once left
    // the bus 'authenticating' for ever on show: no login sent, no ready timer, the queue stuck.
    let hold = true
    let resolveLogin = (_f: ReturnType<typeof login>) => {}
    const { sp, bus, ops } = setup({
      login: () => (hold ? new Promise((resolve) => (resolveLogin = resolve)) : login()),
      ready,
    })
    const sent = bus.send('Chat', { n: 1 })
    sp.last!.open()
    sp.app(false)
    expect(bus.state).toBe('suspended')
    hold = false
    resolveLogin(login())
    await tick()
    sp.app(true)
    await vi.advanceTimersByTimeAsync(500)
    const socket = sp.alive()[0]!
    socket.open()
    await tick()
    expect(ops(socket)).toEqual(['userLogin'])
    socket.message(JSON.stringify({ Operator: 'LoginOK' }))
    await tick()
    expect(bus.state).toBe('ready')
    expect(ops(socket)).toEqual(['userLogin', 'Chat'])
    await expect(sent).resolves.toBeUndefined()
    expect(sp.alive()).toHaveLength(1)
    bus.close()
  })

  it('a LoginOK that arrives while the app is hidden counts: back in front, ready at once, one login', async () => {
    const { sp, bus, ops } = setup({ login, ready })
    const sent = bus.send('Chat', { n: 1 })
    sp.last!.open()
    await tick()
    expect(ops()).toEqual(['userLogin'])
    sp.app(false)
    sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
    await tick()
    expect(bus.state).toBe('suspended')
    sp.app(true)
    await tick()
    expect(bus.state).toBe('ready')
    expect(sp.sockets).toHaveLength(1)
    expect(ops()).toEqual(['userLogin', 'Chat'])
    await expect(sent).resolves.toBeUndefined()
    bus.close()
  })
})

describe('bus: ready.ok processing', () => {
  it('a ready.ok handler sees the bus ready: a volatile send from it goes out', async () => {
    const { sp, bus, ops } = setup({ login, ready })
    let seen = ''
    let volatile: Promise<void> | undefined
    bus.on('LoginOK', () => {
      seen = bus.state
      volatile = bus.send('Presence', { online: true }, { durable: false })
    })
    sp.last!.open()
    await tick()
    sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
    await tick()
    expect(seen).toBe('ready')
    await expect(volatile).resolves.toBeUndefined()
    expect(ops()).toEqual(['userLogin', 'Presence'])
    bus.close()
  })
})

describe('bus: state', () => {
  it('follows the transport, shows a refused login as unauthorized, and reconnect() leaves it', async () => {
    const { sp, bus } = setup({ login, ready })
    const states: string[] = []
    bus.onState((to) => states.push(to))
    sp.last!.open()
    await tick()
    sp.last!.message(JSON.stringify({ Operator: 'LoginError' }))
    expect(bus.state).toBe('unauthorized')
    bus.reconnect()
    sp.last!.open()
    await tick()
    // A stop code after a refused login is a plain failure, not a stale 'unauthorized'.
    sp.last!.close(4001, 'elsewhere')
    expect(bus.state).toBe('failed')
    bus.reconnect()
    sp.last!.open()
    await tick()
    sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
    sp.network(false)
    expect(states).toEqual([
      // onState starts with the state createBus left the bus in.
      'connecting',
      'authenticating',
      'unauthorized',
      'connecting',
      'authenticating',
      'failed',
      'connecting',
      'authenticating',
      'ready',
      'offline',
    ])
    bus.close()
  })
})

describe('bus: close', () => {
  it('leaves no timer behind, whatever was pending', async () => {
    const { sp, bus } = setup({ login, ready, heartbeat: { interval: 100, timeout: 100 } })
    sp.last!.open()
    await tick()
    bus.send('Chat', {}).catch(() => {})
    const req = bus.request('Get', {}, { reply: 'Got', timeout: 5000 })
    req.catch(() => {})
    bus.close()
    expect(vi.getTimerCount()).toBe(0)
    await expect(req).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(bus.once('X')).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('leaves no timer behind in backoff, nor when a login Promise resolves after it', async () => {
    const { sp, bus } = setup({ login, ready })
    sp.last!.error()
    expect(bus.state).toBe('backoff')
    bus.close()
    expect(vi.getTimerCount()).toBe(0)
    const late = setup({ login: () => new Promise((r) => setTimeout(() => r(login()), 10)), ready })
    late.sp.last!.open()
    late.bus.close()
    await vi.advanceTimersByTimeAsync(20)
    expect(vi.getTimerCount()).toBe(0)
    expect(late.sp.last!.sent).toEqual([])
  })
})

describe('bus: failures that must not stall or lose anything', () => {
  it('a lifecycle listener that throws is reported and the flush still happens', async () => {
    const { sp, bus, errors, ops } = setup({ login, ready })
    bus.events.on('ready', () => {
      throw new Error('listener bug')
    })
    const sent = bus.send('Chat', { n: 1 })
    sp.last!.open()
    await tick()
    sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
    await tick()
    expect(ops()).toEqual(['userLogin', 'Chat'])
    await expect(sent).resolves.toBeUndefined()
    expect(errors.map((e) => e.code)).toContain('HANDLER_ERROR')
    bus.close()
  })

  it('a request dropped from a full outbox fails at once with the drop, not at its timeout', async () => {
    const { bus } = setup({ outbox: { maxMessages: 1, overflow: 'dropOldest' } })
    const first = bus.request('GetTime', undefined, { reply: 'Time', timeout: 60_000 })
    bus.send('Newer', {}).catch(() => {})
    await expect(first).rejects.toMatchObject({ code: 'DROPPED' })
    bus.close()
  })

  it('a null or primitive payload travels under data instead of vanishing', async () => {
    const { sp, bus } = setup()
    bus.send('Null', null)
    bus.send('Text', 'hello')
    sp.last!.open()
    await tick()
    expect(sp.last!.sent.map((d) => JSON.parse(d as string))).toEqual([
      expect.objectContaining({ Operator: 'Null', data: null }),
      expect.objectContaining({ Operator: 'Text', data: 'hello' }),
    ])
    bus.close()
  })
})

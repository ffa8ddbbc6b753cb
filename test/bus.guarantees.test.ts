// The bus's guarantees when users, servers and callbacks misbehave: each test names the
// behaviour it proves, numbered as in the README's "What the bus guarantees" list.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { type BusOptions, createBus } from '../src/bus/index'
import { login, ready, setupBus } from './helpers/script-bus'
import { createScriptPlatform } from './helpers/script-platform'
import { tick } from './helpers/time'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const setup = setupBus

describe('1. a synchronous send failure never reorders or strands a message', () => {
  it('a send refused synchronously mid-flush (the server closing politely) stops the flush; the next link starts with it', async () => {
    const { sp, bus, frames } = setup()
    const sent = Array.from({ length: 20 }, (_, n) => bus.send('M', { n }))
    // The socket takes 10, then the close frame arrives: every later send fails synchronously,
    // as a browser WebSocket's does once it is CLOSING.
    const socket = sp.last!
    let taken = 0
    const original = socket.sent.push.bind(socket.sent)
    socket.sent.push = (...items) => {
      if (++taken === 11) sp.failSends(true)
      return original(...items)
    }
    socket.open()
    await tick()
    sp.failSends(false)
    expect(sp.sockets).toHaveLength(2) // dropped at the first failure, reconnected at once
    sp.last!.open()
    await tick()
    const first = frames(socket)
      .slice(0, 10)
      .map((f) => f.n)
    const second = frames().map((f) => f.n)
    expect(first).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    // The failed one and everything after it, in order, on the next link; nothing from the old link after the failure.
    expect(second).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18, 19])
    expect(frames(socket)).toHaveLength(11)
    await expect(Promise.all(sent)).resolves.toHaveLength(20)
    bus.close()
  })
})

describe('2. lost acks do not stall a live link', () => {
  it('no ack within ack.timeout: ACK_TIMEOUT, the link dropped, in-flight resent in order with the same ids', async () => {
    const { sp, bus, errors, frames } = setup({ ack: { timeout: 2000 }, outbox: { window: 4 } })
    for (let n = 0; n < 6; n++) bus.send('M', { n }).catch(() => {})
    sp.last!.open()
    await tick()
    const lost = frames()
    expect(lost.map((f) => f.n)).toEqual([0, 1, 2, 3])
    sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgId: lost[0].MsgId }))
    await vi.advanceTimersByTimeAsync(1999) // each ack restarts the watch
    expect(sp.sockets).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(1)
    expect(errors.map((e) => e.code)).toEqual(['ACK_TIMEOUT'])
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    sp.last!.open()
    await tick()
    const resent = frames()
    expect(resent.map((f) => f.n)).toEqual([1, 2, 3, 4])
    expect(resent.slice(0, 3).map((f) => f.MsgId)).toEqual(lost.slice(1).map((f) => f.MsgId))
    bus.close()
  })

  it('nothing in flight: no ack watch, however long the link is quiet', async () => {
    const { sp, bus, errors } = setup({ ack: { timeout: 1000 } })
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(errors).toEqual([])
    expect(sp.sockets).toHaveLength(1)
    bus.close()
  })
})

describe('3. a login that never settles does not hang the bus', () => {
  it('ready.timeout covers the login Promise itself', async () => {
    const { sp, bus, errors } = setup({ login: () => new Promise(() => {}), ready })
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(1000)
    expect(errors.map((e) => e.code)).toEqual(['TIMEOUT'])
    expect(sp.sockets[0]!.closedByUs).toBe(true)
    expect(bus.state).not.toBe('authenticating')
    bus.close()
  })

  it('without ready, the default timeout bounds the login', async () => {
    const { sp, bus, errors } = setup({ login: () => new Promise(() => {}) })
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(errors.map((e) => e.code)).toEqual(['TIMEOUT'])
    bus.close()
  })
})

describe('4. user callbacks never throw into timers or platform callbacks', () => {
  it('codec.encode that throws fails that send only; the next message still goes', async () => {
    const codec = {
      encode: (frame: Record<string, unknown>) => {
        if (frame.bad) throw new Error('cannot encode')
        return JSON.stringify(frame)
      },
      decode: (data: unknown) => JSON.parse(data as string),
    }
    const { sp, bus, errors, frames } = setup({ codec })
    const bad = bus.send('M', { bad: true })
    bad.catch(() => {})
    const good = bus.send('M', { n: 2 })
    sp.last!.open()
    await tick()
    await expect(bad).rejects.toMatchObject({ code: 'BAD_PAYLOAD' })
    await expect(good).resolves.toBeUndefined()
    expect(frames().map((f) => f.n)).toEqual([2])
    expect(bus.queued).toBe(0)
    expect(errors.map((e) => e.code)).toEqual(['BAD_PAYLOAD'])
    bus.close()
  })

  it('codec.decode, shouldReconnect, url and login that throw are reported, never thrown', async () => {
    const thrower = (what: string) => () => {
      throw new Error(what)
    }
    const decode = setup({ codec: { encode: JSON.stringify, decode: thrower('decode') } })
    decode.sp.last!.open()
    expect(() => decode.sp.last!.message('{}')).not.toThrow()
    expect(decode.errors.map((e) => e.code)).toEqual(['BAD_FRAME'])
    decode.bus.close()

    const policy = setup({ shouldReconnect: thrower('policy') })
    policy.sp.last!.open()
    expect(() => policy.sp.last!.close(1000)).not.toThrow()
    // LOGIN_ERROR: the server closed the link before saying anything.
    expect(policy.errors.map((e) => e.code)).toEqual(['LOGIN_ERROR', 'HANDLER_ERROR'])
    expect(policy.sp.sockets).toHaveLength(2) // the default policy decided: 1000 is no stop code
    policy.bus.close()

    const url = setup({ url: thrower('no token') })
    expect(url.bus.state).toBe('backoff')
    await vi.advanceTimersByTimeAsync(1000)
    expect(url.errors.length).toBeGreaterThan(0)
    expect(new Set(url.errors.map((e) => e.code))).toEqual(new Set(['URL_ERROR']))
    url.bus.close()

    const login = setup({ login: thrower('login') })
    expect(() => login.sp.last!.open()).not.toThrow()
    expect(login.errors.map((e) => e.code)).toEqual(['LOGIN_ERROR'])
    expect(login.sp.sockets[0]!.closedByUs).toBe(true)
    login.bus.close()
  })

  it('a heartbeat.message that throws is reported; the deadline still stands', async () => {
    const ping = setup({
      heartbeat: {
        interval: 100,
        timeout: 100,
        message: () => {
          throw new Error('ping')
        },
      },
    })
    ping.sp.last!.open()
    await vi.advanceTimersByTimeAsync(100)
    expect(ping.errors.map((e) => e.code)).toEqual(['HANDLER_ERROR'])
    await vi.advanceTimersByTimeAsync(100) // nothing came: the deadline still stands
    expect(ping.errors.map((e) => e.code)).toEqual(['HANDLER_ERROR', 'HEARTBEAT_TIMEOUT'])
    ping.bus.close()
  })
})

describe('5. lifecycle listeners are isolated like handlers', () => {
  it('a ready, state or error listener that throws does not stop the listeners after it', async () => {
    const { sp, bus } = setup()
    const seen: string[] = []
    for (const type of ['state', 'ready', 'error'] as const) {
      bus.events.on(type, () => {
        throw new Error(type)
      })
      bus.events.on(type, () => seen.push(type))
    }
    sp.last!.open()
    sp.last!.message('not json')
    expect(seen).toContain('state')
    expect(seen).toContain('ready')
    expect(seen.filter((s) => s === 'error').length).toBeGreaterThan(0)
    bus.close()
  })

  it('every way to listen returns its unsubscribe', () => {
    const { sp, bus } = setup()
    const seen: string[] = []
    const offs = [
      bus.events.on('state', () => seen.push('events')),
      bus.onState(() => seen.push('onState')),
      bus.on('X', () => seen.push('on')),
    ]
    // onState's first call, at once: the current state.
    expect(seen).toEqual(['onState'])
    for (const off of offs) off()
    sp.last!.open()
    sp.last!.message(JSON.stringify({ Operator: 'X' }))
    expect(seen).toEqual(['onState'])
    bus.close()
  })
})

describe('6. close() from anywhere is final', () => {
  const places = [
    'open',
    'ready',
    'close',
    'drop',
    'state',
    'error',
    'reconnecting',
    'handler',
    'overflow',
  ] as const
  for (const place of places) {
    it(`from ${place === 'handler' ? 'a handler' : place === 'overflow' ? 'an overflowing send' : `a '${place}' listener`}`, async () => {
      const { sp, bus } = setup({
        login,
        ready,
        heartbeat: { interval: 100, timeout: 100 },
        outbox: { maxMessages: 1, overflow: 'dropOldest' },
      })
      const after: string[] = []
      let closedAt = -1
      const close = () => {
        if (closedAt < 0) closedAt = after.length
        bus.close()
      }
      if (place === 'handler') bus.on('Boom', close)
      else if (place === 'overflow') bus.events.on('drop', close)
      else bus.events.on(place, close)
      bus.events.on('state', ({ to }) => after.push(`state ${to}`))
      bus.events.on('reconnecting', () => after.push('reconnecting'))
      const first = bus.send('A', {})
      first.catch(() => {})
      sp.last!.open()
      await tick()
      let second: Promise<void> | undefined
      if (place === 'open') {
        // closed already, inside the open
      } else if (place === 'ready') sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
      else if (place === 'handler') sp.last!.message(JSON.stringify({ Operator: 'Boom' }))
      else if (place === 'overflow') {
        second = bus.send('B', {})
        second.catch(() => {})
      } else if (place === 'error') sp.last!.message('not json')
      else {
        sp.last!.close(1006)
        // Not ready: a volatile send is dropped, and says so.
        if (place === 'drop') bus.send('V', {}, { durable: false }).catch(() => {})
      }
      expect(bus.state).toBe('closed')
      expect(after.slice(closedAt)).toEqual(['state closed'])
      expect(vi.getTimerCount()).toBe(0)
      const results = await Promise.allSettled([first, second].filter(Boolean))
      for (const result of results) expect(result.status).toBe('rejected')
      await vi.advanceTimersByTimeAsync(60_000)
      expect(bus.state).toBe('closed')
      expect(sp.alive()).toEqual([])
    })
  }

  it('a send() or request() after close() rejects CLOSED at once', async () => {
    const { bus } = setup()
    bus.close()
    await expect(bus.send('A', {})).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(bus.send('A', {}, { durable: false })).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(bus.request('A', {}, { reply: 'B' })).rejects.toMatchObject({ code: 'CLOSED' })
    await expect(bus.once('A')).rejects.toMatchObject({ code: 'CLOSED' })
  })
})

describe('7. one payload rule for durable and volatile sends', () => {
  const bad: [string, unknown][] = [
    ['NaN', { n: Number.NaN }],
    ['Infinity', { n: Number.POSITIVE_INFINITY }],
    ['a typed array', { bytes: new Uint8Array([1, 2]) }],
    ['an ArrayBuffer', { buffer: new ArrayBuffer(2) }],
    ['undefined inside an array', { list: [1, undefined] }],
    ['a Map', { m: new Map() }],
    ['a function', { f: () => 1 }],
    ['a BigInt', { b: BigInt(1) }],
  ]
  for (const [what, payload] of bad) {
    it(`refuses ${what}, durable or volatile`, async () => {
      const { sp, bus } = setup()
      sp.last!.open()
      await tick()
      await expect(bus.send('M', payload as any)).rejects.toMatchObject({ code: 'BAD_PAYLOAD' })
      await expect(bus.send('M', payload as any, { durable: false })).rejects.toMatchObject({
        code: 'BAD_PAYLOAD',
      })
      expect(sp.last!.sent).toEqual([])
      bus.close()
    })
  }

  it('an own __proto__ key reaches the wire, durable and volatile', async () => {
    const { sp, bus } = setup()
    const payload = JSON.parse('{"__proto__": {"admin": true}, "a": 1}')
    bus.send('Durable', payload)
    sp.last!.open()
    await tick()
    await bus.send('Volatile', payload, { durable: false })
    const wire = sp.last!.sent.map((d) => d as string)
    expect(wire[0]).toContain('"__proto__":{"admin":true}')
    expect(wire[1]).toContain('"__proto__":{"admin":true}')
    bus.close()
  })
})

describe('8. operators are validated', () => {
  it('send() and request() with an operator that is not a non-empty string reject BAD_OPERATOR', async () => {
    const { sp, bus } = setup()
    for (const op of [undefined, 123, '', {}]) {
      await expect(bus.send(op as any, {})).rejects.toMatchObject({ code: 'BAD_OPERATOR' })
      await expect(bus.send(op as any, {}, { durable: false })).rejects.toMatchObject({
        code: 'BAD_OPERATOR',
      })
      await expect(bus.request(op as any, {}, { reply: 'R' })).rejects.toMatchObject({
        code: 'BAD_OPERATOR',
      })
    }
    sp.last!.open()
    await tick()
    expect(sp.last!.sent).toEqual([])
    expect(bus.queued).toBe(0)
    bus.close()
  })

  it("an inbound operator '*' reaches '*' handlers once", () => {
    const { sp, bus } = setup()
    let calls = 0
    bus.on('*', () => calls++)
    sp.last!.open()
    sp.last!.message(JSON.stringify({ Operator: '*' }))
    expect(calls).toBe(1)
    bus.close()
  })

  it('a platform delivering undefined or null as data gets BAD_FRAME, not a TypeError', () => {
    const { sp, bus, errors } = setup()
    sp.last!.open()
    expect(() => sp.last!.message(undefined as any)).not.toThrow()
    expect(() => sp.last!.message(null as any)).not.toThrow()
    expect(errors.map((e) => e.code)).toEqual(['BAD_FRAME', 'BAD_FRAME'])
    bus.close()
  })
})

describe('9. url may be async', () => {
  it('connects to what the Promise resolves to; a rejection is URL_ERROR and backs off', async () => {
    let n = 0
    const { sp, bus, errors } = setup({
      url: () =>
        ++n === 1 ? Promise.reject(new Error('token service down')) : Promise.resolve(`ws://test/?t=${n}`),
      reconnect: { minDelay: 100 },
    })
    await tick()
    expect(errors.map((e) => e.code)).toEqual(['URL_ERROR'])
    expect(sp.sockets).toHaveLength(0)
    await vi.advanceTimersByTimeAsync(100)
    expect(sp.sockets.map((s) => s.url)).toEqual(['ws://test/?t=2'])
    sp.last!.open()
    expect(bus.state).toBe('ready')
    bus.close()
  })

  it('a URL Promise that never settles is a connect timeout', async () => {
    const { sp, bus, errors } = setup({ url: () => new Promise<string>(() => {}), connectTimeout: 500 })
    await vi.advanceTimersByTimeAsync(500)
    expect(errors.map((e) => e.code)).toEqual(['CONNECT_TIMEOUT'])
    expect(sp.sockets).toHaveLength(0)
    bus.close()
  })
})

describe('options: out of range fails createBus with BAD_OPTION naming the option', () => {
  const cases: [string, Partial<BusOptions>][] = [
    ['outbox.window', { outbox: { window: 0 } }],
    ['outbox.maxMessages', { outbox: { maxMessages: 0.5 } }],
    ['heartbeat.interval', { heartbeat: { interval: 0 } }],
    ['heartbeat.timeout', { heartbeat: { timeout: -1 } }],
    ['connectTimeout', { connectTimeout: 0 }],
    ['reconnect.minDelay', { reconnect: { minDelay: -1 } }],
    ['reconnect.maxDelay', { reconnect: { minDelay: 1000, maxDelay: 10 } }],
    ['ready.timeout', { ready: { ok: 'OK', timeout: 0 } }],
    ['ack.timeout', { ack: { timeout: 0 } }],
    ['opKey', { opKey: '' }],
    ['url', { url: 42 as any }],
  ]
  for (const [option, given] of cases) {
    it(option, () => {
      const sp = createScriptPlatform()
      expect(() => createBus({ url: 'ws://x', platform: sp.platform, ...given })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringContaining(option) }),
      )
      expect(sp.sockets).toHaveLength(0)
      expect(vi.getTimerCount()).toBe(0)
    })
  }
})

describe('session end: the server ends the session with a frame, whatever close code follows', () => {
  it('SessionEnd: failed with SESSION_ENDED, no reconnect loop; reconnect() leaves it', async () => {
    const { sp, bus, errors } = setup({ login, ready })
    sp.last!.open()
    await tick()
    sp.last!.message(JSON.stringify({ Operator: 'LoginOK' }))
    sp.last!.message(JSON.stringify({ Operator: 'SessionEnd', reason: 'logged in elsewhere' }))
    expect(bus.state).toBe('failed')
    expect(errors.map((e) => e.code)).toEqual(['SESSION_ENDED'])
    sp.sockets[0]!.close(1006) // the close that follows, with whatever code the platform reports
    await vi.advanceTimersByTimeAsync(600_000)
    expect(sp.sockets).toHaveLength(1)
    bus.reconnect()
    expect(sp.sockets).toHaveLength(2)
    bus.close()
  })
})

describe('review findings: callbacks that call back, timers that cannot be that long, volatile sends', () => {
  it('close() or reconnect() inside shouldReconnect: final, and never two sockets', async () => {
    let bus: ReturnType<typeof setup>['bus'] | undefined
    const closing = setup({
      shouldReconnect: () => {
        bus!.close()
        return true
      },
    })
    bus = closing.bus
    closing.sp.last!.open()
    closing.sp.last!.close(1006)
    await vi.advanceTimersByTimeAsync(60_000)
    expect(closing.bus.state).toBe('closed')
    expect(closing.sp.sockets).toHaveLength(1)
    expect(vi.getTimerCount()).toBe(0)

    let other: ReturnType<typeof setup>['bus'] | undefined
    const again = setup({
      shouldReconnect: () => {
        other!.reconnect()
        return true
      },
    })
    other = again.bus
    again.sp.last!.open()
    again.sp.last!.close(1006)
    await vi.advanceTimersByTimeAsync(1000)
    expect(again.sp.alive()).toHaveLength(1)
    again.bus.close()
    expect(again.sp.alive()).toHaveLength(0)
  })

  it('close() inside heartbeat.message: no throw into the timer, nothing after', async () => {
    let bus: ReturnType<typeof setup>['bus'] | undefined
    const s = setup({
      heartbeat: {
        interval: 100,
        timeout: 100,
        message: () => {
          bus!.close()
          return 'ping'
        },
      },
    })
    bus = s.bus
    s.sp.last!.open()
    await vi.advanceTimersByTimeAsync(100)
    expect(s.bus.state).toBe('closed')
    expect(s.sp.last!.sent).toEqual([])
    expect(vi.getTimerCount()).toBe(0)
  })

  it('delays longer than a timer can take are refused, not fired at once', () => {
    const sp = createScriptPlatform()
    for (const given of [
      { heartbeat: { interval: Number.POSITIVE_INFINITY } },
      { connectTimeout: 2 ** 31 },
      { ready: { ok: 'OK', timeout: Number.POSITIVE_INFINITY } },
      { reconnect: { maxDelay: Number.POSITIVE_INFINITY } },
    ] as Partial<BusOptions>[])
      expect(() => createBus({ url: 'ws://x', platform: sp.platform, ...given })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTION' }),
      )
    for (const given of [
      { stopCodes: 4001 },
      { login: { op: 'L' } },
      { ready: { ok: 'OK', fail: 'LoginError' } },
      { outbox: { overflow: 'drop' } },
      { codec: { encode: 1, decode: JSON.parse } },
    ] as unknown as Partial<BusOptions>[])
      expect(() => createBus({ url: 'ws://x', platform: sp.platform, ...given })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTION' }),
      )
    expect(sp.sockets).toHaveLength(0)
  })

  it('a volatile send the platform never answers is settled by close()', async () => {
    // A platform that takes every frame and never reports a result.
    const platform = {
      name: 'silent',
      connect: (_url: string, listeners: { open(): void }) => {
        queueMicrotask(() => listeners.open())
        return { send() {}, close() {} }
      },
    }
    const bus = createBus({ url: 'ws://x', platform, heartbeat: false })
    await tick()
    expect(bus.state).toBe('ready')
    const hanging = bus.send('Typing', {}, { durable: false })
    bus.close()
    await expect(hanging).rejects.toMatchObject({ code: 'CLOSED' })
  })

  it('a codec that returns what no socket can send fails that send, not every link', async () => {
    const s = setup({
      codec: {
        encode: () => new Uint8Array([1]) as unknown as string,
        decode: (d) => JSON.parse(d as string),
      },
    })
    const sent = s.bus.send('M', { n: 1 })
    sent.catch(() => {})
    s.sp.last!.open()
    await tick()
    await expect(sent).rejects.toMatchObject({ code: 'BAD_PAYLOAD' })
    expect(s.bus.queued).toBe(0)
    s.bus.close()
  })

  it('a debug function that throws breaks nothing', () => {
    const s = setup({
      debug: () => {
        throw new Error('log broke')
      },
    })
    expect(() => s.sp.last!.open()).not.toThrow()
    expect(s.bus.state).toBe('ready')
    s.bus.close()
  })
})

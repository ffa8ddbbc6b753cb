// What a first-time user meets: option mistakes told plainly, failures that say so without a
// listener, a fire-and-forget send that cannot crash Node, frames visible with `debug`, and the
// state a listener added after createBus can still read.
import { spawnSync } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createBus } from '../src/bus/index'
import { type BusOptions, resolveOptions } from '../src/bus/options'
import { MpbusError } from '../src/errors'
import { detectPlatform } from '../src/platform/detect'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { login, ready, setupBus } from './helpers/script-bus'
import { createScriptPlatform } from './helpers/script-platform'

const platform = { name: 'test', connect: () => ({ send() {}, close() {} }) }

/** The BAD_OPTION message `given` gets from resolveOptions. */
function refusal(given: Record<string, unknown>): string {
  try {
    resolveOptions({ url: 'ws://x', platform, ...given } as BusOptions)
  } catch (e) {
    expect(e).toBeInstanceOf(MpbusError)
    expect((e as MpbusError).code).toBe('BAD_OPTION')
    return (e as MpbusError).message
  }
  throw new Error(`taken: ${JSON.stringify(given)}`)
}

describe('options: messages that help', () => {
  it('an unknown name, at any depth, names it and the closest known one', () => {
    expect(refusal({ heartbeat: { intervall: 1 } })).toBe(
      'heartbeat.intervall: unknown option; did you mean interval?',
    )
    expect(refusal({ hearbeat: {} })).toBe('hearbeat: unknown option; did you mean heartbeat?')
    expect(refusal({ reconnect: { maxDelays: 5 } })).toBe(
      'reconnect.maxDelays: unknown option; did you mean maxDelay?',
    )
    expect(refusal({ outbox: { ttL: 5 } })).toContain('did you mean ttl?')
    expect(refusal({ ready: { ok: 'OK', timout: 5 } })).toContain('did you mean timeout?')
    expect(refusal({ ack: { opp: 'A' } })).toContain('did you mean op?')
    // Nothing near: no guess.
    expect(refusal({ somethingElse: 1 })).toBe('somethingElse: unknown option')
  })

  it('a wrong type says what it must be and what it got', () => {
    expect(refusal({ heartbeat: { interval: '1000' } })).toBe(
      'heartbeat.interval: expected a number in 1..2147483647, got "1000"',
    )
    expect(refusal({ ack: 'yes' })).toBe('ack: expected boolean or object, got "yes"')
    expect(refusal({ ready: 'LoginOK' })).toBe('ready: expected object, got "LoginOK"')
    expect(refusal({ stopCodes: 4001 })).toBe('stopCodes: expected an array, got 4001')
    expect(refusal({ idKey: '' })).toBe('idKey: expected a non-empty string, got ""')
    expect(refusal({ reconnect: { maxAttempts: 1.5 } })).toBe(
      'reconnect.maxAttempts: expected a whole number in 0..Infinity, got 1.5',
    )
    expect(refusal({ debug: 'yes' })).toBe('debug: expected boolean or function or payloads, got "yes"')
    expect(refusal({ warn: 1 })).toBe('warn: expected boolean, got 1')
    expect(refusal({ outbox: { overflow: 'drop' } })).toBe(
      'outbox.overflow: expected reject or dropOldest, got "drop"',
    )
  })

  it('url: ws:// or wss://, and a missing one says what to pass', () => {
    expect(refusal({ url: 'localhost:8080' })).toBe(
      'url: expected ws://… or wss://…, or a function that returns it; got "localhost:8080"',
    )
    expect(refusal({ url: 'http://x' })).toContain('got "http://x"')
    expect(refusal({ url: undefined })).toContain('got undefined')
    for (const url of ['ws://x', 'WSS://x/y?t=1', () => 'wss://x'])
      expect(() => resolveOptions({ url, platform } as BusOptions)).not.toThrow()
  })

  it('a provided url is checked too, each time: URL_ERROR, and the bus backs off', async () => {
    vi.useFakeTimers()
    try {
      const { sp, bus, errors } = setupBus({ url: () => Promise.resolve('localhost:8080') })
      await vi.advanceTimersByTimeAsync(0)
      expect(errors.map((e) => [e.code, e.message])).toEqual([
        ['URL_ERROR', 'not a ws:// or wss:// URL: localhost:8080'],
      ])
      expect(sp.sockets).toHaveLength(0)
      expect(bus.state).toBe('backoff')
      bus.close()
    } finally {
      vi.useRealTimers()
    }
  })

  it('NO_PLATFORM says what to pass', () => {
    vi.stubGlobal('WebSocket', undefined)
    try {
      expect(() => detectPlatform()).toThrow(
        expect.objectContaining({
          code: 'NO_PLATFORM',
          message: expect.stringMatching(/pass platform: wx .*webSocketPlatform\(WebSocket\) of ws in Node/),
        }),
      )
    } finally {
      vi.unstubAllGlobals()
    }
  })
})

describe('send(): fire and forget', () => {
  it('a send nobody awaits does not end Node with an unhandled rejection at close()', () => {
    // A process of its own: the test runner catches unhandled rejections itself.
    const script = `
      import { createBus } from './src/bus/index.ts'
      import { createMemoryStorage } from './src/platform/memory-storage.ts'
      const platform = { name: 'x', connect: () => ({ send() {}, close() {} }) }
      const bus = createBus({ url: 'ws://x', platform, storage: createMemoryStorage(), heartbeat: false })
      bus.send('Chat', { text: 'hi' })
      bus.close()
      const awaited = bus.send('Chat', {})
      awaited.then(() => console.log('resolved'), (e) => console.log('rejected', e.code))
    `
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: `${__dirname}/..`,
      encoding: 'utf8',
    })
    expect(run.stderr).not.toContain('CLOSED')
    expect(run.stdout.trim()).toBe('rejected CLOSED')
    expect(run.status).toBe(0)
  })

  it('still rejects for whoever awaits it', async () => {
    const { bus } = setupBus()
    const sent = bus.send('Chat', {})
    bus.close()
    await expect(sent).rejects.toMatchObject({ code: 'CLOSED' })
  })
})

describe('debug: frames in and out', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('logs each frame by operator, id and size; data only with debug: "payloads"', async () => {
    const lines: unknown[][] = []
    const { sp, bus } = setupBus({ login, ready, debug: (...a) => lines.push(a) })
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(0)
    sp.last!.message('{"Operator":"LoginOK"}')
    const sent = bus.send('Chat', { text: 'hi' })
    await vi.advanceTimersByTimeAsync(0)
    await sent
    const frames = lines.filter((l) => l[0] === 'in' || l[0] === 'out')
    const id = JSON.parse(sp.last!.sent[1] as string).MsgId
    expect(frames).toEqual([
      ['out', 'userLogin', undefined, `${(sp.last!.sent[0] as string).length} B`],
      ['in', 'LoginOK', undefined, '22 B'],
      ['out', 'Chat', id, `${(sp.last!.sent[1] as string).length} B`],
    ])
    bus.close()

    const log = vi.spyOn(console, 'log').mockImplementation(() => {})
    try {
      const more = setupBus({ debug: 'payloads' })
      more.sp.last!.open()
      more.sp.last!.message('{"Operator":"Push","n":1}')
      expect(log).toHaveBeenCalledWith(
        '[mpbus]',
        'in',
        'Push',
        undefined,
        '25 B',
        '{"Operator":"Push","n":1}',
      )
      // A message of several frames (docs/protocol.md, batches) is one line, its data once.
      log.mockClear()
      const batch = '[{"Operator":"A"},{"Operator":"B"}]'
      more.sp.last!.message(batch)
      const ins = log.mock.calls.filter((call) => call[1] === 'in')
      expect(ins).toEqual([['[mpbus]', 'in', '2 frames', undefined, `${batch.length} B`, batch]])
      more.bus.close()
    } finally {
      log.mockRestore()
    }
  })
})

describe('state: a listener added after createBus', () => {
  it('onState starts with the current state and the one before it', () => {
    const { sp, bus } = setupBus()
    const seen: string[][] = []
    bus.onState((to, from) => seen.push([from, to]))
    sp.last!.open()
    expect(seen).toEqual([
      ['idle', 'connecting'],
      ['connecting', 'authenticating'],
      ['authenticating', 'ready'],
    ])
    bus.close()
  })
})

describe('nothing fails in silence', () => {
  let warn: ReturnType<typeof vi.fn<(...args: unknown[]) => void>>
  beforeEach(() => {
    vi.useFakeTimers()
    warn = vi.fn<(...args: unknown[]) => void>()
    vi.spyOn(console, 'warn').mockImplementation(warn)
  })
  afterEach(() => {
    vi.restoreAllMocks()
    vi.useRealTimers()
  })

  /** A bus with no error listener on a platform whose connects fail as `fail` says. */
  function unheard(options: Partial<BusOptions> = {}) {
    const sp = createScriptPlatform()
    const bus = createBus({
      url: 'ws://test',
      platform: sp.platform,
      storage: createMemoryStorage(),
      heartbeat: false,
      reconnect: { minDelay: 10, maxDelay: 10 },
      ...options,
    })
    return { sp, bus }
  }

  it('without error listeners, a bus that cannot connect warns once, and again when the reason changes', async () => {
    const { sp, bus } = unheard()
    for (let i = 0; i < 3; i++) {
      sp.last!.error('connect ECONNREFUSED')
      await vi.advanceTimersByTimeAsync(10)
    }
    expect(warn.mock.calls).toEqual([
      ['[mpbus]', 'SOCKET_ERROR: connect ECONNREFUSED (no error listener; warn: false quiets this)'],
    ])
    sp.last!.error('getaddrinfo ENOTFOUND')
    await vi.advanceTimersByTimeAsync(10)
    sp.last!.error('getaddrinfo ENOTFOUND')
    expect(warn.mock.calls.map((c) => c[1])).toEqual([
      expect.stringContaining('ECONNREFUSED'),
      expect.stringContaining('ENOTFOUND'),
    ])
    bus.close()
  })

  it('is quiet with warn: false, or with an error listener', async () => {
    const quiet = unheard({ warn: false })
    quiet.sp.last!.error('connect ECONNREFUSED')
    const heard = unheard()
    heard.bus.events.on('error', () => {})
    heard.sp.last!.error('connect ECONNREFUSED')
    await vi.advanceTimersByTimeAsync(10)
    expect(warn).not.toHaveBeenCalled()
    quiet.bus.close()
    heard.bus.close()
  })

  it('a login the server closes before its answer is an error naming the code and reason', async () => {
    const { sp, bus, errors } = setupBus({ login, ready, reconnect: { minDelay: 10, maxDelay: 10 } })
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(0)
    sp.last!.close(1008, 'login first')
    expect(errors.map((e) => [e.code, e.message])).toEqual([
      ['LOGIN_ERROR', "closed before the login's answer: 1008 login first"],
    ])
    // Without `ready`: a close before any frame from the server.
    await vi.advanceTimersByTimeAsync(10)
    bus.close()
    const bare = setupBus()
    bare.sp.last!.open()
    expect(bare.bus.state).toBe('ready')
    bare.sp.last!.close(1008, 'login first')
    expect(bare.errors.map((e) => e.message)).toEqual(["closed before the login's answer: 1008 login first"])
    // After a frame, a close is an ordinary lost link.
    bare.sp.last!.open()
    bare.sp.last!.message('{"Operator":"Hello"}')
    bare.sp.last!.close(1006)
    expect(bare.errors).toHaveLength(1)
    bare.bus.close()
  })

  it('a bus without storage says once that its outbox is in memory only', () => {
    const sp = createScriptPlatform()
    const a = createBus({ url: 'ws://test', platform: sp.platform, heartbeat: false })
    const b = createBus({ url: 'ws://test', platform: sp.platform, heartbeat: false })
    expect(warn.mock.calls.filter((c) => String(c[1]).includes('memory only'))).toHaveLength(1)
    a.close()
    b.close()
  })
})

describe('a refusal from the server', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('rejects the send with its code and reason, leaves the outbox, and is never resent', async () => {
    const { sp, bus, errors, frames } = setupBus({ ack: true })
    sp.last!.open()
    const noHandler = bus.send('Chat', { text: 'hi' })
    const invalid = bus.send('Note', { text: '' })
    const fine = bus.send('Note', { text: 'ok' })
    await vi.advanceTimersByTimeAsync(0)
    const [chat, note, ok] = frames().map((f) => f.MsgId)
    sp.last!.message(
      JSON.stringify({ Operator: 'Ack', MsgId: chat, refused: 'NO_HANDLER', reason: 'no handler for Chat' }),
    )
    sp.last!.message(
      JSON.stringify({ Operator: 'Ack', MsgId: note, refused: 'INVALID', reason: 'text is empty' }),
    )
    await expect(noHandler).rejects.toMatchObject({
      code: 'NO_HANDLER',
      message: 'NO_HANDLER: no handler for Chat',
    })
    await expect(invalid).rejects.toMatchObject({ code: 'REFUSED', message: 'INVALID: text is empty' })
    expect(errors.map((e) => e.code)).toEqual(['NO_HANDLER', 'REFUSED'])
    expect(bus.queued).toBe(1)
    // The link ends before the last ack: only that one is sent again.
    sp.last!.close(1006)
    await vi.advanceTimersByTimeAsync(1000)
    sp.last!.open()
    await vi.advanceTimersByTimeAsync(0)
    expect(frames().map((f) => f.MsgId)).toEqual([ok])
    sp.last!.message(JSON.stringify({ Operator: 'Ack', MsgId: ok }))
    await fine
    bus.close()
  })
})

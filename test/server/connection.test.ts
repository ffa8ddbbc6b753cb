// One connection on its own: its phase from the login to the close, what each phase does with a
// frame, the rate gate (on a fake clock), and the codes of what it reports. The socket is an
// EventEmitter stand-in that records what is sent, paused and closed; the engine is the memory one.
import { EventEmitter } from 'node:events'
import { afterEach, describe, expect, it, vi } from 'vitest'
import type { WebSocket } from 'ws'
import { MpbusError } from '../../src/errors'
import { accept, type Node } from '../../src/server/connection'
import { createFanout, hear, readersOf } from '../../src/server/fanout'
import { memoryEngine } from '../../src/server/memory-engine'
import { frameOf, userStream } from '../../src/server/streams'
import type { LoginDecision, ServerHandler } from '../../src/server/types'

afterEach(() => void vi.useRealTimers())

class FakeSocket extends EventEmitter {
  OPEN = 1
  readyState = 1
  sent: any[] = []
  closes: Array<[number, string]> = []
  paused = 0
  resumed = 0
  send(data: string) {
    this.sent.push(JSON.parse(data))
  }
  close(code: number, reason: string) {
    this.closes.push([code, reason])
    this.readyState = 3
    this.emit('close', code)
  }
  pause() {
    this.paused++
  }
  resume() {
    this.resumed++
  }
  /** A text frame from the client. */
  frame(f: object | string) {
    this.emit('message', Buffer.from(typeof f === 'string' ? f : JSON.stringify(f)), false)
  }
  ops() {
    return this.sent.map((f) => f.Operator)
  }
}

/** A deferred value: the test decides when `authenticate` or the engine answers. */
function later<T>() {
  let resolve!: (value: T) => void
  const promise = new Promise<T>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

const flush = () => new Promise<void>((resolve) => setImmediate(resolve))

function setup(
  over: {
    authenticate?: (login: any) => LoginDecision | PromiseLike<LoginDecision>
    handlers?: Record<string, ServerHandler>
    rate?: { frames: number; interval: number }
    engine?: ReturnType<typeof memoryEngine>
  } = {},
) {
  const engine = over.engine || memoryEngine()
  const errors: Array<[MpbusError, string | undefined]> = []
  const report = (error: MpbusError, user: string | undefined) => void errors.push([error, user])
  const fanout = createFanout(engine, report)
  engine.subscribe((event) => hear(fanout, event))
  const node: Node = {
    authenticate: over.authenticate || ((login) => login.openId),
    handler: (op) => (over.handlers || {})[op],
    batchAcks: false,
    ackOp: 'Ack',
    idKey: 'MsgId',
    rate: over.rate || { frames: 1000, interval: 1000 },
    backlog: { frames: 1000, bytes: 1 << 22 },
    maxIdLength: 128,
    loginTimeout: Infinity,
    alive: new WeakSet(),
    engine,
    fanout,
    running: new Set(),
    report,
    store: async (_user, call) => call(),
    push: async (user, op, payload) => engine.append(userStream(user), frameOf(op, payload)),
  }
  const ws = new FakeSocket()
  const c = accept(node, ws as unknown as WebSocket)
  return { node, engine, ws, c, errors, codes: () => errors.map(([e]) => e.code) }
}

describe('connection: phases', () => {
  it('walks login → authenticating → resuming → ready, one phase at a time', async () => {
    const decision = later<LoginDecision>()
    const { ws, c, node } = setup({ authenticate: () => decision.promise })
    expect(c.phase).toBe('login')
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    expect(c.phase).toBe('authenticating')
    expect(readersOf(node.fanout, 'alice')).toEqual([])
    decision.resolve('alice')
    await flush()
    expect(c.phase).toBe('ready')
    expect(c.user).toBe('alice')
    expect(ws.sent).toEqual([
      { Operator: 'LoginOK', Streams: { 'user:alice': { offset: 0, epoch: expect.any(String) } } },
    ])
    expect(readersOf(node.fanout, 'alice')).toEqual([c])
  })

  it('holds a live push heard while resuming and sends it right after the login answer', async () => {
    const engine = memoryEngine()
    const read = later<void>()
    // The tip is read before the push and answered after it: the push must not be lost in between.
    const slow = Object.assign(Object.create(engine), {
      tip: (stream: string) => {
        const tip = engine.tip(stream)
        return read.promise.then(() => tip)
      },
    })
    const { ws, c } = setup({ engine: slow })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    await flush()
    expect(c.phase).toBe('resuming')
    ws.frame({ Operator: 'Heart' })
    engine.append('user:alice', { Operator: 'Quote', n: 1 })
    expect(ws.sent).toEqual([])
    expect(c.held).toHaveLength(1)
    read.resolve()
    await flush()
    expect(ws.ops()).toEqual(['LoginOK', 'Quote', 'HeartOK'])
    expect(ws.sent[0].Streams['user:alice'].offset).toBe(0)
    expect(ws.sent[1].Stream).toEqual({ name: 'user:alice', offset: 1, epoch: expect.any(String) })
    expect(c.held).toEqual([])
  })

  it('a first frame other than the login closes with 1008 (LOGIN_REQUIRED); a Heart then is not answered', async () => {
    const { ws, c, codes } = setup()
    ws.frame({ Operator: 'Heart' })
    expect(c.phase).toBe('login')
    ws.frame({ Operator: 'Chat', MsgId: 'm1' })
    expect(c.phase).toBe('closed')
    expect(ws.closes).toEqual([[1008, 'login first']])
    expect(codes()).toEqual(['LOGIN_REQUIRED'])
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    await flush()
    expect(ws.sent).toEqual([])
  })

  it('a refused login answers LoginError and closes with 1008; a throwing authenticate is LOGIN_ERROR', async () => {
    const refused = setup({ authenticate: () => null })
    refused.ws.frame({ Operator: 'userLogin' })
    refused.ws.frame({ Operator: 'Chat', MsgId: 'm1' })
    await flush()
    expect(refused.ws.sent).toEqual([{ Operator: 'LoginError' }])
    expect(refused.ws.closes).toEqual([[1008, 'login refused']])
    expect(refused.c.phase).toBe('closed')
    expect(refused.errors).toEqual([])
    const cause = new Error('token service down')
    const threw = setup({
      authenticate: () => {
        throw cause
      },
    })
    threw.ws.frame({ Operator: 'userLogin' })
    await flush()
    expect(threw.errors[0]![0]).toMatchObject({ code: 'LOGIN_ERROR', message: 'token service down', cause })
    expect(threw.ws.sent).toEqual([{ Operator: 'LoginError' }])
  })

  it('an ENGINE_DOWN thrown in authenticate (its server.join while Redis is away) is 1013, not a refusal', async () => {
    // The engine cannot serve the login (docs/protocol.md, 1013): the client backs off and logs in
    // again. A LoginError would be the app's decision, and the client would stop for good.
    const down = new MpbusError('ENGINE_DOWN', 'Redis: CLUSTERDOWN The cluster is down')
    const { ws, c, errors } = setup({
      authenticate: () => {
        throw down
      },
    })
    ws.frame({ Operator: 'userLogin' })
    await flush()
    expect(ws.sent).toEqual([])
    expect(ws.closes).toEqual([[1013, 'engine unavailable']])
    expect(c.phase).toBe('closed')
    expect(errors).toEqual([[down, undefined]])
  })

  it('refuses a frame that is not JSON, or has no operator, with 1007 (BAD_FRAME)', () => {
    for (const bad of ['not json', '{"Operator":""}', '[1]', '{"op":"x"}']) {
      const { ws, codes } = setup()
      ws.frame(bad)
      expect(ws.closes).toEqual([[1007, bad === 'not json' ? 'not JSON' : 'no Operator']])
      expect(codes()).toEqual(['BAD_FRAME'])
    }
  })

  it('reports a socket error as SOCKET_ERROR, one past maxFrameBytes as FRAME_TOO_LARGE', () => {
    const { ws, codes } = setup()
    ws.emit('error', Object.assign(new Error('too big'), { code: 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' }))
    ws.emit('error', new Error('reset'))
    expect(codes()).toEqual(['FRAME_TOO_LARGE', 'SOCKET_ERROR'])
  })
})

describe('connection: messages and acks', () => {
  it('runs handlers one after another and acks each after its handler, in order', async () => {
    const order: string[] = []
    const first = later<void>()
    const { ws } = setup({
      handlers: {
        Slow: () => {
          order.push('slow')
          return first.promise
        },
        Fast: () => void order.push('fast'),
      },
    })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    ws.frame({ Operator: 'Slow', MsgId: 'a' })
    ws.frame({ Operator: 'Fast', MsgId: 'b' })
    await flush()
    expect(order).toEqual(['slow'])
    expect(ws.ops()).toEqual(['LoginOK'])
    first.resolve()
    await flush()
    expect(order).toEqual(['slow', 'fast'])
    expect(ws.sent.slice(1)).toEqual([
      { Operator: 'Ack', MsgId: 'a' },
      { Operator: 'Ack', MsgId: 'b' },
    ])
  })

  it('a handler that throws is HANDLER_ERROR, gets no ack, and its resend runs it again', async () => {
    let runs = 0
    const { ws, errors } = setup({
      handlers: {
        Save: () => {
          if (++runs === 1) throw new Error('disk full')
        },
      },
    })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    ws.frame({ Operator: 'Save', MsgId: 'm1' })
    await flush()
    expect(errors.map(([e, user]) => [e.code, e.message, user])).toEqual([
      ['HANDLER_ERROR', 'disk full', 'alice'],
    ])
    expect(ws.ops()).toEqual(['LoginOK'])
    ws.frame({ Operator: 'Save', MsgId: 'm1' })
    await flush()
    expect(runs).toBe(2)
    expect(ws.sent[1]).toEqual({ Operator: 'Ack', MsgId: 'm1' })
  })

  it('a repeat is acked again without its handler; a resend still being handled is IN_PROGRESS (1013)', async () => {
    const engine = memoryEngine()
    const hold = later<void>()
    let runs = 0
    const handlers = {
      Slow: () => {
        runs++
        return hold.promise
      },
    }
    const a = setup({ engine, handlers })
    a.ws.frame({ Operator: 'userLogin', openId: 'alice' })
    a.ws.frame({ Operator: 'Slow', MsgId: 'm1' })
    await flush()
    const b = setup({ engine, handlers })
    b.ws.frame({ Operator: 'userLogin', openId: 'alice' })
    b.ws.frame({ Operator: 'Slow', MsgId: 'm1' })
    await flush()
    expect(b.ws.closes).toEqual([[1013, 'message m1 is being handled']])
    expect(b.codes()).toEqual(['IN_PROGRESS'])
    hold.resolve()
    await flush()
    a.ws.frame({ Operator: 'Slow', MsgId: 'm1' })
    await flush()
    expect(a.ws.sent.slice(1)).toEqual([
      { Operator: 'Ack', MsgId: 'm1' },
      { Operator: 'Ack', MsgId: 'm1' },
    ])
    expect(runs).toBe(1)
  })

  it('an engine that cannot remember an id closes with 1013 (ENGINE_DOWN), neither handled nor acked', async () => {
    const engine = memoryEngine()
    const cause = new Error('redis away')
    const broken = Object.assign(Object.create(engine), {
      remember: () => Promise.reject(cause),
    })
    let runs = 0
    const { ws, errors } = setup({ engine: broken, handlers: { Chat: () => void runs++ } })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    ws.frame({ Operator: 'Chat', MsgId: 'm1' })
    await flush()
    expect(ws.closes).toEqual([[1013, 'engine unavailable']])
    expect(errors[0]![0]).toMatchObject({ code: 'ENGINE_DOWN', message: 'redis away', cause })
    expect([runs, ws.ops()]).toEqual([0, ['LoginOK']])
  })
})

describe('connection: the rate gate', () => {
  it('past rate.frames in an interval stops reading until the interval ends; nothing is refused', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const seen: number[] = []
    const { ws, c } = setup({
      rate: { frames: 3, interval: 1000 },
      handlers: { Chat: (f) => void seen.push(f.n) },
    })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    for (let n = 0; n < 4; n++) ws.frame({ Operator: 'Chat', n })
    await flush()
    // The login and two messages fit in the window; the third message waits for the gate.
    expect(ws.paused).toBe(1)
    expect(seen).toEqual([0, 1])
    await vi.advanceTimersByTimeAsync(999)
    expect([ws.resumed, seen.length]).toEqual([0, 2])
    await vi.advanceTimersByTimeAsync(1)
    await flush()
    expect(ws.resumed).toBe(1)
    expect(seen).toEqual([0, 1, 2, 3])
    expect(c.gate.held).toBeUndefined()
    expect(ws.closes).toEqual([])
  })

  it('a close while held opens the gate without reading again, and leaves no timer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const { ws, c } = setup({ rate: { frames: 1, interval: 1000 } })
    ws.frame({ Operator: 'userLogin', openId: 'alice' })
    ws.frame({ Operator: 'Chat', MsgId: 'm1' })
    expect(c.gate.held).toBeDefined()
    ws.close(1001, 'going away')
    await flush()
    expect(c.phase).toBe('closed')
    expect(vi.getTimerCount()).toBe(0)
    expect(ws.resumed).toBe(0)
  })
})

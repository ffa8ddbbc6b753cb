/**
 * resolveOptions, option by option: the value at each bound is taken, the one just past it is refused
 * with BAD_OPTION naming the option, a value of the wrong type is refused, and an option left out (or
 * given as undefined) takes its default. Written against the first, call-per-option version and kept
 * for the table-driven one, so the two refuse exactly the same values.
 */
import { describe, expect, it } from 'vitest'
import { type BusOptions, resolveOptions } from '../src/bus/options'
import { MpbusError } from '../src/errors'

const platform = { name: 'test', connect: () => ({ send() {}, close() {} }) }
const resolve = (given: Record<string, unknown>) =>
  resolveOptions({ url: 'ws://x', platform, ...given } as BusOptions)
const LONGEST = 2147483647

/** [option path, options that must be taken, options that must be refused] */
const cases: [string, Record<string, unknown>[], Record<string, unknown>[]][] = [
  ['idKey', [{ idKey: 'id' }, { idKey: undefined }], [{ idKey: '' }, { idKey: 1 }, { idKey: null }]],
  ['opKey', [{ opKey: 'op' }], [{ opKey: '' }, { opKey: {} }]],
  [
    'connectTimeout',
    [{ connectTimeout: 1 }, { connectTimeout: LONGEST }, { connectTimeout: 0.5 + 1 }],
    [
      { connectTimeout: 0 },
      { connectTimeout: LONGEST + 1 },
      { connectTimeout: '10' },
      { connectTimeout: NaN },
    ],
  ],
  [
    'maxInboundBytes',
    [{ maxInboundBytes: 1 }, { maxInboundBytes: Number.POSITIVE_INFINITY }],
    [{ maxInboundBytes: 0.99 }, { maxInboundBytes: null }],
  ],
  ['stopCodes', [{ stopCodes: [] }, { stopCodes: undefined }], [{ stopCodes: 4001 }, { stopCodes: null }]],
  ['login', [{ login: () => null }], [{ login: { op: 'L' } }, { login: null }]],
  ['shouldReconnect', [{ shouldReconnect: () => true }], [{ shouldReconnect: true }]],
  ['debug', [{ debug: true }, { debug: false }, { debug: () => {} }], [{ debug: 1 }, { debug: 'yes' }]],
  [
    'codec.encode',
    [{ codec: { encode: JSON.stringify, decode: JSON.parse } }, { codec: null }, { codec: {} }],
    [{ codec: { encode: 1, decode: JSON.parse } }],
  ],
  ['codec.decode', [], [{ codec: { encode: JSON.stringify, decode: 'JSON' } }]],
  ['ready.ok', [{ ready: { ok: 'OK' } }], [{ ready: {} }, { ready: { ok: '' } }, { ready: { ok: 1 } }]],
  ['ready.fail', [{ ready: { ok: 'OK', fail: ['E'] } }], [{ ready: { ok: 'OK', fail: 'E' } }]],
  [
    'ready.timeout',
    [{ ready: { ok: 'OK', timeout: 1 } }, { ready: { ok: 'OK', timeout: LONGEST } }],
    [{ ready: { ok: 'OK', timeout: 0 } }, { ready: { ok: 'OK', timeout: Number.POSITIVE_INFINITY } }],
  ],
  ['ack.op', [{ ack: true }, { ack: { op: 'A' } }, { ack: false }], [{ ack: { op: '' } }]],
  [
    'ack.timeout',
    [{ ack: { timeout: 1 } }, { ack: { timeout: LONGEST } }],
    [{ ack: { timeout: 0 } }, { ack: { timeout: LONGEST + 1 } }],
  ],
  [
    'heartbeat.interval',
    [{ heartbeat: { interval: 1 } }, { heartbeat: false }, { heartbeat: { interval: LONGEST } }],
    [{ heartbeat: { interval: 0 } }, { heartbeat: { interval: Number.POSITIVE_INFINITY } }],
  ],
  ['heartbeat.timeout', [{ heartbeat: { timeout: 1 } }], [{ heartbeat: { timeout: -1 } }]],
  [
    'reconnect.minDelay',
    [{ reconnect: { minDelay: 0, maxDelay: 0 } }, { reconnect: { minDelay: 0.5 } }],
    [{ reconnect: { minDelay: -1 } }, { reconnect: { minDelay: LONGEST + 1 } }],
  ],
  [
    'reconnect.maxDelay',
    [{ reconnect: { minDelay: 1000, maxDelay: 1000 } }, { reconnect: { maxDelay: LONGEST } }],
    [{ reconnect: { minDelay: 1000, maxDelay: 999 } }, { reconnect: { maxDelay: Number.POSITIVE_INFINITY } }],
  ],
  [
    'reconnect.factor',
    [{ reconnect: { factor: 1 } }, { reconnect: { factor: 1.5 } }],
    [{ reconnect: { factor: 0.9 } }],
  ],
  [
    'reconnect.maxAttempts',
    [{ reconnect: { maxAttempts: 0 } }, { reconnect: { maxAttempts: Number.POSITIVE_INFINITY } }],
    [{ reconnect: { maxAttempts: 1.5 } }, { reconnect: { maxAttempts: -1 } }],
  ],
  [
    'reconnect.stableAfter',
    [{ reconnect: { stableAfter: 0 } }, { reconnect: { stableAfter: 0.5 } }],
    [{ reconnect: { stableAfter: -0.1 } }],
  ],
  [
    'outbox.maxMessages',
    [{ outbox: { maxMessages: 1 } }, { outbox: { maxMessages: Number.POSITIVE_INFINITY } }, { outbox: {} }],
    [{ outbox: { maxMessages: 0 } }, { outbox: { maxMessages: 1.5 } }, { outbox: { maxMessages: null } }],
  ],
  ['outbox.maxBytes', [{ outbox: { maxBytes: 1.5 } }], [{ outbox: { maxBytes: 0.5 } }]],
  ['outbox.ttl', [{ outbox: { ttl: 1 } }], [{ outbox: { ttl: 0 } }, { outbox: { ttl: '1' } }]],
  ['outbox.window', [{ outbox: { window: 1 } }], [{ outbox: { window: 0 } }, { outbox: { window: 2.5 } }]],
  [
    'outbox.overflow',
    [{ outbox: { overflow: 'reject' } }, { outbox: { overflow: 'dropOldest' } }],
    [{ outbox: { overflow: 'drop' } }, { outbox: { overflow: null } }],
  ],
]

describe('resolveOptions: each option at its bounds', () => {
  for (const [option, taken, refused] of cases) {
    it(option, () => {
      for (const given of taken) expect(() => resolve(given), JSON.stringify(given)).not.toThrow()
      for (const given of refused) {
        let error: unknown
        try {
          resolve(given)
        } catch (e) {
          error = e
        }
        expect(error, String(JSON.stringify(given))).toBeInstanceOf(MpbusError)
        expect((error as MpbusError).code).toBe('BAD_OPTION')
        expect((error as MpbusError).message).toContain(option)
      }
    })
  }

  it('url: a string or a function, nothing else', () => {
    for (const url of ['ws://x', () => 'ws://x']) expect(() => resolve({ url })).not.toThrow()
    for (const url of ['', 42, null, {}])
      expect(() => resolve({ url })).toThrow(
        expect.objectContaining({ code: 'BAD_OPTION', message: expect.stringMatching(/^url: /) }),
      )
    expect(() => resolveOptions(undefined as any)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
  })

  it('applies every default, and keeps a default for an option given as undefined', () => {
    const r = resolve({ idKey: undefined, reconnect: { factor: undefined }, ack: true })
    expect(r).toMatchObject({
      idKey: 'MsgId',
      opKey: 'Operator',
      sessionEnd: 'SessionEnd',
      connectTimeout: 10000,
      stopCodes: [4001],
      maxInboundBytes: 1048576,
      sessionTimeout: 10000,
      ready: undefined,
      ack: { op: 'Ack', timeout: 10000 },
      heartbeat: { interval: 25000, timeout: 10000, message: '{"Operator":"Heart"}' },
      reconnect: {
        minDelay: 500,
        maxDelay: 30000,
        factor: 2,
        maxAttempts: Number.POSITIVE_INFINITY,
        stableAfter: 5000,
      },
      outbox: { ack: true, storage: undefined },
      log: undefined,
    })
    expect(resolve({ ready: { ok: 'OK', timeout: 5 } }).sessionTimeout).toBe(5)
    expect(resolve({ opKey: 'op' }).heartbeat).toMatchObject({ message: '{"op":"Heart"}' })
    expect(resolve({ heartbeat: false }).heartbeat).toBe(false)
  })

  it('a debug function that throws breaks nothing', () => {
    const lines: unknown[][] = []
    resolve({ debug: (...a: unknown[]) => lines.push(a) }).log!('a', 1)
    expect(lines).toEqual([['a', 1]])
    expect(() =>
      resolve({
        debug: () => {
          throw new Error('x')
        },
      }).log!('b'),
    ).not.toThrow()
  })
})

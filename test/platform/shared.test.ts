import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { MpbusError } from '../../src/errors'
import { decodeBase64, unwrap } from '../../src/platform/alipay'
import { closeInfo, guard, makeStorage, once, sendTask } from '../../src/platform/shared'
import { fakeTask, recorder } from '../helpers/platform-fakes'

describe('guard', () => {
  it('passes open, messages and one close, then nothing', () => {
    const r = recorder()
    const g = guard(r.listeners)
    g.open()
    g.open()
    g.message('a')
    g.close({ code: 1000, reason: '' })
    g.message('late')
    g.error(new MpbusError('SOCKET_ERROR', 'late'))
    g.close({ code: 1006, reason: '' })
    g.open()
    expect(r.names()).toEqual(['open', 'message', 'close'])
    expect(g.done()).toBe(true)
  })

  it('stops everything after detach, before or after open', () => {
    for (const openFirst of [true, false]) {
      const r = recorder()
      const g = guard(r.listeners)
      if (openFirst) g.open()
      g.detach()
      g.open()
      g.message('x')
      g.close({ code: 1000, reason: '' })
      g.error(new MpbusError('SOCKET_ERROR', 'x'))
      expect(r.names()).toEqual(openFirst ? ['open'] : [])
    }
  })

  it('reports an error instead of a close, never both', () => {
    const r = recorder()
    const g = guard(r.listeners)
    g.error(new MpbusError('SOCKET_ERROR', 'refused'))
    g.close({ code: 1006, reason: '' })
    expect(r.names()).toEqual(['error'])
  })

  it('lets a frame stand in for a missed open, so open always comes first', () => {
    const r = recorder()
    const g = guard(r.listeners)
    g.message('first')
    g.open()
    expect(r.events).toEqual([['open'], ['message', 'first']])
  })

  it('keeps the contract for any sequence of platform events (property)', () => {
    const ev = fc.constantFrom('open', 'message', 'close', 'error', 'detach')
    fc.assert(
      fc.property(fc.array(ev, { maxLength: 20 }), (seq) => {
        const r = recorder()
        const g = guard(r.listeners)
        for (const e of seq) {
          if (e === 'detach') g.detach()
          else if (e === 'close') g.close({ code: 1000, reason: '' })
          else if (e === 'error') g.error(new MpbusError('SOCKET_ERROR', 'e'))
          else if (e === 'message') g.message('m')
          else g.open()
        }
        const names = r.names()
        expect(names.filter((n) => n === 'open').length).toBeLessThanOrEqual(1)
        if (names.includes('message')) expect(names[0]).toBe('open')
        const end = names.findIndex((n) => n === 'close' || n === 'error')
        if (end >= 0) expect(end).toBe(names.length - 1)
        const cut = seq.findIndex((e) => e === 'detach' || e === 'close' || e === 'error')
        if (cut >= 0) {
          // nothing at all after the first close, error or detach
          const before = seq.slice(0, cut + 1).filter((e) => e !== 'detach')
          expect(names.length).toBeLessThanOrEqual(before.length + 1)
        }
      }),
    )
  })
})

describe('closeInfo', () => {
  it('turns string codes (Douyin) into numbers and fills what is missing', () => {
    expect(closeInfo({ code: '1001', reason: 'background' })).toEqual({ code: 1001, reason: 'background' })
    expect(closeInfo({ code: 4000 })).toEqual({ code: 4000, reason: '' })
    expect(closeInfo(undefined)).toEqual({ code: 1005, reason: '' })
    expect(closeInfo({ code: 'abc' })).toEqual({ code: 1005, reason: '' })
  })
})

describe('once and sendTask', () => {
  it('calls done once even when the platform calls success and fail', () => {
    const calls: unknown[] = []
    const d = once((e) => calls.push(e))
    d()
    d(new MpbusError('SOCKET_ERROR', 'x'))
    expect(calls).toEqual([undefined])
  })

  it('reports success, fail, a throw and a missing task through done exactly once', () => {
    const results: (string | undefined)[] = []
    const done = (e?: MpbusError) => results.push(e?.code)
    const ok = fakeTask()
    sendTask(ok, 'a', done)
    const bad = fakeTask({ failSend: true })
    sendTask(bad, 'b', done)
    sendTask(
      {
        send: (o: any) => {
          o.success()
          throw new Error('after success')
        },
      },
      'c',
      done,
    )
    sendTask(undefined, 'd', done)
    expect(results).toEqual([undefined, 'SOCKET_ERROR', undefined, 'SOCKET_ERROR'])
    expect(ok.sent).toEqual(['a'])
    // done is optional
    expect(() => sendTask(bad, 'e')).not.toThrow()
  })

  it('keeps the platform error message and object', () => {
    let err: MpbusError | undefined
    sendTask(fakeTask({ failSend: true }), 'x', (e) => {
      err = e
    })
    expect(err?.message).toBe('sendSocketMessage:fail socket is not connected')
    expect((err!.cause as any).errMsg).toMatch(/fail/)
  })
})

describe('makeStorage', () => {
  const throwing = (msg: unknown) =>
    makeStorage(
      () => {
        throw msg
      },
      () => {
        throw msg
      },
      () => {
        throw msg
      },
      () => {
        throw msg
      },
    )

  it('maps quota-sounding write failures to STORAGE_FULL and others to STORAGE_ERROR', () => {
    const full = [
      new Error('setStorageSync:fail exceed storage max size 10Mb'),
      { errMsg: 'setStorageSync:fail entry size limit reached' },
      Object.assign(new Error('The quota has been exceeded.'), { name: 'QuotaExceededError' }),
      Object.assign(new Error(''), { name: 'QuotaExceededError' }),
    ]
    for (const e of full)
      expect(() => throwing(e).set('k', 'v')).toThrow(expect.objectContaining({ code: 'STORAGE_FULL' }))
    expect(() => throwing(new Error('setStorageSync:fail disk io error')).set('k', 'v')).toThrow(
      expect.objectContaining({ code: 'STORAGE_ERROR' }),
    )
  })

  it('reports read, delete and list failures as STORAGE_ERROR, even with quota words', () => {
    const s = throwing(new Error('exceed'))
    for (const f of [() => s.get('k'), () => s.del('k'), () => s.keys()]) {
      expect(f).toThrow(expect.objectContaining({ code: 'STORAGE_ERROR', name: 'MpbusError' }))
    }
  })

  it('reads only non-empty strings as values', () => {
    const values: Record<string, unknown> = { s: 'v', e: '', n: null, o: { a: 1 }, z: 0 }
    const s = makeStorage(
      (k) => values[k],
      () => {},
      () => {},
      () => undefined,
    )
    expect(['s', 'e', 'n', 'o', 'z', 'missing'].map((k) => s.get(k))).toEqual([
      'v',
      ...Array(5).fill(undefined),
    ])
    expect(s.keys()).toEqual([])
  })
})

describe('Alipay messages', () => {
  it('decodes base64 like Buffer does (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, pad) => {
        let b64 = Buffer.from(bytes).toString('base64')
        if (!pad) b64 = b64.replace(/=+$/, '')
        expect(new Uint8Array(decodeBase64(b64))).toEqual(new Uint8Array(bytes))
      }),
    )
  })

  it('unwraps flat and nested data, decoding isBuffer', () => {
    expect(unwrap({ data: 'text' })).toBe('text')
    expect(unwrap({ data: { data: 'text', socketTaskID: 1 } })).toBe('text')
    const flat = unwrap({ data: 'AQID', isBuffer: true })
    const nested = unwrap({ data: { data: 'AQID', isBuffer: true } })
    for (const b of [flat, nested]) {
      expect(b).toBeInstanceOf(ArrayBuffer)
      expect([...new Uint8Array(b as ArrayBuffer)]).toEqual([1, 2, 3])
    }
    const ab = new Uint8Array([9]).buffer
    expect(unwrap({ data: ab })).toBe(ab)
  })
})

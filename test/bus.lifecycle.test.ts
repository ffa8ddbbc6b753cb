// The bus's lifecycle events (src/bus/lifecycle.ts): a throwing listener is reported and the
// others still run; after close only errors and the change to `closed` reach listeners.
import { describe, expect, it } from 'vitest'
import { createLifecycle } from '../src/bus/lifecycle'
import { MpbusError } from '../src/errors'

describe('lifecycle', () => {
  it('a listener that throws is reported as HANDLER_ERROR; the listeners after it still run', () => {
    const life = createLifecycle(undefined, undefined, () => false)
    const seen: string[] = []
    life.emitter.on('ready', () => {
      throw new Error('boom')
    })
    life.emitter.on('ready', () => seen.push('second'))
    life.emitter.on('error', (error) => seen.push(error.code))
    life.emit('ready', undefined)
    expect(seen).toEqual(['HANDLER_ERROR', 'second'])
  })

  it('an error listener that throws is logged, not reported again (no recursion)', () => {
    const lines: unknown[][] = []
    const life = createLifecycle(
      (...args) => lines.push(args),
      undefined,
      () => false,
    )
    let calls = 0
    life.emitter.on('error', () => {
      calls++
      throw new Error('listener broke')
    })
    life.report(new MpbusError('SOCKET_ERROR', 'reset'))
    expect(calls).toBe(1)
    expect(lines.map((l) => l[0])).toEqual(['SOCKET_ERROR', 'HANDLER_ERROR'])
  })

  it('after close: errors and the change to closed still arrive, nothing else', () => {
    let closed = false
    const life = createLifecycle(undefined, undefined, () => closed)
    const seen: string[] = []
    life.emitter.on('ready', () => seen.push('ready'))
    life.emitter.on('state', (e) => seen.push(`state ${e.to}`))
    life.emitter.on('error', (e) => seen.push(e.code))
    closed = true
    life.emit('ready', undefined)
    life.emit('state', { from: 'ready', to: 'connecting' })
    life.emit('state', { from: 'ready', to: 'closed' })
    life.report(new MpbusError('CLOSED', 'closed'))
    expect(seen).toEqual(['state closed', 'CLOSED'])
  })

  it('on() returns the unsubscribe', () => {
    const life = createLifecycle(undefined, undefined, () => false)
    const seen: number[] = []
    const off = life.emitter.on('reconnecting', (e) => seen.push(e.attempt))
    life.emit('reconnecting', { attempt: 1, delay: 0 })
    off()
    life.emit('reconnecting', { attempt: 2, delay: 0 })
    expect(seen).toEqual([1])
  })
})

import { describe, expect, it } from 'vitest'
import { createDispatcher } from '../src/bus/dispatcher'
import type { MpbusError } from '../src/errors'

function setup() {
  const errors: MpbusError[] = []
  return { errors, dispatcher: createDispatcher((e) => errors.push(e)) }
}

describe('dispatcher', () => {
  it('routes by operator to every handler, in the order they were added, then to *', () => {
    const { dispatcher } = setup()
    const calls: string[] = []
    dispatcher.on('LoginOK', () => calls.push('a'))
    dispatcher.on('*', () => calls.push('any'))
    dispatcher.on('LoginOK', () => calls.push('b'))
    dispatcher.on('Other', () => calls.push('other'))
    expect(dispatcher.dispatch('LoginOK', { Operator: 'LoginOK' })).toBe(true)
    expect(calls).toEqual(['a', 'b', 'any'])
  })

  it('treats __proto__, constructor and toString as ordinary operators', () => {
    const { dispatcher } = setup()
    const seen: string[] = []
    for (const op of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(dispatcher.dispatch(op, { Operator: op })).toBe(false)
      dispatcher.on(op, () => seen.push(op))
      expect(dispatcher.dispatch(op, { Operator: op })).toBe(true)
    }
    expect(seen).toEqual(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
    expect(({} as any).polluted).toBeUndefined()
  })

  it('reports a handler that throws and still runs the others', () => {
    const { dispatcher, errors } = setup()
    const calls: string[] = []
    dispatcher.on('X', () => {
      throw new Error('boom')
    })
    dispatcher.on('X', () => calls.push('second'))
    dispatcher.dispatch('X', { Operator: 'X' })
    expect(calls).toEqual(['second'])
    expect(errors.map((e) => e.code)).toEqual(['HANDLER_ERROR'])
    expect(errors[0]!.message).toContain('boom')
  })

  it('does not call a handler removed during dispatch, even for the current frame', () => {
    const { dispatcher } = setup()
    const calls: string[] = []
    let offSecond = () => {}
    dispatcher.on('X', () => {
      calls.push('first')
      offSecond()
    })
    offSecond = dispatcher.on('X', () => calls.push('second'))
    dispatcher.dispatch('X', {})
    dispatcher.dispatch('X', {})
    expect(calls).toEqual(['first', 'first'])
  })

  it('calls a handler added during dispatch from the next frame on', () => {
    const { dispatcher } = setup()
    const calls: string[] = []
    dispatcher.on('X', () => {
      calls.push('first')
      if (calls.length === 1) dispatcher.on('X', () => calls.push('late'))
    })
    dispatcher.dispatch('X', {})
    expect(calls).toEqual(['first'])
    dispatcher.dispatch('X', {})
    expect(calls).toEqual(['first', 'first', 'late'])
  })

  it('unsubscribes exactly one handler, once, even when the same function is added twice', () => {
    const { dispatcher } = setup()
    let count = 0
    const fn = () => count++
    const off1 = dispatcher.on('X', fn)
    dispatcher.on('X', fn)
    off1()
    off1()
    dispatcher.dispatch('X', {})
    expect(count).toBe(1)
  })

  it('forgets an operator whose last handler is removed', () => {
    const { dispatcher } = setup()
    const off = dispatcher.on('X', () => {})
    expect(dispatcher.has('X')).toBe(true)
    off()
    expect(dispatcher.has('X')).toBe(false)
  })
})

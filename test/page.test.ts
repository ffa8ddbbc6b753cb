import { describe, expect, it } from 'vitest'
import { createDispatcher } from '../src/bus/dispatcher'
import { bindComponent, bindPage } from '../src/bus/page'

function bus() {
  return createDispatcher(() => {})
}

describe('bindPage', () => {
  it('registers the bus handlers on load with this bound to the page, and removes them on unload', () => {
    const d = bus()
    const log: string[] = []
    const config = bindPage(d, {
      data: { n: 0 },
      bus: {
        LoginOK(this: any, frame: any) {
          log.push(`${this.name}:${frame.openId}`)
        },
      },
      onLoad(this: any, query: any) {
        log.push(`load:${query.id}`)
      },
      onUnload() {
        log.push('unload')
      },
    }) as any
    expect(config.bus).toBeUndefined()
    const page = Object.assign(Object.create(null), config, { name: 'p1' })
    page.onLoad({ id: 7 })
    d.dispatch('LoginOK', { openId: 'o1' })
    page.onUnload()
    d.dispatch('LoginOK', { openId: 'o2' })
    expect(log).toEqual(['load:7', 'p1:o1', 'unload'])
    expect(d.has('LoginOK')).toBe(false)
  })

  it('keeps two instances of one page apart', () => {
    const d = bus()
    const seen: string[] = []
    const config = bindPage(d, {
      bus: {
        Tick(this: any) {
          seen.push(this.name)
        },
      },
    }) as any
    const a = Object.assign({}, config, { name: 'a' })
    const b = Object.assign({}, config, { name: 'b' })
    a.onLoad()
    b.onLoad()
    d.dispatch('Tick', {})
    a.onUnload()
    d.dispatch('Tick', {})
    expect(seen).toEqual(['a', 'b', 'b'])
  })

  it('works for a page with no handlers and no hooks', () => {
    const config = bindPage(bus(), {}) as any
    expect(() => {
      config.onLoad()
      config.onUnload()
    }).not.toThrow()
  })
})

describe('bindComponent', () => {
  it('binds from attached to detached, under lifetimes or at the top level', () => {
    for (const style of ['lifetimes', 'top'] as const) {
      const d = bus()
      const log: string[] = []
      const hooks = {
        attached() {
          log.push('attached')
        },
        detached() {
          log.push('detached')
        },
      }
      const config = bindComponent(d, {
        bus: {
          Ping(this: any) {
            log.push(`ping:${this.id}`)
          },
        },
        ...(style === 'lifetimes' ? { lifetimes: hooks } : hooks),
      }) as any
      const component = { id: 'c', ...config }
      component.lifetimes.attached.call(component)
      d.dispatch('Ping', {})
      component.lifetimes.detached.call(component)
      d.dispatch('Ping', {})
      expect(log).toEqual(['attached', 'ping:c', 'detached'])
    }
  })
})

import type { Handler } from './dispatcher'

/** What `bindPage` and `bindComponent` need of a bus. */
interface Subscribable {
  on(op: string, handler: Handler): () => void
}

type Hook = (this: any, ...args: any[]) => any
type Handlers = Record<string, (this: any, frame: any) => void>

const OFFS = '__mpbusOff'

/** A copy of the config without its `bus` map: the page instance need not carry it. */
function withoutBus<C extends { bus?: Handlers }>(config: C): Omit<C, 'bus'> {
  const copy = Object.assign({}, config)
  delete copy.bus
  return copy
}

function wrap(bus: Subscribable, handlers: Handlers, add: Hook | undefined, remove: Hook | undefined) {
  return {
    add(this: any, ...args: any[]) {
      // Handlers are registered per instance, with `this` bound to it, so two
      // instances of one page (navigateTo the same route twice) each get their own.
      this[OFFS] = Object.keys(handlers).map((op) => bus.on(op, handlers[op]!.bind(this)))
      return add && add.apply(this, args)
    },
    remove(this: any, ...args: any[]) {
      const offs: Array<() => void> = this[OFFS] || []
      this[OFFS] = undefined
      for (const off of offs) off()
      return remove && remove.apply(this, args)
    },
  }
}

/**
 * Binds a `Page({...})` config's `bus` map of handlers to a bus: registered in `onLoad`
 * with `this` bound to the page, removed in `onUnload` (redirectTo, navigateBack), so a
 * page that has gone away never receives a frame. The page's own hooks run as before.
 *
 * ```js
 * Page(bindPage(bus, { bus: { LoginOK(frame) { this.setData({ openId: frame.openId }) } } }))
 * ```
 */
export function bindPage<C extends { bus?: Handlers; onLoad?: Hook; onUnload?: Hook }>(
  bus: Subscribable,
  config: C,
): Omit<C, 'bus'> {
  const hooks = wrap(bus, config.bus || {}, config.onLoad, config.onUnload)
  return Object.assign(withoutBus(config), { onLoad: hooks.add, onUnload: hooks.remove })
}

/**
 * The same for `Component({...})`: handlers live from `attached` to `detached`,
 * whether the config declares them at the top level or under `lifetimes`
 * (`lifetimes` wins, as in WeChat).
 */
export function bindComponent<
  C extends {
    bus?: Handlers
    attached?: Hook
    detached?: Hook
    lifetimes?: { attached?: Hook; detached?: Hook }
  },
>(bus: Subscribable, config: C): Omit<C, 'bus'> {
  const lifetimes = config.lifetimes || {}
  const hooks = wrap(
    bus,
    config.bus || {},
    lifetimes.attached || config.attached,
    lifetimes.detached || config.detached,
  )
  return Object.assign(withoutBus(config), {
    lifetimes: Object.assign({}, lifetimes, { attached: hooks.add, detached: hooks.remove }),
  })
}

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createHeartbeat, HEARTBEAT_DEFAULTS } from '../src/heartbeat'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

function setup(options: Partial<typeof HEARTBEAT_DEFAULTS> = {}) {
  const pings: unknown[] = []
  let deaths = 0
  const hb = createHeartbeat(
    { ...HEARTBEAT_DEFAULTS, interval: 1000, timeout: 500, ...options },
    {
      ping: (m) => pings.push(m),
      dead: () => deaths++,
    },
  )
  return { hb, pings, deaths: () => deaths }
}

describe('heartbeat', () => {
  it('defaults: ping {"Operator":"Heart"} every 25 s of silence, dead 10 s later', () => {
    expect(HEARTBEAT_DEFAULTS).toEqual({ interval: 25000, timeout: 10000, message: '{"Operator":"Heart"}' })
    const { hb, pings, deaths } = setup({ interval: 25000, timeout: 10000 })
    hb.start()
    vi.advanceTimersByTime(24999)
    expect(pings).toEqual([])
    vi.advanceTimersByTime(1)
    expect(pings).toEqual(['{"Operator":"Heart"}'])
    vi.advanceTimersByTime(9999)
    expect(deaths()).toBe(0)
    vi.advanceTimersByTime(1)
    expect(deaths()).toBe(1)
  })

  it('pings exactly `interval` after the last frame, and any frame restarts the clock', () => {
    const { hb, pings } = setup()
    hb.start()
    vi.advanceTimersByTime(700)
    hb.alive()
    vi.advanceTimersByTime(999)
    expect(pings).toHaveLength(0)
    vi.advanceTimersByTime(1)
    expect(pings).toHaveLength(1)
  })

  it('declares the link dead at interval + timeout, once, and not if any frame arrives in time', () => {
    const a = setup()
    a.hb.start()
    vi.advanceTimersByTime(1499)
    expect(a.deaths()).toBe(0)
    vi.advanceTimersByTime(1)
    expect(a.deaths()).toBe(1)
    vi.advanceTimersByTime(10_000)
    expect(a.deaths()).toBe(1)
    expect(vi.getTimerCount()).toBe(0)

    const b = setup()
    b.hb.start()
    vi.advanceTimersByTime(1499) // ping sent at 1000, answer just before the deadline
    b.hb.alive()
    vi.advanceTimersByTime(999)
    expect(b.deaths()).toBe(0)
    expect(b.pings).toHaveLength(1)
    vi.advanceTimersByTime(1) // silence again: second ping at 1499 + 1000
    expect(b.pings).toHaveLength(2)
  })

  it('probe() pings at once and arms the deadline; alive() cancels it', () => {
    const { hb, pings, deaths } = setup()
    hb.probe()
    expect(pings).toHaveLength(1)
    vi.advanceTimersByTime(499)
    hb.alive()
    vi.advanceTimersByTime(600)
    expect(deaths()).toBe(0)
    hb.probe()
    vi.advanceTimersByTime(500)
    expect(deaths()).toBe(1)
  })

  it('stop() leaves no timer, from either phase', () => {
    const { hb, pings, deaths } = setup()
    hb.start()
    hb.stop()
    expect(vi.getTimerCount()).toBe(0)
    hb.probe()
    hb.stop()
    expect(vi.getTimerCount()).toBe(0)
    vi.advanceTimersByTime(10_000)
    expect(pings).toHaveLength(1)
    expect(deaths()).toBe(0)
  })

  it('calls a message function for every ping', () => {
    let n = 0
    const { hb, pings } = setup({ message: () => `ping ${++n}` })
    hb.start()
    vi.advanceTimersByTime(1000)
    hb.alive()
    vi.advanceTimersByTime(1000)
    expect(pings).toEqual(['ping 1', 'ping 2'])
  })

  it('a ping hook that stops the heartbeat synchronously leaves no deadline behind', () => {
    const hb = createHeartbeat(
      { ...HEARTBEAT_DEFAULTS, interval: 100, timeout: 100 },
      { ping: () => hb.stop(), dead: () => expect.unreachable() },
    )
    hb.start()
    vi.advanceTimersByTime(100)
    expect(vi.getTimerCount()).toBe(0)
  })
})

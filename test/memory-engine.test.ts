// The memory engine alone: stream offsets and trimming, epochs, the duplicate window's expiry
// (on a fake clock), and rooms.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { memoryEngine } from '../src/server/index'

afterEach(() => {
  vi.useRealTimers()
})

describe('memory engine', () => {
  it('numbers each stream from 1, replays what is after a position, and refuses a gap the history lost', () => {
    const engine = memoryEngine({ history: 3 })
    const epoch = engine.tip('s').epoch
    expect(engine.tip('s')).toEqual({ offset: 0, epoch })
    for (let n = 1; n <= 5; n++) expect(engine.append('s', { n })).toEqual({ offset: n, epoch })
    expect(engine.append('other', {}).offset).toBe(1)
    expect(engine.since('s', { offset: 2, epoch })!.map((f) => f.offset)).toEqual([3, 4, 5])
    expect(engine.since('s', { offset: 5, epoch })).toEqual([])
    // Offset 2 was trimmed: from 1 the gap is not covered.
    expect(engine.since('s', { offset: 1, epoch })).toBeUndefined()
    // Ahead of the tip, or another epoch: not this history.
    expect(engine.since('s', { offset: 6, epoch })).toBeUndefined()
    expect(engine.since('s', { offset: 4, epoch: 'other' })).toBeUndefined()
    expect(memoryEngine().tip('s').epoch).not.toBe(epoch)
  })

  it('keeps a message id for dedupTtl (8 days by default, past the outbox’s 7), per user', () => {
    vi.useFakeTimers()
    const engine = memoryEngine()
    expect(engine.remember('alice', 'm1')).toBe(true)
    engine.handled('alice', 'm1')
    expect(engine.remember('alice', 'm1')).toBe(false)
    expect(engine.remember('bob', 'm1')).toBe(true)
    vi.advanceTimersByTime(7 * 24 * 3600_000 + 1)
    expect(engine.remember('alice', 'm1')).toBe(false)
    vi.advanceTimersByTime(24 * 3600_000)
    expect(engine.remember('alice', 'm1')).toBe(true)
    engine.forget('alice', 'm1')
    expect(engine.remember('alice', 'm1')).toBe(true)
  })

  it("an id whose handler still runs is 'busy' (neither handled nor acked) until handled or forgotten", () => {
    const engine = memoryEngine()
    expect(engine.remember('alice', 'm1')).toBe(true)
    // The client gave up waiting for the ack and resent it on a new connection.
    expect(engine.remember('alice', 'm1')).toBe('busy')
    engine.handled('alice', 'm1')
    expect(engine.remember('alice', 'm1')).toBe(false)
    expect(engine.remember('alice', 'm2')).toBe(true)
    engine.forget('alice', 'm2') // its handler failed: the resend runs it
    expect(engine.remember('alice', 'm2')).toBe(true)
  })

  it('forgets expired ids (the window does not grow without bound)', () => {
    vi.useFakeTimers()
    const engine = memoryEngine({ dedupTtl: 1000 })
    // As the server does: every remembered id is then handled (or forgotten).
    const handle = (id: string) => engine.remember('alice', id) === true && engine.handled('alice', id)
    for (let i = 0; i < 1000; i++) handle(`m${i}`)
    vi.advanceTimersByTime(61_000)
    handle('late')
    // A forgotten id is new again; the late one is still known.
    expect(engine.remember('alice', 'm0')).toBe(true)
    expect(engine.remember('alice', 'late')).toBe(false)
  })

  it('a stream idle past historyTtl is gone, with its epoch: a position in it resyncs', () => {
    vi.useFakeTimers()
    const engine = memoryEngine({ historyTtl: 1000 })
    const kept = engine.append('s', { n: 1 })
    vi.advanceTimersByTime(900)
    engine.append('s', { n: 2 }) // a push keeps the stream alive for historyTtl more
    vi.advanceTimersByTime(900)
    expect(engine.since('s', kept)!.map((f) => f.frame)).toEqual([{ n: 2 }])
    vi.advanceTimersByTime(1001)
    expect(engine.since('s', kept)).toBeUndefined()
    const again = engine.append('s', { n: 3 })
    expect(again.offset).toBe(1)
    expect(again.epoch).not.toBe(kept.epoch)
    // Each stream made again is its own epoch: an old position never skips the new frames.
    expect(engine.since('s', { offset: 0, epoch: kept.epoch })).toBeUndefined()
  })

  it("a claim expires after claimTtl: a stuck handler's message is handled again", () => {
    vi.useFakeTimers()
    const engine = memoryEngine({ claimTtl: 1000 })
    expect(engine.remember('alice', 'm1')).toBe(true)
    vi.advanceTimersByTime(999)
    expect(engine.remember('alice', 'm1')).toBe('busy')
    vi.advanceTimersByTime(2)
    expect(engine.remember('alice', 'm1')).toBe(true)
    // The stuck handler fails late: the copy handled after it stays handled.
    engine.handled('alice', 'm1')
    engine.forget('alice', 'm1')
    expect(engine.remember('alice', 'm1')).toBe(false)
  })

  it('ids of two users never share a key, whatever the characters', () => {
    const engine = memoryEngine()
    expect(engine.remember('a\u0000b', 'c')).toBe(true)
    engine.handled('a\u0000b', 'c')
    expect(engine.remember('a', 'b\u0000c')).toBe(true)
  })

  it('keeps at most dedupLimit ids per user, the oldest forgotten first', () => {
    const engine = memoryEngine({ dedupLimit: 3 })
    for (const id of ['m1', 'm2', 'm3', 'm4']) {
      expect(engine.remember('alice', id)).toBe(true)
      engine.handled('alice', id)
    }
    expect(engine.remember('bob', 'm0')).toBe(true)
    expect(['m2', 'm3', 'm4'].map((id) => engine.remember('alice', id))).toEqual([false, false, false])
    expect(engine.remember('alice', 'm1')).toBe(true)
    expect(() => memoryEngine({ dedupLimit: 0 })).toThrow(/dedupLimit/)
  })

  it('after close() every call throws CLOSED', () => {
    const engine = memoryEngine()
    engine.close()
    for (const call of [
      () => engine.append('s', {}),
      () => engine.join('alice', 'r'),
      () => engine.leave('alice', 'r'),
      () => engine.end('alice'),
      () => engine.remember('alice', 'm'),
      () => engine.tip('s'),
    ])
      expect(call).toThrow(expect.objectContaining({ code: 'CLOSED' }))
  })

  it('rooms: members by room, rooms by user, leave', () => {
    const engine = memoryEngine()
    engine.join('alice', 'r1')
    engine.join('bob', 'r1')
    engine.join('alice', 'r2')
    expect(engine.members('r1').sort()).toEqual(['alice', 'bob'])
    expect(engine.rooms('alice').sort()).toEqual(['r1', 'r2'])
    engine.leave('alice', 'r1')
    expect(engine.members('r1')).toEqual(['bob'])
    // Out of range is BAD_OPTION naming the option, as for the Redis engine and the server.
    expect(() => memoryEngine({ history: 0 })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
    expect(() => memoryEngine({ history: 0 })).toThrow(/history/)
  })

  it('a join keeps the room stream’s position at the join; a second join keeps the first, a leave forgets it', () => {
    const engine = memoryEngine()
    engine.append('room:r1', { n: 1 })
    const at = engine.append('room:r1', { n: 2 })
    engine.join('alice', 'r1')
    engine.join('alice', 'r2')
    engine.append('room:r1', { n: 3 })
    engine.join('alice', 'r1')
    // Every stream has an epoch of its own: r2's is the one its tip names.
    expect(engine.joined('alice')).toEqual({ r1: at, r2: { offset: 0, epoch: engine.tip('room:r2').epoch } })
    engine.leave('alice', 'r1')
    engine.join('alice', 'r1')
    expect(engine.joined('alice').r1).toEqual({ offset: 3, epoch: at.epoch })
    expect(engine.joined('bob')).toEqual({})
  })

  it('the join positions of two users never share a key, whatever their names', () => {
    const engine = memoryEngine()
    const at = engine.append('room:c', { n: 1 })
    engine.join('a\u0000b', 'c')
    engine.join('a', 'b\u0000c')
    engine.leave('a', 'b\u0000c')
    expect(engine.joined('a\u0000b')).toEqual({ c: at })
    expect(engine.joined('a')).toEqual({})
  })
})

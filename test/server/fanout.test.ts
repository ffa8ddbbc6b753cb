// The fan-out of one node on its own: which connection hears which stream, and that a live frame
// reaches a connection once and in order (a repeat skipped, a gap closed with 1012, frames heard
// while resuming held back). Sockets are stand-ins that record what is sent and how they close.

import { describe, expect, it } from 'vitest'
import type { WebSocket } from 'ws'
import type { MpbusError } from '../../src/errors'
import type { Position } from '../../src/protocol'
import {
  add,
  createFanout,
  deliver,
  drop,
  hear,
  listen,
  type Reader,
  readersOf,
  shared,
} from '../../src/server/fanout'
import { memoryEngine } from '../../src/server/memory-engine'
import type { Phase } from '../../src/server/types'

function socket() {
  const sent: any[] = []
  const closes: Array<[number, string]> = []
  const ws = {
    OPEN: 1,
    readyState: 1,
    send: (data: string) => sent.push(JSON.parse(data)),
    close(code: number, reason: string) {
      closes.push([code, reason])
      ws.readyState = 3
    },
  }
  return { ws: ws as unknown as WebSocket, sent, closes }
}

function setup() {
  const errors: Array<[MpbusError, string | undefined]> = []
  const fanout = createFanout(memoryEngine(), (error, user) => void errors.push([error, user]))
  const reader = (user: string, phase: Phase = 'ready') => {
    const s = socket()
    const r: Reader & { phase: Phase } = {
      ws: s.ws,
      user,
      phase,
      held: [],
      stale: false,
      at: new Map(),
      streams: new Set(),
    }
    add(fanout, r)
    return Object.assign(s, { r })
  }
  return { fanout, errors, reader }
}

const at = (offset: number, epoch = 'e1'): Position => ({ offset, epoch })
const frame = (stream: string, offset: number, epoch = 'e1') =>
  ({ type: 'frame', stream, position: at(offset, epoch), frame: { Operator: 'Quote', n: offset } }) as const

describe('fanout', () => {
  it('sends a frame to the listeners of its stream only, with its position', () => {
    const { fanout, reader } = setup()
    const a = reader('alice')
    const b = reader('bob')
    listen(fanout, a.r, 'user:alice')
    listen(fanout, b.r, 'user:bob')
    hear(fanout, frame('user:alice', 1))
    expect(a.sent).toEqual([
      { Operator: 'Quote', n: 1, Stream: { name: 'user:alice', offset: 1, epoch: 'e1' } },
    ])
    expect(b.sent).toEqual([])
    expect(a.r.at.get('user:alice')).toEqual(at(1))
  })

  it('skips a repeat (at or before the last position, same epoch) and sends the next one', () => {
    const { fanout, reader, errors } = setup()
    const a = reader('alice')
    listen(fanout, a.r, 'user:alice')
    a.r.at.set('user:alice', at(5))
    deliver(fanout, a.r, 'user:alice', at(4), '{"n":4}')
    deliver(fanout, a.r, 'user:alice', at(5), '{"n":5}')
    deliver(fanout, a.r, 'user:alice', at(6), '{"n":6}')
    expect(a.sent).toEqual([{ n: 6 }])
    expect(errors).toEqual([])
    expect(a.closes).toEqual([])
  })

  it('closes with 1012 on a gap or another epoch (STREAM_GAP), sending nothing', () => {
    const { fanout, reader, errors } = setup()
    const gap = reader('alice')
    gap.r.at.set('user:alice', at(5))
    deliver(fanout, gap.r, 'user:alice', at(7), '{"n":7}')
    const epoch = reader('bob')
    epoch.r.at.set('user:bob', at(5))
    deliver(fanout, epoch.r, 'user:bob', at(2, 'e2'), '{"n":2}')
    expect(gap.sent).toEqual([])
    expect(epoch.sent).toEqual([])
    expect(gap.closes).toEqual([[1012, 'resume']])
    expect(epoch.closes).toEqual([[1012, 'resume']])
    expect(errors.map(([e, user]) => [e.code, user])).toEqual([
      ['STREAM_GAP', 'alice'],
      ['STREAM_GAP', 'bob'],
    ])
    expect(gap.r.at.get('user:alice')).toEqual(at(5))
  })

  it('holds what a resuming connection hears, in order, and sends nothing until it is ready', () => {
    const { fanout, reader } = setup()
    const a = reader('alice', 'resuming')
    listen(fanout, a.r, 'user:alice')
    hear(fanout, frame('user:alice', 3))
    hear(fanout, frame('user:alice', 4))
    expect(a.sent).toEqual([])
    expect(a.r.held.map((h) => h.position.offset)).toEqual([3, 4])
  })

  it('join and leave change the streams of every connection of the user; leave forgets the position', () => {
    const { fanout, reader } = setup()
    const a1 = reader('alice')
    const a2 = reader('alice')
    const b = reader('bob')
    hear(fanout, { type: 'join', user: 'alice', room: 'r' })
    hear(fanout, frame('room:r', 1))
    expect([a1.sent.length, a2.sent.length, b.sent.length]).toEqual([1, 1, 0])
    hear(fanout, { type: 'leave', user: 'alice', room: 'r' })
    hear(fanout, frame('room:r', 2))
    expect([a1.sent.length, a2.sent.length]).toEqual([1, 1])
    expect(a1.r.at.has('room:r')).toBe(false)
    expect(fanout.byStream.has('room:r')).toBe(false)
  })

  it('end sends SessionEnd and closes with 4001 every connection of the user, no one else', () => {
    const { fanout, reader } = setup()
    const a = reader('alice')
    const b = reader('bob')
    hear(fanout, { type: 'end', user: 'alice', reason: 'elsewhere' })
    expect(a.sent).toEqual([{ Operator: 'SessionEnd', reason: 'elsewhere' }])
    expect(a.closes).toEqual([[4001, 'session ended']])
    expect(b.closes).toEqual([])
  })

  it('reports an engine error as ENGINE_DOWN with the cause, and a reset closes everyone with 1012', () => {
    const { fanout, reader, errors } = setup()
    const a = reader('alice')
    const b = reader('bob')
    const cause = new Error('link lost')
    hear(fanout, { type: 'error', error: cause })
    expect(errors[0]![0]).toMatchObject({ code: 'ENGINE_DOWN', message: 'link lost', cause })
    hear(fanout, { type: 'reset' })
    expect([a.closes, b.closes]).toEqual([[[1012, 'engine reset']], [[1012, 'engine reset']]])
  })

  it('drop forgets a connection everywhere, and leaves no empty entries behind', () => {
    const { fanout, reader } = setup()
    const a = reader('alice')
    const other = reader('alice')
    listen(fanout, a.r, 'user:alice')
    listen(fanout, a.r, 'room:r')
    listen(fanout, other.r, 'user:alice')
    drop(fanout, a.r)
    expect(readersOf(fanout, 'alice')).toEqual([other.r])
    expect([...fanout.byStream.keys()]).toEqual(['user:alice'])
    drop(fanout, other.r)
    expect(fanout.byUser.size + fanout.byStream.size).toBe(0)
    hear(fanout, frame('user:alice', 1))
    expect(a.sent.length + other.sent.length).toBe(0)
  })

  it('shares a read in flight only with readers that listened before it began', async () => {
    const { fanout, reader } = setup()
    const reads: Array<() => void> = []
    const read = () =>
      new Promise<number>((resolve) =>
        reads.push(
          (
            (n) => () =>
              resolve(n)
          )(reads.length),
        ),
      )
    const [a, b, c] = [reader('a'), reader('b'), reader('c')]
    listen(fanout, a.r, 'room:r')
    listen(fanout, b.r, 'room:r')
    const first = shared(fanout, 'room:r', '0 e', read)
    const second = shared(fanout, 'room:r', '0 e', read)
    const other = shared(fanout, 'room:r', '5 e', read)
    // c is counted after the first read began: what this node heard before c was counted is not
    // in c's queue, so c must not take that read's older answer.
    listen(fanout, c.r, 'room:r')
    const third = shared(fanout, 'room:r', '0 e', read)
    await Promise.resolve()
    expect(reads).toHaveLength(3)
    for (const done of reads) done()
    expect(await first).toBe(await second)
    expect(await other).not.toBe(await first)
    expect(await third).not.toBe(await first)
    // Settled reads are forgotten.
    expect(fanout.reads.size).toBe(0)
  })

  it('a reset names streams: only their readers are told to resume; a login being served resumes after it', () => {
    const { fanout, reader } = setup()
    const a = reader('alice')
    const b = reader('bob')
    const c = reader('carol', 'resuming')
    listen(fanout, a.r, 'user:alice')
    listen(fanout, b.r, 'user:bob')
    listen(fanout, c.r, 'user:alice')
    hear(fanout, { type: 'reset', streams: ['user:alice'] })
    expect(a.closes).toEqual([[1012, 'engine reset']])
    expect(b.closes).toEqual([])
    expect(c.closes).toEqual([])
    expect(c.r.stale).toBe(true)
  })

  /**
   * alice, connected in `phase` to a node whose engine listens per stream, joins room r; one frame
   * was appended since the join, before this node hears the room: only the history has it.
   */
  function joinedWhile(phase: Phase) {
    const engine = memoryEngine()
    const fanout = createFanout(
      { listen: () => Promise.resolve(), unlisten: () => {}, since: (s, from) => engine.since(s, from) },
      () => {},
    )
    const s = socket()
    const r: Reader = {
      ws: s.ws,
      user: 'alice',
      phase,
      held: [],
      stale: false,
      at: new Map(),
      streams: new Set(),
    }
    add(fanout, r)
    engine.join('alice', 'r')
    const from = engine.joined('alice').r!
    engine.append('room:r', { Operator: 'Quote', n: 1 })
    hear(fanout, { type: 'join', user: 'alice', room: 'r', position: from })
    const live = (n: number) =>
      hear(fanout, {
        type: 'frame',
        stream: 'room:r',
        position: { offset: n, epoch: from.epoch },
        frame: { Operator: 'Quote', n },
      })
    return { fanout, s, r, live }
  }

  it('a join while connected reads the room from the join position once the engine listens; live frames heard meanwhile follow it', async () => {
    const { s, live } = joinedWhile('ready')
    // Live frames heard while the history is read wait behind it.
    live(2)
    live(1)
    expect(s.sent).toEqual([])
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(s.sent.map((f) => f.n)).toEqual([1, 2])
    expect(s.closes).toEqual([])
  })

  it('a room joined while the login is served: its history comes before the live frames heard meanwhile', async () => {
    const { fanout, s, r, live } = joinedWhile('resuming')
    live(2)
    await new Promise((resolve) => setTimeout(resolve, 0))
    // The login's answer is sent: then what waited, as src/server/login.ts does.
    ;(r as { phase: Phase }).phase = 'ready'
    for (const h of r.held.splice(0)) deliver(fanout, r, h.stream, h.position, h.out)
    expect(s.sent.map((f) => f.n)).toEqual([1, 2])
    expect(s.closes).toEqual([])
  })
})

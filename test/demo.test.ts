// The demo, run in-process and shortened: the same script of faults, played in 6 s by 5 clients
// against a real mpbus/server process, must end with nothing lost and nothing reordered in either
// direction. Plus the reports' arithmetic, on made-up logs, so a demo that could not see a loss,
// a reordering or a frame seen twice would fail here.
import { describe, expect, it } from 'vitest'
import type { ClientEvent, Resync, Seen } from '../demo/client'
import { pushResult, pushVerdict, renderPushTable } from '../demo/push-report'
import type { PushRecord } from '../demo/pusher'
import { createTally, renderTable, verdict, worstNotice, worstRecovery } from '../demo/report'
import { type DemoResult, runDemo } from '../demo/run'
import { type Fault, faultKinds, seeded } from '../demo/timeline'
import { createTestServer } from '../src/testing/index'
import { itWithRedis } from './helpers/redis'

/** What a failed run lost, and when its faults were, for the assertion message. */
const why = (r: DemoResult) =>
  JSON.stringify({
    wallMs: Math.round(r.wallMs),
    lost: r.rows.filter((x) => x.lost).map((x) => [x.name, x.lost]),
    pushLost: r.pushRows?.filter((x) => x.lost).map((x) => [x.name, x.lostFrames]),
    faults: r.faults.map((f) => [f.kind, Math.round(f.start), Math.round(f.end ?? -1)]),
  })

describe('npm run demo', () => {
  it('survives every fault of the timeline with zero lost and zero reordered both ways (6 s, 5 clients)', async () => {
    const lines: string[] = []
    const result = await runDemo({
      duration: 6,
      clients: 5,
      seed: 42,
      pushRate: 10,
      onEvent: (l) => lines.push(l),
    })
    const kinds = faultKinds(1)
    expect(result.kinds).toEqual(kinds)
    expect(kinds).toEqual(['freeze', 'reset', 'acks', 'refuse', 'offline', 'hide', 'kill', 'restart'])
    expect(faultKinds(2)).toEqual([...kinds, 'node'])
    expect(faultKinds(1, 'redis-cluster')).toEqual([...kinds, 'master'])
    expect(faultKinds(3, 'redis-cluster')).toEqual([...kinds, 'master', 'node'])
    expect(lines).toHaveLength(kinds.length)
    expect(result.drained, why(result)).toBe(true)
    expect(result.lost).toBe(0)
    expect(result.outOfOrder).toBe(0)
    expect(result.pushLost).toBe(0)
    expect(result.pushOutOfOrder).toBe(0)
    expect(result.ok).toBe(true)
    // Server → client: every client got its pushes and the room's, each once, in order. The
    // restart of the memory engine is a new epoch: every client was told (resync on both of its
    // streams), and what was pushed behind a resync is counted apart, never as delivered.
    for (const row of result.pushRows!) {
      expect(row.pushed).toBeGreaterThan(40)
      expect(row.twice).toBe(0)
      expect(row.delivered + row.behindResync).toBe(row.pushed)
      expect(row.delivered).toBeGreaterThan(row.pushed / 2)
      expect(row.resyncs).toBeGreaterThanOrEqual(2)
    }
    for (const row of result.rows) {
      // 6 s at 5 messages/s, less the time a killed client was down.
      expect(row.sent).toBeGreaterThan(15)
      expect(row.delivered).toBe(row.sent)
      // Every client went through the freeze, the refused outage and the server restart (and the
      // reset, unless it was still reconnecting then): at least three returns to ready.
      expect(row.reconnects).toBeGreaterThanOrEqual(3)
      // The freeze (0.6 s here, heartbeat 200 + 200 ms) was noticed, and every fault was recovered
      // from. How soon is proven on the fake clock (transport.test.ts: within interval + timeout),
      // not here on a real one that a loaded machine slows.
      expect(row.noticeMs).toBeGreaterThan(0)
      expect(row.recoverMs).toBeLessThan(Number.POSITIVE_INFINITY)
    }
    const kill = result.faults.find((f) => f.kind === 'kill')!
    expect(kill.clients.length).toBeGreaterThanOrEqual(1)
    // The killed apps were offline first: their outboxes held messages only storage could save.
    expect(kill.carried).toBeGreaterThan(0)
    // While they were dead the server pushed to them; after the cold start they got all of it
    // (the positions came back from their storage files).
    for (const i of kill.clients) {
      const dead = result.pushRows![i]!.whileDead!
      expect(dead.pushed).toBeGreaterThan(0)
      expect(dead.recovered).toBe(dead.pushed)
    }
    // Acks lost, then the links dropped: the clients hit resent their unacknowledged messages with
    // the same ids, and the server dropped every resend as a repeat (nothing counted twice, so
    // delivered === sent above, and first arrivals stayed in order).
    const acks = result.faults.find((f) => f.kind === 'acks')!
    expect(acks.clients.length).toBeGreaterThanOrEqual(1)
    expect(acks.end! - acks.start).toBeGreaterThan(300)
    for (const i of acks.clients) {
      const row = result.rows[i]!
      expect(row.repeats).toBeGreaterThan(0)
      expect(row.lost).toBe(0)
      expect(row.outOfOrder).toBe(0)
    }
    expect(renderTable(result.rows)).toMatch(/^total .* 0 /m)
    expect(renderPushTable(result.pushRows!)).toMatch(/^total +\d+ +\d+ +0 +0 +0 /m)
  }, 30_000)

  itWithRedis(
    'two nodes on one real redis-server: a node killed, a restart, nothing lost either way, no resync',
    async () => {
      const result = await runDemo({
        duration: 8,
        clients: 4,
        seed: 7,
        servers: 2,
        engine: 'redis',
        pushRate: 10,
      })
      expect(result.kinds).toEqual(faultKinds(2))
      expect(result.kinds).toContain('node')
      expect(result.drained, why(result)).toBe(true)
      expect(result.lost).toBe(0)
      expect(result.outOfOrder).toBe(0)
      expect(result.pushLost).toBe(0)
      expect(result.pushOutOfOrder).toBe(0)
      expect(result.ok).toBe(true)
      // Connections alternated between the nodes.
      expect(result.routed).toHaveLength(2)
      for (const n of result.routed) expect(n).toBeGreaterThan(4)
      for (const row of result.pushRows!) {
        expect(row.pushed).toBeGreaterThan(40)
        // The history and its epoch live in Redis: a restart of every node is no resync.
        expect(row.resyncs).toBe(0)
        expect(row.delivered).toBe(row.pushed)
        expect(row.twice).toBe(0)
      }
      const kill = result.faults.find((f) => f.kind === 'kill')!
      for (const i of kill.clients) {
        const dead = result.pushRows![i]!.whileDead!
        expect(dead.recovered).toBe(dead.pushed)
      }
      // The window is in Redis too: a resend after the restart is a repeat, never handled twice.
      for (const row of result.rows) expect(row.twice).toBe(0)
    },
    60_000,
  )

  itWithRedis(
    'three nodes on a real Redis Cluster: a master killed and restarted, a node killed, nothing lost either way, no resync',
    async () => {
      const lines: string[] = []
      const result = await runDemo({
        duration: 10,
        clients: 4,
        seed: 1,
        servers: 3,
        engine: 'redis-cluster',
        pushRate: 10,
        onEvent: (l) => lines.push(l),
      })
      expect(result.kinds).toEqual(faultKinds(3, 'redis-cluster'))
      expect(result.drained, why(result)).toBe(true)
      expect(result.lost).toBe(0)
      expect(result.outOfOrder).toBe(0)
      expect(result.pushLost).toBe(0)
      expect(result.pushOutOfOrder).toBe(0)
      expect(result.ok).toBe(true)
      // The event line says which master, and that its shard's streams were unavailable.
      expect(lines.find((l) => l.includes('Redis master killed'))).toMatch(
        /master \d of 3, slots [\d,-]+: the streams there \(.+\) unavailable until it is back/,
      )
      // Seed 1 kills the master of the room's stream, which every client reads: none could log in
      // meanwhile, and each came back once it served again.
      const master = result.faults.find((f) => f.kind === 'master')!
      expect(master.who).toMatch(/\(the room; /)
      expect(master.clients).toEqual([0, 1, 2, 3])
      for (const i of master.clients) expect(result.rows[i]!.recoverMs).toBeLessThan(Number.POSITIVE_INFINITY)
      for (const row of result.pushRows!) {
        expect(row.pushed).toBeGreaterThan(40)
        // Every master writes each command to disk before answering: the restarted one kept its
        // streams and their epochs, so nothing resyncs and every confirmed push was seen, once.
        expect(row.resyncs).toBe(0)
        expect(row.delivered).toBe(row.pushed)
        expect(row.twice).toBe(0)
      }
      for (const row of result.rows) {
        expect(row.delivered).toBe(row.sent)
        expect(row.twice).toBe(0)
      }
    },
    60_000,
  )

  it('with a url, soaks that server without faults, counting from the delivery promises', async () => {
    const server = await createTestServer()
    try {
      const result = await runDemo({ url: server.url, duration: 1, clients: 2, seed: 1 })
      expect(result.mode).toBe('url')
      expect(result.faults).toEqual([])
      expect(result.pushRows).toBeUndefined()
      expect(result.ok).toBe(true)
      for (const row of result.rows) {
        expect(row.sent).toBeGreaterThanOrEqual(3)
        expect(row.delivered).toBe(row.sent)
        expect(row.repeats).toBeUndefined()
      }
      const demoFrames = server.received.filter((r) => r.frame.Operator === 'Demo')
      expect(demoFrames).toHaveLength(result.rows[0]!.sent + result.rows[1]!.sent)
    } finally {
      await server.close()
    }
  })
})

describe('demo report', () => {
  it('counts distinct first arrivals and those that came after a higher number', () => {
    const tally = createTally()
    for (const n of [0, 1, 3, 2, 3, 4, 1]) tally.add(n)
    expect(tally.size).toBe(5)
    expect(tally.outOfOrder).toBe(1)
    expect(tally.twice).toBe(2)
    expect(tally.delivered(4)).toBe(4)
    expect(tally.delivered(6)).toBe(5)
  })

  it('measures the worst notice and recovery per client from its ready/down log', () => {
    const faults: Fault[] = [
      { kind: 'freeze', label: 'frozen link', start: 1000, end: 4000, clients: [0, 1] },
      { kind: 'offline', label: 'network off', start: 6000, end: 8000, clients: [1] },
      { kind: 'reset', label: 'connections reset', start: 10000, end: 10000, clients: [0, 1] },
    ]
    const log: ClientEvent[] = [
      { at: 100, kind: 'ready' },
      { at: 2900, kind: 'down' }, // noticed the freeze after 1.9 s
      { at: 4600, kind: 'ready' }, // 0.6 s after pass()
      { at: 6000, kind: 'down' },
      { at: 9000, kind: 'ready' }, // 1 s after online()
      { at: 10000, kind: 'down' },
      { at: 10100, kind: 'ready' },
    ]
    expect(worstNotice(1, log, faults)).toBe(1900)
    expect(worstRecovery(1, log, faults)).toBe(1000)
    // The offline fault did not hit client 0: its recovery from it is not counted.
    expect(worstRecovery(0, log, faults)).toBe(600)
    expect(worstNotice(2, log, faults)).toBeUndefined()
    // Never noticed, never recovered: Infinity, shown as "never".
    const stuck: ClientEvent[] = [{ at: 100, kind: 'ready' }]
    expect(worstNotice(0, stuck, faults)).toBe(Number.POSITIVE_INFINITY)
    const down: ClientEvent[] = [
      { at: 100, kind: 'ready' },
      { at: 6000, kind: 'down' },
    ]
    expect(worstRecovery(1, down, faults)).toBe(Number.POSITIVE_INFINITY)
    // Still in backoff when the reset hit it too: the offline fault is measured at the reset instead.
    const overlapped: ClientEvent[] = [
      { at: 100, kind: 'ready' },
      { at: 2900, kind: 'down' },
      { at: 4600, kind: 'ready' },
      { at: 6000, kind: 'down' },
      { at: 10100, kind: 'ready' },
    ]
    expect(worstRecovery(1, overlapped, faults)).toBe(600)
    expect(worstRecovery(1, overlapped, faults.slice(0, 2))).toBe(2100)
  })

  it('fails the verdict on a lost or a reordered message, and totals the table', () => {
    const row = { name: 'a', sent: 10, delivered: 10, lost: 0, repeats: 2, outOfOrder: 0, reconnects: 3 }
    expect(verdict([row, { ...row, name: 'b' }], []).ok).toBe(true)
    expect(verdict([row, { ...row, name: 'b', lost: 1, delivered: 9 }], []).text).toMatch(
      /^FAIL: client → server 20 sent, 19 delivered, 1 lost/,
    )
    expect(verdict([row, { ...row, name: 'b', outOfOrder: 1 }], []).ok).toBe(false)
    const table = renderTable([row, { ...row, name: 'b', noticeMs: 1234 }]).split('\n')
    expect(table[table.length - 1]).toMatch(/^total\s+20\s+20\s+0\s+4\s+-\s+0\s+6\s+1\.23 s\s+-$/)
  })

  // Pushes to one client: k 0..5 in epoch E1 (offsets 1..6), then k 6..7 in E2 after a restart.
  const at = (k: number) => k * 100
  const pushes: PushRecord[] = [0, 1, 2, 3, 4, 5, 6, 7].map((k) => ({
    k,
    at: at(k),
    epoch: k < 6 ? 'E1' : 'E2',
    offset: k < 6 ? k + 1 : k - 5,
  }))
  const saw = (...ks: number[]): Seen[] =>
    ks.map((k) => ({ k, offset: pushes[k]!.offset, epoch: pushes[k]!.epoch, at: at(k) + 50 }))
  const input = (
    seen: Seen[],
    resyncs: Resync[] = [],
    deaths: Array<{ from: number; to?: number }> = [],
  ) => ({
    name: 'c',
    user: pushes,
    room: [],
    seen: { user: seen, room: [] },
    resyncs,
    deaths,
  })

  it('server → client: counts a frame never seen as lost, once twice, and a late first sight as out of order', () => {
    const all = pushResult(input(saw(0, 1, 2, 3, 4, 5, 6, 7)))
    expect(all).toMatchObject({ pushed: 8, delivered: 8, lost: 0, twice: 0, outOfOrder: 0, behindResync: 0 })
    expect(pushVerdict([all]).ok).toBe(true)
    const bad = pushResult(input(saw(0, 2, 1, 3, 3, 5, 6, 7)))
    expect(bad).toMatchObject({
      delivered: 7,
      lost: 1,
      twice: 1,
      outOfOrder: 1,
      lostFrames: ['user k=4 @5/E1'],
    })
    expect(pushVerdict([bad]).text).toMatch(/8 pushed, 7 delivered, 1 lost, 1 seen twice, 1 out of order/)
    expect(pushVerdict([pushResult(input(saw(0, 1, 2, 3, 4, 5, 6, 7, 7)))]).ok).toBe(false)
    expect(renderPushTable([bad, all]).split('\n').pop()).toMatch(/^total\s+16\s+15\s+1\s+1\s+1\s+0\s+0\s+-$/)
  })

  it('server → client: a gap is behind a resync only when the resync the client got covers it', () => {
    // Missed k 4, 5 (old epoch, before the resync arrived) and k 6 (new epoch, at or before the
    // resync's tip): all behind it. k 7 is after the tip: missing it is a loss.
    const resync: Resync = { stream: 'user', epoch: 'E2', offset: 1, at: 650 }
    const r = pushResult(input(saw(0, 1, 2, 3, 7), [resync]))
    expect(r).toMatchObject({ delivered: 5, behindResync: 3, lost: 0, resyncs: 1 })
    expect(pushVerdict([r]).ok).toBe(true)
    expect(pushVerdict([r]).text).toMatch(/1 resyncs \(3 pushed frames behind them\)/)
    expect(pushResult(input(saw(0, 1, 2, 3), [resync]))).toMatchObject({ behindResync: 3, lost: 1 })
    // A resync of the room does not cover the user's stream; one that came before the frame does not either.
    expect(pushResult(input(saw(0, 1, 2, 3, 6, 7), [{ ...resync, stream: 'room' }])).lost).toBe(2)
    expect(pushResult(input(saw(0, 1, 2, 3, 6, 7), [{ ...resync, at: 350 }])).lost).toBe(2)
    // k 2 was skipped while the client went on to k 3 of the same epoch: a silent loss, which a
    // later resync does not excuse (k 4 and 5 are still behind it).
    expect(pushResult(input(saw(0, 1, 3, 6, 7), [resync]))).toMatchObject({ lost: 1, behindResync: 2 })
  })

  it('server → client: counts what was pushed while the app was dead and what its cold start got back', () => {
    const r = pushResult(input(saw(0, 1, 2, 3, 4, 5, 6, 7), [], [{ from: 250, to: 520 }]))
    expect(r.whileDead).toEqual({ pushed: 3, recovered: 3 })
    expect(pushResult(input(saw(0, 1, 2, 5, 6, 7), [], [{ from: 250, to: 520 }])).whileDead).toEqual({
      pushed: 3,
      recovered: 1,
    })
    expect(pushResult(input(saw(0))).whileDead).toBeUndefined()
  })

  it('seeds reproducibly', () => {
    const a = seeded(7)
    const b = seeded(7)
    const xs = Array.from({ length: 5 }, a)
    expect(Array.from({ length: 5 }, b)).toEqual(xs)
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true)
    expect(Array.from({ length: 5 }, seeded(8))).not.toEqual(xs)
  })
})

// The demo, run in-process and shortened: the same script of faults, played in 6 s by 5 clients,
// must end with nothing lost and nothing reordered. Plus the report's arithmetic, on made-up logs,
// so a demo that could not see a loss or a reordering would fail here.
import { describe, expect, it } from 'vitest'
import type { ClientEvent } from '../demo/client'
import { createTally, renderTable, verdict, worstNotice, worstRecovery } from '../demo/report'
import { runDemo } from '../demo/run'
import { FAULT_KINDS, type Fault, seeded } from '../demo/timeline'
import { createTestServer } from '../src/testing/index'

describe('npm run demo', () => {
  it('survives every fault of the timeline with zero lost and zero reordered (6 s, 5 clients)', async () => {
    const lines: string[] = []
    const result = await runDemo({ duration: 6, clients: 5, seed: 42, onEvent: (l) => lines.push(l) })
    expect(result.kinds).toEqual(FAULT_KINDS)
    expect(FAULT_KINDS).toEqual(['freeze', 'reset', 'acks', 'refuse', 'offline', 'hide', 'kill', 'restart'])
    expect(lines).toHaveLength(FAULT_KINDS.length)
    expect(result.drained).toBe(true)
    expect(result.lost).toBe(0)
    expect(result.outOfOrder).toBe(0)
    expect(result.ok).toBe(true)
    for (const row of result.rows) {
      // 6 s at 5 messages/s, less the time a killed client was down.
      expect(row.sent).toBeGreaterThan(20)
      expect(row.delivered).toBe(row.sent)
      // Every client went through the freeze, the refused outage and the server restart (and the
      // reset, unless it was still reconnecting then): at least three returns to ready.
      expect(row.reconnects).toBeGreaterThanOrEqual(3)
      // The freeze (0.6 s here, heartbeat 200 + 200 ms) was noticed, and every fault was recovered from.
      expect(row.noticeMs).toBeGreaterThan(0)
      expect(row.noticeMs).toBeLessThan(1500)
      expect(row.recoverMs).toBeLessThan(Number.POSITIVE_INFINITY)
    }
    const kill = result.faults.find((f) => f.kind === 'kill')!
    expect(kill.clients.length).toBeGreaterThanOrEqual(1)
    // The killed apps were offline first: their outboxes held messages only storage could save.
    expect(kill.carried).toBeGreaterThan(0)
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
  }, 20_000)

  it('with a url, soaks that server without faults, counting from the delivery promises', async () => {
    const server = await createTestServer()
    try {
      const result = await runDemo({ url: server.url, duration: 1, clients: 2, seed: 1 })
      expect(result.mode).toBe('url')
      expect(result.faults).toEqual([])
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
      /^FAIL: 20 sent, 19 delivered, 1 lost/,
    )
    expect(verdict([row, { ...row, name: 'b', outOfOrder: 1 }], []).ok).toBe(false)
    const table = renderTable([row, { ...row, name: 'b', noticeMs: 1234 }]).split('\n')
    expect(table[table.length - 1]).toMatch(/^total\s+20\s+20\s+0\s+4\s+0\s+6\s+1\.23 s\s+-$/)
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

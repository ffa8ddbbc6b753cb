// The bus under random interleavings of sends, opens, polite closes, sends that fail
// synchronously (a browser WebSocket once the server's close frame arrived), lost acks, app
// hide/show and close(): what reaches the server first arrives in order, and in the end
// everything arrives, each message's promise settling once.
import fc from 'fast-check'
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { createBus } from '../src/bus/index'
import { createMemoryStorage } from '../src/platform/memory-storage'
import { createScriptPlatform } from './helpers/script-platform'

beforeEach(() => {
  vi.useFakeTimers()
})
afterEach(() => {
  vi.useRealTimers()
})

const step = fc.oneof(
  fc.record({ kind: fc.constant('send' as const), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('open' as const) }),
  fc.record({ kind: fc.constant('politeClose' as const) }),
  fc.record({ kind: fc.constant('failSends' as const), on: fc.boolean() }),
  // `batch`: the acks go as one batched frame (MsgIds), with an id the client never sent among them.
  fc.record({ kind: fc.constant('ack' as const), lose: fc.boolean(), batch: fc.boolean() }),
  fc.record({ kind: fc.constant('app' as const), visible: fc.boolean() }),
  fc.record({ kind: fc.constant('wait' as const), ms: fc.constantFrom(0, 10, 600, 3000) }),
)

it('first arrivals in order, nothing lost, whatever the link does', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.boolean(),
      fc.array(step, { minLength: 10, maxLength: 60, size: 'max' }),
      async (ack, steps) => {
        vi.clearAllTimers()
        const sp = createScriptPlatform()
        const bus = createBus({
          url: 'ws://p',
          platform: sp.platform,
          storage: createMemoryStorage(),
          heartbeat: false,
          ack: ack && { timeout: 1000 },
          outbox: { window: 4 },
          reconnect: { minDelay: 10, maxDelay: 100 },
        })
        let next = 0
        const settled = new Map<number, string>()
        const send = (n: number) =>
          bus.send('M', { n }).then(
            () => settled.set(n, 'delivered'),
            (e) => settled.set(n, e.code),
          )
        /** The first arrival of each message, by n, in arrival order. */
        const firsts: number[] = []
        const seen = new Set<number>()
        const acked = new Set<string>()
        const arrivals = () => {
          for (const socket of sp.sockets)
            for (const data of socket.received) {
              const frame = JSON.parse(data as string)
              if (frame.Operator !== 'M' || seen.has(frame.n)) continue
              seen.add(frame.n)
              firsts.push(frame.n)
            }
        }
        const ackAll = (batch = false) => {
          const socket = sp.alive().find((s) => s.opened)
          if (!socket) return
          const ids: string[] = []
          // As a server does: every frame it got on this socket is acknowledged on it, repeats included.
          for (const data of socket.received) {
            const { MsgId } = JSON.parse(data as string)
            const key = `${socket.id}/${MsgId}`
            if (MsgId && !acked.has(key) && socket.alive) {
              acked.add(key)
              if (batch) ids.push(MsgId)
              else socket.message(JSON.stringify({ Operator: 'Ack', MsgId }))
            }
          }
          if (ids.length && socket.alive)
            socket.message(JSON.stringify({ Operator: 'Ack', MsgIds: [...ids, 'never-sent'] }))
        }
        for (const s of steps) {
          if (s.kind === 'send') for (let i = 0; i < s.count; i++) send(next++)
          else if (s.kind === 'open')
            sp.alive()
              .find((socket) => !socket.opened)
              ?.open()
          else if (s.kind === 'politeClose') sp.alive()[0]?.close(1000)
          else if (s.kind === 'failSends') sp.failSends(s.on)
          else if (s.kind === 'ack') {
            if (!s.lose) ackAll(s.batch)
          } else if (s.kind === 'app') sp.app(s.visible)
          else await vi.advanceTimersByTimeAsync(s.ms)
          arrivals()
        }
        // Quiet: the link behaves; everything must arrive and settle.
        sp.failSends(false)
        sp.app(true)
        for (let round = 0; round < 200 && settled.size < next; round++) {
          sp.alive()
            .find((socket) => !socket.opened)
            ?.open()
          if (ack) ackAll(round % 2 === 1)
          await vi.advanceTimersByTimeAsync(100)
          arrivals()
        }
        expect(firsts).toEqual(Array.from({ length: next }, (_, n) => n))
        expect([...settled.values()].every((v) => v === 'delivered')).toBe(true)
        expect(settled.size).toBe(next)
        bus.close()
        expect(vi.getTimerCount()).toBe(0)
      },
    ),
    { numRuns: Number(process.env.RUNS) || (process.env.CI ? 200 : 100) },
  )
})

// How a frame leaves a server socket (src/server/send.ts) on its own: one frame per message for a
// client that takes no batches; for one that does, the frames of one macrotask in as few messages
// as its byte limit allows, in order, and what waits sent before a close. Sockets are stand-ins.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { WebSocket } from 'ws'
import { batch, close, send } from '../../src/server/send'

function socket() {
  const messages: string[] = []
  const closes: number[] = []
  const ws = {
    OPEN: 1,
    readyState: 1,
    send: (data: string) => messages.push(data),
    close(code: number) {
      closes.push(code)
      ws.readyState = 3
    },
  }
  return { ws: ws as unknown as WebSocket, messages, closes }
}

const macrotask = () => new Promise((resolve) => setImmediate(resolve))
const frames = (messages: string[]) => messages.flatMap((m) => [].concat(JSON.parse(m)))

describe('mpbus/server: sending', () => {
  it('a socket that takes no batches gets one frame per message, at once', () => {
    const { ws, messages } = socket()
    send(ws, { Operator: 'A' })
    send(ws, '{"Operator":"B"}')
    expect(messages).toEqual(['{"Operator":"A"}', '{"Operator":"B"}'])
  })

  it('property: a batching socket gets every frame once, in order, in messages within its limit', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.string({ unit: 'binary', maxLength: 300 }), { maxLength: 30 }), {
          maxLength: 5,
        }),
        fc.integer({ min: 1, max: 2000 }),
        async (tasks, limit) => {
          const { ws, messages } = socket()
          batch(ws, limit)
          const all: unknown[] = []
          for (const texts of tasks) {
            const before = messages.length
            for (const text of texts) {
              const frame = { Operator: 'Q', text }
              all.push(frame)
              send(ws, frame)
            }
            await macrotask()
            // One macrotask's frames: one message unless the limit splits them.
            const made = messages.slice(before)
            if (texts.length) expect(made.length).toBeGreaterThan(0)
            for (const m of made)
              if (Array.isArray(JSON.parse(m))) expect(Buffer.byteLength(m)).toBeLessThanOrEqual(limit)
          }
          expect(frames(messages)).toEqual(all)
        },
      ),
      { numRuns: 30 },
    )
  })

  it('what waits leaves before a close; batch(ws, 0) goes back to one frame per message', async () => {
    const { ws, messages, closes } = socket()
    batch(ws, 1 << 20)
    send(ws, { Operator: 'A' })
    send(ws, { Operator: 'B' })
    close(ws, 4001, 'session ended')
    expect(messages).toEqual(['[{"Operator":"A"},{"Operator":"B"}]'])
    expect(closes).toEqual([4001])
    const other = socket()
    batch(other.ws, 1 << 20)
    send(other.ws, { Operator: 'A' })
    batch(other.ws, 0)
    send(other.ws, { Operator: 'B' })
    await macrotask()
    expect(other.messages).toEqual(['{"Operator":"A"}', '{"Operator":"B"}'])
  })
})

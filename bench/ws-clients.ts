/**
 * The clients of bench/nodes.ts: raw `ws` sockets in the bench's process, each logged in as its
 * own user the way an mpbus client does (`{"Operator":"userLogin", …, "Batch": 1048576}`, with its
 * stream positions when it resumes), counting the frames it gets.
 */
import WebSocket from 'ws'
import type { Node } from './node-pool'

interface Pos {
  offset: number
  epoch: string
}

export interface Client {
  user: string
  /** The index of the node it logs in to. */
  node: number
  ws?: WebSocket
  /** Frames with a stream position received, each counted once. */
  frames: number
  /** Frames whose position this client had already. */
  repeats: number
  resyncs: number
  seen: Set<string>
  /** The last position per stream: the login's `Streams` when it comes back. */
  at: Record<string, Pos>
}

/** `count` clients, users u<first>…, spread round-robin over `nodes` nodes. */
export const clientsFor = (count: number, nodes: number, first = 0): Client[] =>
  Array.from({ length: count }, (_, i) => ({
    user: `u${first + i}`,
    node: i % nodes,
    frames: 0,
    repeats: 0,
    resyncs: 0,
    seen: new Set(),
    at: {},
  }))

function login(client: Client, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    client.ws = ws
    ws.on('message', (data) => {
      const parsed = JSON.parse(String(data))
      for (const frame of Array.isArray(parsed) ? parsed : [parsed]) {
        if (frame.Operator === 'LoginOK') {
          Object.assign(client.at, frame.Streams)
          resolve()
          continue
        }
        const s = frame.Stream
        if (!s) continue
        client.at[s.name] = { offset: s.offset, epoch: s.epoch }
        if (frame.Operator === 'Resync') {
          client.resyncs++
          continue
        }
        const key = `${s.name} ${s.offset} ${s.epoch}`
        if (client.seen.has(key)) client.repeats++
        else {
          client.seen.add(key)
          client.frames++
        }
      }
    })
    ws.once('open', () => {
      const positions = Object.keys(client.at).length ? { Streams: client.at } : {}
      ws.send(JSON.stringify({ Operator: 'userLogin', user: client.user, ...positions, Batch: 1048576 }))
    })
    ws.once('error', reject)
    ws.once('close', (code) => reject(new Error(`${client.user}: closed with ${code} before LoginOK`)))
  })
}

export const loginAll = (clients: Client[], nodes: Node[]) =>
  Promise.all(clients.map((c) => login(c, nodes[c.node]!.port)))

export function dropAll(clients: Client[]): void {
  for (const c of clients) c.ws?.terminate()
}

export const delivered = (clients: Client[]) => clients.reduce((sum, c) => sum + c.frames, 0)

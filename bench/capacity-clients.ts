/**
 * The clients of one server of bench/capacity.ts, run as their own process (bundled and `fork`ed
 * by it): each server gets its own, so that the bench can hold the three servers' connections at
 * once (one process may open fewer files than that) and measure their CPU in the same window.
 * Raw `ws` sockets; each sends `{"Operator":"userLogin","openId":"u<i>"}`, waits for the answer
 * (`LoginOK`; the bare server's one frame) and stays idle until told to send heartbeats.
 *
 * Its config is JSON in the environment variable MPBUS_BENCH_CLIENTS (`ClientsConfig`).
 */
import WebSocket from 'ws'
import { BARE_ANSWER } from './capacity-node'

export interface ClientsConfig {
  port: number
  /** The server is the bare one: any frame answers the login. */
  bare: boolean
}

/** Bench → clients: a request, answered with its id. */
export type ClientsRequest =
  /** Opens and logs in clients until there are `count`; answers the count. */
  | { id: number; t: 'fill'; count: number }
  /** Starts (or stops) every client's heartbeat once per `interval` ms, spread evenly. */
  | { id: number; t: 'beat'; interval: number }
  | { id: number; t: 'stop' }
  /** Answers `Counts`. */
  | { id: number; t: 'counts' }

export interface Counts {
  /** Heartbeats sent, their answers received, pushed frames received. */
  sent: number
  answered: number
  ticks: number
}

export type ClientsAnswer =
  | { t: 'ready'; port: number }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'refused'; id: number; error: string }

const HEART = JSON.stringify({ Operator: 'Heart' })
/** Logins in flight at once: more would overflow the listen backlog and wait out SYN retries. */
const CONNECTING = 200

const tell = (answer: ClientsAnswer) => process.send?.(answer)

const sockets: WebSocket[] = []
const counts: Counts = { sent: 0, answered: 0, ticks: 0 }
let beating: ReturnType<typeof setInterval> | undefined

function openOne(config: ClientsConfig, i: number): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${config.port}`, { perMessageDeflate: false })
    let loggedIn = false
    ws.on('open', () => ws.send(JSON.stringify({ Operator: 'userLogin', openId: `u${i}` })))
    ws.on('message', (data) => {
      const text = String(data)
      if (!loggedIn) {
        loggedIn = true
        if (config.bare ? text === BARE_ANSWER : text.includes('"LoginOK"')) resolve(ws)
        else reject(new Error(`u${i}: login answered ${text.slice(0, 200)}`))
      } else if (text.includes('"HeartOK"')) counts.answered++
      else if (text.includes('"Tick"')) counts.ticks++
    })
    ws.on('error', (error) => {
      if (!loggedIn) reject(new Error(`u${i}: ${error.message}`))
    })
    ws.on('close', (code) => {
      if (!loggedIn) reject(new Error(`u${i}: closed ${code} before its login was answered`))
    })
  })
}

async function fill(config: ClientsConfig, count: number): Promise<number> {
  let next = sockets.length
  const worker = async () => {
    while (next < count) {
      const i = next++
      sockets[i] = await openOne(config, i)
    }
  }
  await Promise.all(Array.from({ length: CONNECTING }, worker))
  return sockets.length
}

/**
 * One timer for all clients, every millisecond: at 10,000 clients and 25 s a frame is due every
 * 2.5 ms, so each reaches the server on its own, as independent clients' frames do (a burst of
 * several would be read in one turn of the server's event loop, cheaper per frame than real
 * traffic). Client i beats at i/N of the interval, then once per interval.
 */
function beat(interval: number): void {
  clearInterval(beating)
  const start = performance.now()
  const first = counts.sent
  beating = setInterval(() => {
    const due = first + Math.floor(((performance.now() - start) * sockets.length) / interval)
    for (; counts.sent < due; counts.sent++) sockets[counts.sent % sockets.length]!.send(HEART)
  }, 1)
}

async function serve(config: ClientsConfig, request: ClientsRequest): Promise<unknown> {
  switch (request.t) {
    case 'fill':
      return fill(config, request.count)
    case 'beat':
      return beat(request.interval)
    case 'stop':
      return clearInterval(beating)
    case 'counts':
      return counts
  }
}

function main(config: ClientsConfig) {
  process.on('message', (request: ClientsRequest) => {
    serve(config, request).then(
      (value) => tell({ t: 'answer', id: request.id, value: value ?? null }),
      (error) => tell({ t: 'refused', id: request.id, error: String(error) }),
    )
  })
  // The bench ends these with SIGKILL; a bench that died first leaves none behind.
  process.on('disconnect', () => process.exit(0))
  tell({ t: 'ready', port: config.port })
}

if (process.env.MPBUS_BENCH_CLIENTS) main(JSON.parse(process.env.MPBUS_BENCH_CLIENTS) as ClientsConfig)

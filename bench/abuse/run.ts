// What one client (or one handler) can make one mpbus/server hold: each abuse against a fresh
// server in its own process, measured there as heap + external after a full collection (before
// and after the abuse), and with Redis, Redis's used_memory. Measures; asserts nothing.
//   npx tsx bench/abuse/run.ts                 this checkout
//   npx tsx bench/abuse/run.ts --source DIR    another checkout's src/server/index.ts (the before)
// Sizes are the figures of the README's "Limits and timeouts" scaled to run in about a minute
// each; the per-unit figures are what scale.
import { type ChildProcess, fork } from 'node:child_process'
import { resolve } from 'node:path'
import { createClient } from 'redis'
import WebSocket from 'ws'
import { startRedisServer } from '../../src/testing/index'

const MiB = 1024 * 1024
const at = process.argv.indexOf('--source')
const source = at > 0 ? resolve(process.argv[at + 1]!, 'src/server/index.ts') : undefined
const only = process.argv.indexOf('--only') > 0 ? process.argv[process.argv.indexOf('--only') + 1] : undefined

interface Node {
  port: number
  held(users: string[]): Promise<{ bytes: number; connections: number }>
  push(users: string[], count: number, size: number): Promise<void>
  close(): Promise<void>
}

async function node(config: object = {}): Promise<Node> {
  const child: ChildProcess = fork(
    new URL('./server.ts', import.meta.url).pathname,
    [JSON.stringify({ source, ...config })],
    {
      execArgv: ['--expose-gc', '--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    },
  )
  const next = (type: string) =>
    new Promise<any>((ok) => {
      const on = (m: any) => {
        if (m.type !== type) return
        child.off('message', on)
        ok(m)
      }
      child.on('message', on)
    })
  const { port } = await next('ready')
  return {
    port,
    async held(users) {
      child.send({ type: 'held', users })
      return next('held')
    },
    async push(users, count, size) {
      child.send({ type: 'push', users, count, size })
      await next('pushed')
    },
    async close() {
      child.send({ type: 'close' })
      await new Promise((ok) => child.once('exit', ok))
    },
  }
}

const sleep = (ms: number) => new Promise((ok) => setTimeout(ok, ms))

function connect(port: number): Promise<WebSocket> {
  return new Promise((ok, fail) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`)
    ws.once('open', () => ok(ws))
    ws.once('error', fail)
  })
}

async function login(port: number, user: string) {
  const ws = await connect(port)
  const got: any[] = []
  ws.on('message', (d) => got.push(JSON.parse(String(d))))
  ws.on('error', () => {})
  ws.send(JSON.stringify({ Operator: 'userLogin', openId: user }))
  while (!got.length && ws.readyState === ws.OPEN) await sleep(5)
  return { ws, got }
}

/** Sends frames as fast as the server reads them, until `count` or until it stops reading for 2 s. */
async function flood(ws: WebSocket, count: number, frame: (n: number) => object) {
  let sent = 0
  let stalledSince = 0
  while (sent < count && ws.readyState === ws.OPEN) {
    if (ws.bufferedAmount > 8 * MiB) {
      if (!stalledSince) stalledSince = Date.now()
      if (Date.now() - stalledSince > 2000) break
      await sleep(20)
      continue
    }
    stalledSince = 0
    ws.send(JSON.stringify(frame(sent++)))
    if (sent % 200 === 0) await sleep(0)
  }
  return sent
}

interface Row {
  abuse: string
  held: string
  note: string
}
const rows: Row[] = []
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`

async function measure(abuse: string, config: object, users: string[], run: (n: Node) => Promise<string>) {
  if (only && !abuse.includes(only)) return
  const n = await node(config)
  try {
    const before = await n.held(users)
    const note = await run(n)
    const after = await n.held(users)
    rows.push({
      abuse,
      held: mib(after.bytes - before.bytes),
      note: `${note}; connections open: ${after.connections}`,
    })
    console.log(rows[rows.length - 1])
  } finally {
    await n.close()
  }
}

async function main() {
  await measure('stopped reading; 50,000 pushes of 1 KB', {}, ['slow'], async (n) => {
    const c = await login(n.port, 'slow')
    ;(c.ws as any)._socket.pause()
    await n.push(['slow'], 50_000, 1024)
    await sleep(1500)
    return 'pushed 50,000'
  })

  await measure('stuck handler, then 300 frames of 1000 KiB behind it', {}, ['stuck'], async (n) => {
    const c = await login(n.port, 'stuck')
    const pad = 'x'.repeat(1000 * 1024 - 100)
    const sent = await flood(c.ws, 300, (i) =>
      i === 0 ? { Operator: 'Stuck', MsgId: 's' } : { Operator: 'Chat', MsgId: `m${i}`, pad },
    )
    await sleep(500)
    return `the client got ${sent} of 300 out before the server stopped reading`
  })

  await measure(
    '200,000 distinct message ids (memory engine)',
    { rate: { frames: 1e6, interval: 1000 } },
    ['ids'],
    async (n) => {
      const c = await login(n.port, 'ids')
      await flood(c.ws, 200_000, (i) => ({ Operator: 'Chat', MsgId: `${'r'.repeat(22)}-${i.toString(36)}` }))
      const acked = () =>
        c.got.reduce((k, f) => k + (f.Operator === 'Ack' ? (f.MsgIds ? f.MsgIds.length : 1) : 0), 0)
      while (acked() < 200_000 && c.ws.readyState === c.ws.OPEN) await sleep(50)
      return `${acked()} acked`
    },
  )

  await measure('400 message ids of 512 KiB', {}, ['long'], async (n) => {
    const c = await login(n.port, 'long')
    const sent = await flood(c.ws, 400, (i) => ({
      Operator: 'Chat',
      MsgId: `${i}-${'i'.repeat(512 * 1024)}`,
    }))
    await sleep(500)
    return `sent ${sent}, closed with ${c.ws.readyState === c.ws.OPEN ? 'nothing' : 'a close'}`
  })

  await measure('3,000 connections that never log in (after 12 s)', {}, [], async (n) => {
    const sockets: WebSocket[] = []
    for (let i = 0; i < 3000; i++) {
      const ws = await connect(n.port)
      ws.on('error', () => {})
      sockets.push(ws)
    }
    await sleep(12_000)
    const open = sockets.filter((ws) => ws.readyState === ws.OPEN).length
    for (const ws of sockets) ws.terminate()
    return `${open} of 3000 still open`
  })

  const redis = await startRedisServer()
  try {
    const probe = createClient({ url: redis.url })
    await probe.connect()
    const used = async () =>
      Number(/used_memory:(\d+)/.exec(String(await probe.sendCommand(['INFO', 'memory'])))![1])

    await measure(
      '400 logins abandoned while Redis reads their rooms, then 500 pushes of 20 KB',
      { engine: 'redis', redisUrl: redis.url, prefix: 'ab', slowRooms: 200 },
      ['gone'],
      async (n) => {
        for (let i = 0; i < 400; i++) {
          const ws = await connect(n.port)
          ws.on('error', () => {})
          ws.send(JSON.stringify({ Operator: 'userLogin', openId: 'gone' }))
          await sleep(1)
          ws.terminate()
        }
        await sleep(500)
        await n.push(['gone'], 500, 20_000)
        return 'pushed 500'
      },
    )

    if (!only || 'redis ids'.includes(only)) {
      const n = await node({
        engine: 'redis',
        redisUrl: redis.url,
        prefix: 'ids',
        rate: { frames: 1e6, interval: 1000 },
      })
      try {
        const before = await used()
        const c = await login(n.port, 'ids')
        const count = 100_000
        await flood(c.ws, count, (i) => ({ Operator: 'Chat', MsgId: `${'r'.repeat(22)}-${i.toString(36)}` }))
        const acked = () =>
          c.got.reduce((k, f) => k + (f.Operator === 'Ack' ? (f.MsgIds ? f.MsgIds.length : 1) : 0), 0)
        while (acked() < count && c.ws.readyState === c.ws.OPEN) await sleep(50)
        const grew = (await used()) - before
        rows.push({
          abuse: `${count} distinct ids (Redis engine)`,
          held: `Redis +${mib(grew)}`,
          note: `${(grew / count).toFixed(0)} B per id sent`,
        })
        console.log(rows[rows.length - 1])
      } finally {
        await n.close()
      }
    }
    await probe.close()
  } finally {
    await redis.stop()
  }

  console.log(JSON.stringify(rows, null, 2))
}

void main()

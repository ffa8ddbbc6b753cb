// The server under abuse, in its own process (bench/abuse/run.ts forks it with --expose-gc): it
// answers the driver's messages with its port, pushes made from inside, and what it holds
// (heap + external after a full collection, and its open connections).
const config = JSON.parse(process.argv[2] || '{}') as {
  source?: string
  engine?: 'memory' | 'redis'
  redisUrl?: string
  prefix?: string
  /** ms the engine's `rooms` waits: a login whose rooms are being read (Redis under load). */
  slowRooms?: number
  rate?: { frames: number; interval: number }
}

async function start() {
  const mod = await import(config.source || '../../src/server/index.ts')
  const base =
    config.engine === 'redis'
      ? mod.redisEngine({ url: config.redisUrl, prefix: config.prefix })
      : mod.memoryEngine()
  const engine = config.slowRooms
    ? Object.assign(Object.create(base), {
        rooms: async (user: string) => {
          await new Promise((resolve) => setTimeout(resolve, config.slowRooms))
          return base.rooms(user)
        },
      })
    : base
  return mod.createServer({
    authenticate: (login: any) => (typeof login.openId === 'string' ? login.openId : null),
    engine,
    rate: config.rate,
    handlers: {
      Chat: () => {},
      Stuck: () => new Promise(() => {}),
    },
    onError: () => {},
  })
}

let connections = 0
const held = () => {
  const gc = (globalThis as any).gc as () => void
  gc()
  gc()
  const m = process.memoryUsage()
  return { bytes: m.heapUsed + m.external, connections }
}

const serving = start()
process.on('message', async (message: any) => {
  const server = await serving
  if (message.type === 'held') {
    connections = message.users.reduce((n: number, u: string) => n + server.connections(u), 0)
    process.send!({ type: 'held', ...held() })
  } else if (message.type === 'push') {
    const pad = 'x'.repeat(message.size)
    for (let n = 0; n < message.count; n++) {
      for (const user of message.users) await server.push(user, 'Quote', { n, pad }).catch(() => {})
      if (n % 100 === 0) await new Promise((resolve) => setImmediate(resolve))
    }
    process.send!({ type: 'pushed' })
  } else if (message.type === 'close') {
    await server.close()
    process.exit(0)
  }
})
serving.then((server) => process.send!({ type: 'ready', port: server.port }))

// The side-by-side benchmark: mpbus and its peers in one process run, ratios
// against raw `ws` measured in the same run. Prints markdown tables, then the JSON.
//   npx tsx bench/peers/run.ts                   the whole run (100,000 messages; a few minutes)
//   npx tsx bench/peers/run.ts --messages 20000  a shorter throughput part
//   npx tsx bench/peers/run.ts --json FILE       also writes the JSON to FILE (spread.ts uses it)
// The peers live in bench/peers/node_modules: `npm ci --prefix bench/peers` (npm run bench does it).
import { writeFileSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import { mpbusColdStart, socketIoColdStart } from './cold-start'
import { FAULT_CLIENTS } from './fault-clients'
import { benchFaults } from './faults'
import { mpbusMass, socketIoMass } from './reconnect'
import { startRedis } from './redis'
import { benchReplay } from './replay'
import { startServers } from './server-link'
import { tables } from './table'
import { benchThroughput, ROWS } from './throughput'
import { benchWxCost } from './wx-cost'

const LABELS: Record<string, string> = {
  ...Object.fromEntries(Object.entries(ROWS).map(([k, v]) => [k, v.label])),
  ...Object.fromEntries(Object.entries(FAULT_CLIENTS).map(([k, v]) => [`fault.${k}`, v.label])),
  'replay.raw': 'raw `ws` sending the same frames',
  'replay.mpbusAck': 'mpbus, Node `ws` platform, ack',
  'replay.mpbusNoAck': 'mpbus, same, no ack',
  'mass.mpbus': 'mpbus/server, memory engine; 1,000 buses (Node `ws` platform, memory storage)',
  'mass.mpbusRedis': 'mpbus/server, Redis engine on the same redis-server; 1,000 buses as above',
  'mass.socketIo': 'socket.io 4.8 connection state recovery, @socket.io/redis-streams-adapter, redis-server',
}

export async function benchPeers(options: { messages?: number } = {}) {
  const phase = (name: string) => console.error(`peers: ${name} (${new Date().toISOString().slice(11, 19)})`)
  const started = Date.now()
  const link = await startServers()
  const redis = await startRedis()
  try {
    phase('throughput')
    const throughput = await benchThroughput(link, options.messages ?? 100_000)
    phase('replay')
    const replay = await benchReplay(link)
    phase('wx emulation cost')
    const wxCost = await benchWxCost(link)
    phase('fault script')
    const faults = await benchFaults(link)
    phase('mass reconnect')
    const mpbus = await mpbusMass()
    const socketIo = await socketIoMass(redis.url)
    // mpbus/server's Redis engine, (`redisEngine`).
    const server: any = await import('../../src/server/index')
    const mpbusRedis = server.redisEngine
      ? await mpbusMass(1000, 3, server.redisEngine({ url: redis.url, prefix: 'peers' }), redis.url)
      : undefined
    phase('cold start')
    const coldStart = {
      missed: 20,
      mpbus: await mpbusColdStart(),
      socketIo: await socketIoColdStart(redis.url),
    }
    return {
      date: new Date().toISOString(),
      node: process.version,
      cpus: (await import('node:os')).cpus().length,
      seconds: Math.round((Date.now() - started) / 1000),
      throughput,
      replay,
      wxCost,
      faults,
      massReconnect: { clients: 1000, missed: 20, mpbus, socketIo, ...(mpbusRedis ? { mpbusRedis } : {}) },
      coldStart,
      configs: Object.fromEntries(Object.entries(FAULT_CLIENTS).map(([k, v]) => [k, v.config])),
      labels: LABELS,
    }
  } finally {
    link.close()
    redis.stop()
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]!).href) {
  const arg = (name: string) => {
    const i = process.argv.indexOf(name)
    return i > 0 ? process.argv[i + 1] : undefined
  }
  benchPeers({ messages: arg('--messages') ? Number(arg('--messages')) : undefined }).then(
    (result) => {
      console.log(tables([result]))
      console.log(`\n${JSON.stringify(result, null, 2)}`)
      const file = arg('--json')
      if (file) writeFileSync(file, JSON.stringify(result))
      process.exit(0)
    },
    (error) => {
      console.error(error)
      process.exit(1)
    },
  )
}

// Part 5: the fault script, each client through its own fault proxy (src/testing/fault-proxy.ts),
// all four at once, sending one message every 10 ms:
//   1–2 s  freeze, at a random moment (and pass again: the frozen connection stays frozen, a dead NAT mapping)
//   4.5 s  reset (RST on every connection)
//   5.5 s  refuse (an outage: connects fail) … 8.5 s pass
//   9.5 s  the last message; then up to 6 s for the rest to arrive
// Counted at the server from first arrivals: lost, reordered (a first arrival numbered below one
// already arrived), repeats; and the time from the freeze to the client's own notice of it (none:
// not noticed before the reset, 2.5–3.5 s later), and from the outage's end to the first message at
// the server.
import { createFaultProxy } from '../../src/testing/index'
import { sleep } from './common'
import { FAULT_CLIENTS } from './fault-clients'
import type { ServerLink } from './server-link'

const INTERVAL = 10
const FREEZE = 1000
const RESET = 4500
const REFUSE = 5500
const PASS = 8500
const STOP = 9500
const SETTLE = 6000

const SERVER: Record<string, 'raw' | 'mpbus' | 'mqtt' | 'sioFast'> = {
  mpbus: 'mpbus',
  mqtt: 'mqtt',
  socketIo: 'sioFast',
  reconnectingWs: 'raw',
}

async function script(link: ServerLink, name: string, tag: string) {
  const proxy = await createFaultProxy({ port: link.ports[SERVER[name]!] })
  let frozenAt = 0
  let noticeMs = Number.NaN
  let resetAt = 0
  const client = await FAULT_CLIENTS[name]!.make(proxy.port, tag, () => {
    // Only a notice before the reset counts: after it, any client notices (the reset tells it).
    if (frozenAt && !resetAt && Number.isNaN(noticeMs)) noticeMs = Date.now() - frozenAt
  })
  const start = Date.now()
  let sent = 0
  const timer = setInterval(() => client.send(sent++), INTERVAL)
  const at = (ms: number) => sleep(Math.max(0, start + ms - Date.now()))
  // At a random phase of the client's heartbeat cycle, so that runs show its range, not one point.
  await at(FREEZE + Math.random() * 1000)
  proxy.freeze()
  frozenAt = Date.now()
  proxy.pass()
  await at(RESET)
  resetAt = Date.now()
  proxy.reset()
  await at(REFUSE)
  proxy.refuse()
  await at(PASS)
  proxy.pass()
  const passedAt = Date.now()
  await at(STOP)
  clearInterval(timer)
  // Until everything arrived, the client holds nothing more, or the time is up.
  const deadline = Date.now() + SETTLE
  let arrived = await link.arrivals(tag)
  while (Date.now() < deadline) {
    if (new Set(arrived.n).size >= sent && client.pending() === 0) break
    await sleep(100)
    arrived = await link.arrivals(tag)
  }
  client.close()
  await proxy.close()
  await link.clear(tag)

  const seen = new Set<number>()
  let reordered = 0
  let highest = -1
  for (const n of arrived.n) {
    if (seen.has(n)) continue
    seen.add(n)
    if (n < highest) reordered++
    highest = Math.max(highest, n)
  }
  if (process.env.FAULT_DEBUG) {
    const missing = Array.from({ length: sent }, (_, n) => n).filter((n) => !seen.has(n))
    console.error(name, 'missing', missing.join(','), 'at ms', missing.map((n) => n * INTERVAL).join(','))
  }
  const firstAfter = arrived.at.find((t) => t >= passedAt)
  return {
    sent,
    lost: sent - seen.size,
    reordered,
    repeats: arrived.n.length - seen.size,
    noticeMs,
    firstAfterOutageMs: firstAfter === undefined ? Number.NaN : firstAfter - passedAt,
  }
}

export async function benchFaults(link: ServerLink, rounds = 1) {
  const results: Record<string, Awaited<ReturnType<typeof script>>[]> = {}
  let k = 0
  for (let r = 0; r < rounds; r++) {
    const names = Object.keys(FAULT_CLIENTS)
    const runs = await Promise.all(names.map((name) => script(link, name, `f${k++}-${name}`)))
    names.forEach((name, i) => {
      results[name] = [...(results[name] || []), runs[i]!]
    })
  }
  return results
}

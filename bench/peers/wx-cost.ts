// Part 4: the wx emulation's own cost per frame, apart from mpbus: raw frames sent through the
// emulated SocketTask (`createWxRuntime` from src/testing: callbacks in a later macrotask, as
// WeChat's) against the same frames sent with `ws` directly, both to the minimal server. A change in
// mpbus's wx row that this ratio does not share is mpbus's own.
import { createWxRuntime } from '../../src/testing/index'
import { frame, median, round, WebSocket } from './common'
import type { ServerLink } from './server-link'

async function once(link: ServerLink, count: number, tag: string, wx: boolean) {
  const url = `ws://127.0.0.1:${link.ports.raw}`
  let send: (data: string) => void
  let close: () => void
  if (wx) {
    const runtime = createWxRuntime()
    const task = runtime.connectSocket({ url })
    await new Promise((resolve) => task.onOpen(resolve))
    send = (data) => task.send({ data })
    close = () => runtime.control.kill()
  } else {
    const ws = new WebSocket(url)
    await new Promise((resolve) => ws.once('open', resolve))
    send = (data) => ws.send(data)
    close = () => ws.close()
  }
  const reached = link.expect(tag, count)
  const cpu = process.cpuUsage()
  const start = Date.now()
  for (let n = 0; n < count; n++) send(frame(tag, n))
  const ms = Math.max(1, (await reached) - start)
  const used = process.cpuUsage(cpu)
  close()
  await link.clear(tag)
  return { ms, cpuUs: used.user + used.system }
}

export async function benchWxCost(link: ServerLink, count = 20_000, rounds = 5) {
  const runs = {
    raw: { ms: [] as number[], cpu: [] as number[] },
    wx: { ms: [] as number[], cpu: [] as number[] },
  }
  let k = 0
  for (let r = 0; r <= rounds; r++)
    for (const name of ['raw', 'wx'] as const) {
      const { ms, cpuUs } = await once(link, count, `x${k++}`, name === 'wx')
      if (r === 0) continue // warm-up
      runs[name].ms.push(ms)
      runs[name].cpu.push(cpuUs)
    }
  return {
    frames: count,
    rounds,
    rateOfRaw: round(median(runs.raw.ms) / median(runs.wx.ms)),
    cpuPerFrameOfRaw: round(median(runs.wx.cpu) / median(runs.raw.cpu)),
    cpuUsPerFrame: { raw: round(median(runs.raw.cpu) / count), wx: round(median(runs.wx.cpu) / count) },
  }
}

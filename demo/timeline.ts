/**
 * The scripted fault timeline: plays the stages of demo/faults.ts one after another, with quiet
 * time in between so each fault's effect can be seen (and measured) on its own. Times are
 * fractions of the run, so `--duration 6` plays the same script faster.
 */
import type { Client } from './client'
import { type FaultKind, STAGES, type World } from './faults'

export { type FaultKind, faultKinds, type World } from './faults'

export interface Fault {
  kind: FaultKind
  label: string
  /** ms since the start of the run. */
  start: number
  /**
   * When the cause went away (pass, links dropped, online, show, cold start, server listening);
   * a reset, and a node killed while another is up, end as they start.
   */
  end?: number
  /** The clients it hit. */
  clients: number[]
  /** Who it hit, in words, when its client list does not say it (a node's clients). */
  who?: string
  /** For a kill: messages the killed apps' outboxes held, which the cold start must send. */
  carried?: number
}

/** mulberry32: a tiny seeded PRNG, so `--seed` replays the same choices. Returns floats in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` distinct clients chosen with `random` (a partial Fisher-Yates shuffle). */
function pick(clients: Client[], count: number, random: () => number): Client[] {
  const pool = clients.slice()
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (pool.length - i))
    ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
  }
  return pool.slice(0, count).sort((a, b) => a.index - b.index)
}

/**
 * Plays the script over `duration` ms. Stages run one at a time, so a fault's end is always
 * before the next one starts. Resolves at the end of the run; `stop()` cuts it short.
 */
export function runTimeline(world: World, duration: number) {
  const faults: Fault[] = []
  let active: Fault | undefined
  let stopped = false
  let wake: (() => void) | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  /** Stage times count from the timeline's start. */
  const origin = world.clock()
  const until = (at: number) =>
    new Promise<void>((resolve) => {
      if (stopped) return resolve()
      wake = resolve
      timer = setTimeout(resolve, Math.max(0, origin + at - world.clock()))
    })

  async function play(): Promise<void> {
    for (const stage of STAGES) {
      if (stage.when && !stage.when({ servers: world.cluster.size, engine: world.cluster.engine })) continue
      await until(stage.at * duration)
      if (stopped) return
      const hit =
        stage.share === undefined
          ? world.clients
          : pick(world.clients, Math.max(1, Math.round(world.clients.length * stage.share)), world.random)
      const fault: Fault = {
        kind: stage.kind,
        label: stage.label,
        start: world.clock(),
        clients: hit.map((c) => c.index),
        who: stage.who,
      }
      faults.push(fault)
      active = fault
      const began = await stage.begin(world, hit, stage.length * duration, fault)
      if (typeof began === 'number') fault.carried = began
      if (stage.instant) fault.end = fault.start
      if (stage.end) {
        // Its full length even when it began late (a busy machine, a slow restart before it).
        await until(fault.start - origin + stage.length * duration)
        await stage.end(world, hit, began)
      }
      if (!stage.instant) fault.end = world.clock()
      active = undefined
      await stage.settle?.(world, hit)
    }
    await until(duration)
  }

  return {
    faults,
    /** The fault in progress, if any. */
    current: () => active,
    done: play(),
    stop(): void {
      stopped = true
      clearTimeout(timer)
      wake?.()
    },
  }
}

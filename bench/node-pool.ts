/**
 * The server nodes of bench/nodes.ts: bench/node-process.ts bundled once, forked as many times as
 * a measure needs, asked over IPC, and ended with SIGTERM.
 */
import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import type { Answer, NodeConfig, Request } from './node-process'

const here = path.dirname(fileURLToPath(import.meta.url))

/** A request before the id it is sent with (Omit on each member of the union). */
type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never

export interface Node {
  port: number
  child: ChildProcess
  ask(request: Unnumbered<Request>): Promise<any>
}

/** bench/node-process.ts in one file (packages left to node_modules): a node starts in what a Node process costs. */
export async function bundleNode(): Promise<string> {
  const outfile = path.join(here, '..', '.tmp', 'bench', `node-process-${process.pid}.mjs`)
  await build({
    entryPoints: [path.join(here, 'node-process.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  })
  return outfile
}

let nextRequest = 0

function startNode(script: string, config: NodeConfig, label: string): Promise<Node> {
  const child = fork(script, [], {
    cwd: path.join(here, '..'),
    execArgv: [],
    env: { ...process.env, MPBUS_BENCH_NODE: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let exited: Error | undefined
  return new Promise((resolve, reject) => {
    child.on('message', (answer: Answer) => {
      if (answer.t === 'ready') {
        resolve({
          port: answer.port,
          child,
          ask(request) {
            if (exited) return Promise.reject(exited)
            const id = nextRequest++
            return new Promise((resolve, reject) => {
              pending.set(id, { resolve, reject })
              child.send({ ...request, id })
            })
          },
        })
        return
      }
      const waiting = pending.get(answer.id)
      pending.delete(answer.id)
      if (answer.t === 'answer') waiting?.resolve(answer.value)
      else waiting?.reject(new Error(`${label}: ${answer.error}`))
    })
    child.once('exit', (code, signal) => {
      exited = new Error(`${label} exited (${signal ?? code})`)
      reject(exited)
      for (const waiting of pending.values()) waiting.reject(exited)
      pending.clear()
    })
  })
}

/** `count` nodes of one config; if one fails to start, the others are ended and the first failure thrown. */
export async function startNodes(script: string, count: number, config: NodeConfig): Promise<Node[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, (_, i) => startNode(script, config, `node ${i}`)),
  )
  const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await stopNodes(nodes)
    const hint =
      config.engine === 'redis' && config.cluster
        ? ` (--engine redis-cluster passes redisEngine({ cluster: { rootNodes }, prefix }): this engine may not take \`cluster\` yet)`
        : ''
    throw new Error(`${failed.reason.message}${hint}`)
  }
  return nodes
}

export async function stopNodes(nodes: Node[]): Promise<void> {
  await Promise.all(
    nodes.map((node) => {
      if (node.child.exitCode !== null || node.child.signalCode !== null) return undefined
      const exited = new Promise((resolve) => node.child.once('exit', resolve))
      node.child.kill('SIGTERM')
      return exited
    }),
  )
}

/** µs of CPU (user + system) each node has used so far. */
export async function nodesCpu(nodes: Node[]): Promise<number[]> {
  const usage: Array<{ user: number; system: number }> = await Promise.all(
    nodes.map((node) => node.ask({ t: 'cpu' })),
  )
  return usage.map((u) => u.user + u.system)
}

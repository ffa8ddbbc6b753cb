/**
 * The server nodes of bench/nodes.ts: bench/node-process.ts bundled once, forked as many times as
 * a measure needs, asked over IPC, and ended with SIGTERM.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { type Child, startChild } from './child'
import type { NodeConfig, Request } from './node-process'

const here = path.dirname(fileURLToPath(import.meta.url))

export type Node = Child<Request>

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

function startNode(script: string, config: NodeConfig, label: string): Promise<Node> {
  return startChild<Request>(script, 'MPBUS_BENCH_NODE', config, label)
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

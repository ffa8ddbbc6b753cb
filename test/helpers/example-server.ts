// An example's server file (examples/*/server*.js) run as a user runs it: its own Node process
// (tsx, so `mpbus/...` resolves to src/ through tsconfig's paths) on a free loopback port (PORT).
import { spawn } from 'node:child_process'
import path from 'node:path'
import { freePort } from '../../src/testing/redis-server'

const root = path.join(__dirname, '..', '..')

export interface ExampleProcess {
  url: string
  port: number
  /** Every line it printed so far. */
  lines: string[]
  stop(): Promise<void>
}

/** Starts `file` (relative to the repository) and resolves once it printed a line matching `ready`. */
export async function runExample(file: string, ready = /listening/, port?: number): Promise<ExampleProcess> {
  port ??= await freePort()
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, file)], {
    cwd: root,
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let errors = ''
  child.stderr.on('data', (chunk) => (errors += chunk))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      const fresh = String(chunk).split('\n').filter(Boolean)
      lines.push(...fresh)
      if (fresh.some((line) => ready.test(line))) resolve()
    })
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before ${ready}: ${errors}`)))
  })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    url: `ws://127.0.0.1:${port}/`,
    port,
    lines,
    stop: () => {
      child.kill()
      return exited
    },
  }
}

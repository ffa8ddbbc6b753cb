/**
 * A process a bench forks and asks over IPC: its config in an environment variable, a request
 * answered by the id it is sent with (`{ t: 'answer', id, value }` or `{ t: 'refused', id, error }`),
 * and `{ t: 'ready', port }` once it listens. bench/node-pool.ts and bench/capacity.ts fork theirs with it.
 */
import { type ChildProcess, fork } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const here = path.dirname(fileURLToPath(import.meta.url))

/** A request before the id it is sent with (Omit on each member of the union). */
export type Unnumbered<T> = T extends unknown ? Omit<T, 'id'> : never

/** What every bench child answers. */
export type ChildAnswer =
  | { t: 'ready'; port: number }
  | { t: 'answer'; id: number; value: unknown }
  | { t: 'refused'; id: number; error: string }

export interface Child<Request> {
  port: number
  child: ChildProcess
  ask(request: Unnumbered<Request>): Promise<any>
}

let nextRequest = 0

/** Forks `script` with its config in the environment variable `variable`; resolves once it is ready. */
export function startChild<Request>(
  script: string,
  variable: string,
  config: object,
  label: string,
  execArgv: string[] = [],
): Promise<Child<Request>> {
  const child = fork(script, [], {
    cwd: path.join(here, '..'),
    execArgv,
    env: { ...process.env, [variable]: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  const pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  let exited: Error | undefined
  return new Promise((resolve, reject) => {
    // Both kinds of child answer in capacity-node.ts's shape.
    child.on('message', (answer: ChildAnswer) => {
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

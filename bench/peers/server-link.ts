// The bench process's side of servers.ts: forks it (under tsx, as this process runs) and asks it,
// over IPC, when a channel's messages have all arrived and what arrived when.
import { type ChildProcess, fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export type Ports = { raw: number; mpbus: number; mqtt: number; sio: number; sioFast: number }

export interface ServerLink {
  ports: Ports
  /** Resolves with the server's `Date.now()` when `count` messages of channel `tag` have arrived. */
  expect(tag: string, count: number): Promise<number>
  arrivals(tag: string): Promise<{ n: number[]; at: number[] }>
  clear(tag: string): Promise<void>
  close(): void
}

export async function startServers(): Promise<ServerLink> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./servers.ts', import.meta.url)), [], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  let next = 0
  const calls = new Map<number, (m: any) => void>()
  const ports = await new Promise<Ports>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`servers exited with ${code}`)))
    child.on('message', (m: any) => {
      if (m.ready) resolve(m.ready)
      const call = calls.get(m.id)
      if (call) {
        calls.delete(m.id)
        call(m)
      }
    })
  })
  const ask = (message: object) =>
    new Promise<any>((resolve) => {
      const id = ++next
      calls.set(id, resolve)
      child.send({ id, ...message })
    })
  return {
    ports,
    expect: (tag, count) => ask({ cmd: 'expect', tag, count }).then((m) => m.at),
    arrivals: (tag) => ask({ cmd: 'arrivals', tag }),
    clear: (tag) => ask({ cmd: 'clear', tag }).then(() => {}),
    close: () => {
      child.removeAllListeners('exit')
      child.kill()
    },
  }
}

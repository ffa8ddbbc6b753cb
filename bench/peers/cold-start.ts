// A cold start after the app was killed: one client in the room gets a publication, the app is
// killed (its socket reset, its memory gone), 20 more are published, a new client process starts.
//   mpbus: on the wx emulation; the new runtime gets the killed one's storage, as WeChat keeps it,
//          so the new bus logs in with the stored stream positions and the server replays the gap.
//   socket.io: the new process has no session id and offset (they lived in the killed one's
//          memory), so connection state recovery has nothing to recover from.
import { io as ioClient } from 'socket.io-client'
import { createBus } from '../../src/index'
import { createServer } from '../../src/server/index'
import { createFaultProxy, createWxRuntime } from '../../src/testing/index'
import { sleep, waitFor } from './common'
import { startSocketIoRecovery } from './socketio-recovery'

const MISSED = 20

export async function mpbusColdStart(): Promise<number> {
  const server = await createServer({ host: '127.0.0.1', authenticate: (login) => String(login.user) })
  await server.join('cold', 'auction')
  const start = (wx: ReturnType<typeof createWxRuntime>, got: number[]) => {
    const bus = createBus({
      url: `ws://127.0.0.1:${server.port}`,
      platform: wx,
      login: () => ({ op: 'userLogin', payload: { user: 'cold' } }),
      ready: { ok: 'LoginOK' },
      ack: true,
    })
    bus.on('Bid', (frame: any) => got.push(frame.n))
    return bus
  }
  const first = createWxRuntime()
  const before: number[] = []
  start(first, before)
  await waitFor(() => server.connections('cold') === 1)
  await server.publish('auction', 'Bid', { n: 0 })
  await waitFor(() => before.length === 1)
  first.control.kill()
  await waitFor(() => server.connections('cold') === 0)
  for (let n = 1; n <= MISSED; n++) await server.publish('auction', 'Bid', { n })
  await sleep(500)
  const after: number[] = []
  const bus = start(createWxRuntime({ storage: first.control.storage }), after)
  await waitFor(() => after.length >= MISSED, 5000)
  await sleep(100)
  bus.close()
  await server.close()
  return after.filter((n) => n >= 1).length
}

export async function socketIoColdStart(redisUrl: string): Promise<number> {
  const server = await startSocketIoRecovery(redisUrl)
  const proxy = await createFaultProxy({ port: server.port })
  const connect = (got: number[]) => {
    const socket = ioClient(`http://127.0.0.1:${proxy.port}`, { transports: ['websocket'], forceNew: true })
    socket.on('Bid', (frame: any) => got.push(frame.n))
    return socket
  }
  const before: number[] = []
  const killed = connect(before)
  await waitFor(() => killed.connected)
  server.io.to('auction').emit('Bid', { n: 0 })
  await waitFor(() => before.length === 1)
  // The app is killed: its connection reset (the server keeps the session for recovery), its state gone.
  killed.io.reconnection(false)
  proxy.reset()
  await waitFor(() => server.io.of('/').sockets.size === 0)
  killed.close()
  for (let n = 1; n <= MISSED; n++) server.io.to('auction').emit('Bid', { n })
  // The adapter broadcasts once its XADD is answered: let the 20 be history before the new process
  // starts, or a loaded machine lets it join in time to get them live.
  await sleep(500)
  const after: number[] = []
  const socket = connect(after)
  await waitFor(() => socket.connected)
  await sleep(1000)
  socket.close()
  await proxy.close()
  await server.close()
  return after.length
}

// The client half: a bus in Node. In a mini program it is the same with `platform: wx` (Quick start).
import { createBus, webSocketPlatform } from 'mpbus'
import { createFileStorage } from 'mpbus/node'
import WebSocket from 'ws'

const bus = createBus({
  url: `ws://127.0.0.1:${Number(process.env.PORT) || 8080}/`,
  platform: webSocketPlatform(WebSocket),
  storage: createFileStorage('.mpbus'), // the outbox and stream positions outlive the process
  login: () => ({ op: 'userLogin', payload: { userOpenId: 'alice' } }),
  ready: { ok: 'LoginOK', fail: ['LoginError'] },
  ack: true,
})
bus.onState((state, from) => console.log(`client: ${from} → ${state}`))
bus.on('NewMessage', (frame) => console.log(`client: pushed NewMessage "${frame.text}"`))
bus.on('Tick', (frame) => console.log(`client: pushed Tick ${frame.n}`))
bus.events.on('resync', ({ stream }) => console.log(`client: resync ${stream}: reload it from your database`))

await bus.send('SendMessage', { text: 'hello' }) // resolves when the server acknowledged it
console.log('client: "hello" acknowledged')

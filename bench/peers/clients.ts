// The clients under test, each connected before the clock starts: `send(tag, count)` hands the
// `count` messages to the client as its producer would (returning when the last was handed over);
// the server's arrivals, not this, end the measurement.

import mqtt from 'mqtt'
import ReconnectingWebSocket from 'reconnecting-websocket'
import { io } from 'socket.io-client'
import { createBus, createMemoryStorage, webSocketPlatform } from '../../src/index'
import { createWxRuntime } from '../../src/testing/index'
import { frame, payload, WebSocket } from './common'
import type { Ports } from './server-link'

export interface Client {
  send(tag: string, count: number): Promise<void>
  close(): void
}

/** Raw `ws`: sends as fast as the socket takes them (frames with an id, as mpbus's); the server counts. */
export async function rawWs(ports: Ports): Promise<Client> {
  const ws = new WebSocket(`ws://127.0.0.1:${ports.raw}`)
  await new Promise((resolve) => ws.once('open', resolve))
  return {
    async send(tag, count) {
      for (let n = 0; n < count; n++) ws.send(frame(tag, n))
    },
    close: () => ws.close(),
  }
}

export interface BusClientOptions {
  ack: boolean
  /** Wait while `bus.queued` is above this before each send; `Infinity`: never wait. */
  bound: number
  wx?: boolean
  /** To mpbus/server instead of the minimal server. */
  reference?: boolean
}

/** mpbus on the Node `ws` platform (memory storage) or on the wx emulation. */
export async function mpbus(ports: Ports, options: BusClientOptions): Promise<Client> {
  const wx = options.wx ? createWxRuntime() : undefined
  const bus = createBus({
    url: options.reference
      ? `ws://127.0.0.1:${ports.mpbus}`
      : `ws://127.0.0.1:${ports.raw}/${options.ack ? 'ack' : ''}`,
    platform: wx || webSocketPlatform(WebSocket, createMemoryStorage()),
    login: () => ({ op: 'userLogin', payload: { user: 'bench' } }),
    ready: { ok: 'LoginOK' },
    ack: options.ack,
    outbox: { maxMessages: 200_000, maxBytes: 128 << 20 },
  })
  await new Promise((resolve) => bus.events.on('ready', resolve))
  return {
    async send(tag, count) {
      const delivered: Promise<void>[] = []
      for (let n = 0; n < count; n++) {
        // The producer bounded by the outbox: it waits for the message `bound` back to be delivered.
        if (bus.queued > options.bound) await delivered[n - options.bound - 1]
        delivered.push(bus.send('Chat', payload(tag, n)).catch(() => {}))
      }
    },
    close() {
      bus.close()
      wx?.control.kill()
    },
  }
}

/** MQTT.js 5, QoS 1, to aedes over WebSocket. */
export async function mqttJs(ports: Ports): Promise<Client> {
  const client = mqtt.connect(`ws://127.0.0.1:${ports.mqtt}`, { reconnectPeriod: 0 })
  await new Promise((resolve) => client.once('connect', resolve))
  return {
    async send(tag, count) {
      for (let n = 0; n < count; n++)
        client.publish(`chat/${tag}`, JSON.stringify(payload(tag, n)), { qos: 1 }, () => {})
    },
    close: () => client.end(true),
  }
}

/** socket.io-client 4.8, websocket transport only, an ack callback per emit. */
export async function socketIo(ports: Ports): Promise<Client> {
  const socket = io(`http://127.0.0.1:${ports.sio}`, { transports: ['websocket'], reconnection: false })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return {
    async send(tag, count) {
      for (let n = 0; n < count; n++) socket.emit('chat', payload(tag, n), () => {})
    },
    close: () => socket.close(),
  }
}

/** reconnecting-websocket 4.4 over the root's `ws`, to the raw server. */
export async function reconnectingWs(ports: Ports): Promise<Client> {
  const rws = new ReconnectingWebSocket(`ws://127.0.0.1:${ports.raw}`, [], { WebSocket })
  await new Promise<void>((resolve) => rws.addEventListener('open', () => resolve()))
  return {
    async send(tag, count) {
      for (let n = 0; n < count; n++) rws.send(frame(tag, n))
    },
    close: () => rws.close(),
  }
}

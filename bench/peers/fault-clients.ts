// The four clients of the fault script, each with its heartbeat as close to 1 s + 1 s as it
// allows and reconnect delays of 250 ms growing to 1 s, pointed at a fault proxy. `onNotice` is
// called whenever the client itself says its link went (its own close/disconnect event).

import mqtt from 'mqtt'
import ReconnectingWebSocket from 'reconnecting-websocket'
import { io } from 'socket.io-client'
import { createBus, createMemoryStorage, webSocketPlatform } from '../../src/index'
import { frame, payload, WebSocket } from './common'

export interface FaultClient {
  send(n: number): void
  /** Messages the client still holds (sent but not acknowledged, or queued). */
  pending(): number
  close(): void
}

type Make = (port: number, tag: string, onNotice: () => void) => Promise<FaultClient>

export const FAULT_CLIENTS: Record<string, { label: string; config: string; make: Make }> = {
  mpbus: {
    label: 'mpbus (ack, Node `ws` platform)',
    config: 'heartbeat 1 s interval + 1 s timeout; reconnect 250 ms → 1 s; ack on, memory storage',
    async make(port, tag, onNotice) {
      const bus = createBus({
        url: `ws://127.0.0.1:${port}`,
        platform: webSocketPlatform(WebSocket, createMemoryStorage()),
        login: () => ({ op: 'userLogin', payload: { user: tag } }),
        ready: { ok: 'LoginOK' },
        ack: true,
        heartbeat: { interval: 1000, timeout: 1000 },
        reconnect: { minDelay: 250, maxDelay: 1000 },
      })
      bus.onState((state, from) => {
        if (from === 'ready' && state !== 'ready') onNotice()
      })
      await new Promise((resolve) => bus.events.on('ready', resolve))
      return {
        send: (n) => void bus.send('Chat', payload(tag, n)).catch(() => {}),
        pending: () => bus.queued,
        close: () => bus.close(),
      }
    },
  },
  mqtt: {
    label: 'MQTT.js 5 QoS 1 (aedes)',
    config:
      'keepalive 1 s (a PINGREQ after 1 s, the link dead 1.5 s after the last reschedule), reschedulePings off (on, the steady publishing postpones every ping and a frozen link is never noticed), reconnectPeriod 500 ms (fixed), clean: false with a fixed clientId, connectTimeout 2 s',
    async make(port, tag, onNotice) {
      const client = mqtt.connect(`ws://127.0.0.1:${port}`, {
        clientId: tag,
        clean: false,
        keepalive: 1,
        reschedulePings: false,
        reconnectPeriod: 500,
        connectTimeout: 2000,
      })
      client.on('error', () => {})
      await new Promise((resolve) => client.once('connect', resolve))
      client.on('close', onNotice)
      return {
        send: (n) => void client.publish(`chat/${tag}`, JSON.stringify(payload(tag, n)), { qos: 1 }),
        pending: () => (client as any).queue.length + Object.keys((client as any).outgoing).length,
        close: () => client.end(true),
      }
    },
  },
  socketIo: {
    label: 'socket.io 4.8 with ack callbacks',
    config:
      'server pingInterval 1 s + pingTimeout 1 s; reconnectionDelay 250 ms → 1 s; websocket transport; emit with an ack callback (no `retries`: with it the client sends one message per round trip)',
    async make(port, tag, onNotice) {
      const socket = io(`http://127.0.0.1:${port}`, {
        transports: ['websocket'],
        reconnectionDelay: 250,
        reconnectionDelayMax: 1000,
        timeout: 2000,
      })
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
      socket.on('disconnect', onNotice)
      let unacked = 0
      return {
        send(n) {
          unacked++
          socket.emit('chat', payload(tag, n), () => unacked--)
        },
        pending: () => (socket.connected ? socket.sendBuffer.length : unacked),
        close: () => socket.close(),
      }
    },
  },
  reconnectingWs: {
    label: 'reconnecting-websocket 4.4',
    config: 'no heartbeat (it has none); reconnect 250 ms → 1 s; connectionTimeout 2 s',
    async make(port, tag, onNotice) {
      const rws = new ReconnectingWebSocket(`ws://127.0.0.1:${port}`, [], {
        WebSocket,
        minReconnectionDelay: 250,
        maxReconnectionDelay: 1000,
        connectionTimeout: 2000,
      })
      await new Promise<void>((resolve) => rws.addEventListener('open', () => resolve()))
      rws.addEventListener('close', onNotice)
      return {
        send: (n) => rws.send(frame(tag, n)),
        pending: () => rws.bufferedAmount,
        close: () => rws.close(),
      }
    },
  },
}

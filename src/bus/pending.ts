/**
 * Work the user waits on: the promise of every durable `send`, the `request`s waiting for their
 * reply (each with its timeout timer), and the `once` waiters. All of it is settled by `close()`,
 * and anything asked for after that is rejected at once, so no promise of a closed bus hangs.
 */
import { MpbusError } from '../errors'
import type { Frame } from './dispatcher'

interface Settle {
  resolve(value?: any): void
  reject(error: MpbusError): void
}

interface Request extends Settle {
  reply: string
  /** Its frame has been handed to the socket: a reply with no id may answer it. */
  sent: boolean
  timer: ReturnType<typeof setTimeout>
}

export interface Pending {
  /** Resolves when the message `id` is delivered, rejects when it is dropped. */
  send(id: string): Promise<void>
  /** Resolves with the reply to the request `id`; `expire` runs (and it rejects `TIMEOUT`) after `timeout` ms. */
  request(id: string, reply: string, timeout: number, expire: () => void): Promise<Frame>
  /** Resolves with the next frame that `subscribe` delivers. */
  once(subscribe: (fn: (frame: Frame) => void) => () => void): Promise<Frame>
  /** The message `id` left the outbox delivered. */
  delivered(id: string): void
  /** The message `id` will never be delivered: its send and its request fail with `error`. */
  failed(id: string, error: MpbusError): void
  /** The request `id` went to the socket. */
  sent(id: string): void
  /** Settles the first request that `frame` (of operator `op`, carrying `id`) answers. */
  answer(op: string, frame: Frame, id: unknown): void
  /** Rejects everything with `CLOSED`, now and from now on. */
  close(): void
}

export function createPending(): Pending {
  const senders = new Map<string, Settle>()
  const requests = new Map<string, Request>()
  const waiters = new Set<(error: MpbusError) => void>()
  let closed: MpbusError | undefined

  function take<T>(map: Map<string, T>, id: string): T | undefined {
    const entry = map.get(id)
    map.delete(id)
    return entry
  }

  function settleRequest(id: string, error?: MpbusError, frame?: Frame): void {
    const request = take(requests, id)
    if (!request) return
    clearTimeout(request.timer)
    error ? request.reject(error) : request.resolve(frame)
  }

  return {
    send: (id) =>
      new Promise<void>((resolve, reject) => {
        if (closed) reject(closed)
        else senders.set(id, { resolve, reject })
      }),
    request: (id, reply, timeout, expire) =>
      new Promise<Frame>((resolve, reject) => {
        if (closed) return reject(closed)
        const timer = setTimeout(() => {
          expire()
          settleRequest(id, new MpbusError('TIMEOUT', `no ${reply}`))
        }, timeout)
        requests.set(id, { reply, sent: false, timer, resolve, reject })
      }),
    once: (subscribe) =>
      new Promise<Frame>((resolve, reject) => {
        if (closed) return reject(closed)
        const done = () => {
          off()
          waiters.delete(fail)
        }
        const fail = (error: MpbusError) => {
          done()
          reject(error)
        }
        const off = subscribe((frame) => {
          done()
          resolve(frame)
        })
        waiters.add(fail)
      }),
    delivered(id) {
      const sender = take(senders, id)
      if (sender) sender.resolve()
    },
    failed(id, error) {
      const sender = take(senders, id)
      if (sender) sender.reject(error)
      // A request dropped from the outbox will get no reply: it fails now, not at its timeout.
      settleRequest(id, error)
    },
    sent(id) {
      const request = requests.get(id)
      if (request) request.sent = true
    },
    answer(op, frame, id) {
      for (const [key, request] of requests) {
        if (request.reply === op && (id === key || (id === undefined && request.sent))) {
          settleRequest(key, undefined, frame)
          return
        }
      }
    },
    close() {
      if (closed) return
      closed = new MpbusError('CLOSED', 'closed')
      for (const id of Array.from(requests.keys())) settleRequest(id, closed)
      for (const [id, sender] of Array.from(senders)) {
        senders.delete(id)
        sender.reject(closed)
      }
      for (const fail of Array.from(waiters)) fail(closed)
    },
  }
}

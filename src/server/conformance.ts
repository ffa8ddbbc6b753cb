/**
 * Checks a server, in any language, against docs/protocol.md from the outside: each check on a
 * connection of its own, with a login frame the caller provides. What it cannot see from outside
 * (that a repeat's handler did not run) it does not claim.
 */
import { randomBytes } from 'node:crypto'
import WebSocket from 'ws'
import { ACK, BATCH, HEART, HEART_OK, ID, LOGIN, LOGIN_OK, OP, STREAMS } from '../protocol'

export interface ConformanceOptions {
  /** The login frame, exactly as the app's `login()` sends it. @default { Operator: 'userLogin', userOpenId: 'mpbus-conformance' } */
  login?: Record<string, unknown>
  /** The operator of the probe message, one the server may ack and otherwise ignore. @default 'ConformanceProbe' */
  probe?: string
  /** ms to wait for each answer. @default 2000 */
  timeout?: number
}

export interface ConformanceResult {
  check: 'login' | 'login first' | 'heartbeat' | 'ack' | 'duplicate window' | 'resume'
  ok: boolean
  detail: string
}

/** One connection: what it received, parsed, and a way to wait for a frame or the close. */
function connect(url: string, timeout: number) {
  const ws = new WebSocket(url)
  const got: any[] = []
  let closed: number | undefined
  let wake = () => {}
  ws.on('message', (data) => {
    try {
      got.push(JSON.parse(data.toString()))
    } catch {
      got.push(undefined)
    }
    wake()
  })
  ws.on('close', (code) => {
    closed = code
    wake()
  })
  ws.on('error', () => {})
  /** Resolves with the first received frame that `match` accepts, or undefined after `timeout` or the close. */
  const next = (match: (frame: any) => boolean) =>
    new Promise<any>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeout)
      const look = () => {
        const found = got.find((f) => f && match(f))
        if (found || closed !== undefined) {
          clearTimeout(timer)
          resolve(found)
        }
      }
      wake = look
      look()
    })
  const opened = new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true))
    ws.once('error', () => resolve(false))
  })
  return {
    opened,
    next,
    send: (frame: object) => ws.send(JSON.stringify(frame)),
    closed: () => closed,
    close: () => ws.terminate(),
  }
}

/** An ack of `id`, in the one-id form or the batched one (docs/protocol.md). */
function acks(f: Record<string, any>, id: string): boolean {
  const batch = f[ID + BATCH]
  return f[OP] === ACK && (f[ID] === id || (Array.isArray(batch) && batch.indexOf(id) >= 0))
}

export async function checkConformance(
  url: string,
  options: ConformanceOptions = {},
): Promise<ConformanceResult[]> {
  const login = options.login || { [OP]: LOGIN, userOpenId: 'mpbus-conformance' }
  const probe = options.probe || 'ConformanceProbe'
  const timeout = options.timeout || 2000
  const results: ConformanceResult[] = []
  const id = randomBytes(9).toString('base64url')

  /** Opens a connection and logs in; returns it with the login's answer. */
  async function loggedIn() {
    const c = connect(url, timeout)
    if (!(await c.opened)) return { c, answer: undefined }
    c.send(login)
    return { c, answer: await c.next(() => true) }
  }

  const first = await loggedIn()
  const ok = !!first.answer && first.answer[OP] === LOGIN_OK
  results.push({
    check: 'login',
    ok,
    detail: first.answer ? `answered ${JSON.stringify(first.answer).slice(0, 120)}` : 'no answer',
  })
  if (!ok) {
    first.c.close()
    return results
  }

  first.c.send({ [OP]: HEART })
  const beat = await first.c.next((f) => f[OP] === HEART_OK)
  results.push({ check: 'heartbeat', ok: !!beat, detail: beat ? HEART_OK : `no ${HEART_OK}` })

  first.c.send({ [OP]: probe, [ID]: id })
  const ack = await first.c.next((f) => acks(f, id))
  results.push({ check: 'ack', ok: !!ack, detail: ack ? `Ack of ${id}` : `no Ack of ${id}` })

  const tips = first.answer[STREAMS]
  const resume = !!tips && typeof tips === 'object'
  results.push({
    check: 'resume',
    ok: resume,
    detail: resume
      ? `the login answer carries stream tips: ${Object.keys(tips).join(', ') || 'none'}`
      : `the login answer carries no ${STREAMS}: pushes are not resumable`,
  })
  first.c.close()

  // The repeat comes on a new connection, as a resend after a reconnect does: it must be acked again.
  const second = await loggedIn()
  second.c.send({ [OP]: probe, [ID]: id })
  const again = await second.c.next((f) => acks(f, id))
  results.push({
    check: 'duplicate window',
    ok: !!again,
    detail: again
      ? 'a repeat on a new connection was acked again (that its handler did not run again is not visible from here)'
      : 'a repeat on a new connection was not acked: the client would resend it forever',
  })
  second.c.close()

  const early = connect(url, timeout)
  if (await early.opened) {
    early.send({ [OP]: probe, [ID]: `${id}-early` })
    const answer = await early.next(() => true)
    const refused = !answer && early.closed() !== undefined
    results.push({
      check: 'login first',
      ok: !answer,
      detail: answer
        ? `answered a frame before the login: ${JSON.stringify(answer).slice(0, 120)}`
        : refused
          ? `closed with ${early.closed()}`
          : 'answered nothing',
    })
  }
  early.close()
  return results
}

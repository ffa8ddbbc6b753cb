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
  /**
   * An operator whose handler answers the connection with a frame of operator `reply` each time it
   * runs. Only with it can the duplicate window be seen from outside: a repeat must be acked
   * without its handler running again. Without it, that part is skipped.
   */
  echo?: { op: string; reply: string }
}

export interface ConformanceResult {
  check: 'login' | 'login first' | 'heartbeat' | 'ack' | 'duplicate window' | 'resume'
  ok: boolean
  /** Not checked (what it needs was not given): `ok` is false, but nothing failed either. */
  skipped?: boolean
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
  /** True once open; else the connection's error message. */
  const opened = new Promise<true | string>((resolve) => {
    ws.once('open', () => resolve(true))
    ws.once('error', (e) => resolve(e.message || String(e)))
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

  /** Opens a connection and logs in; returns it with the login's answer, or why it could not connect. */
  async function loggedIn() {
    const c = connect(url, timeout)
    const opened = await c.opened
    if (opened !== true) return { c, answer: undefined, error: opened }
    c.send(login)
    return { c, answer: await c.next(() => true), error: undefined }
  }

  const first = await loggedIn()
  const ok = !!first.answer && first.answer[OP] === LOGIN_OK
  results.push({
    check: 'login',
    ok,
    detail: first.error
      ? `cannot connect to ${url}: ${first.error}`
      : first.answer
        ? `answered ${JSON.stringify(first.answer).slice(0, 120)}`
        : `no answer within ${timeout} ms${first.c.closed() === undefined ? '' : ` (closed with ${first.c.closed()})`}`,
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

  // The echo's first run: its reply shows that the handler runs (it must come before the ack).
  const echo = options.echo
  const echoId = `${id}-echo`
  let echoed = false
  if (echo) {
    first.c.send({ [OP]: echo.op, [ID]: echoId })
    echoed = !!(await first.c.next((f) => f[OP] === echo.reply))
  }

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

  // The repeat comes on a new connection, as a resend after a reconnect does: it must be acked
  // again, and (seen through the echo) not handled again. A handler runs before its ack leaves,
  // so a second reply would come before the repeat's ack.
  const second = await loggedIn()
  second.c.send({ [OP]: probe, [ID]: id })
  const again = await second.c.next((f) => acks(f, id))
  let window: Omit<ConformanceResult, 'check'>
  if (!again)
    window = {
      ok: false,
      detail: 'a repeat on a new connection was not acked: the client would resend it forever',
    }
  else if (!echo)
    window = {
      ok: false,
      skipped: true,
      detail: 'a repeat was acked again; whether its handler ran again needs echo (--echo op,reply)',
    }
  else if (!echoed) window = { ok: false, detail: `${echo.op} got no ${echo.reply}: check the echo operator` }
  else {
    second.c.send({ [OP]: echo.op, [ID]: echoId })
    const repeat = await second.c.next((f) => acks(f, echoId) || f[OP] === echo.reply)
    window = repeat
      ? repeat[OP] === echo.reply
        ? { ok: false, detail: `a repeat of ${echo.op} on a new connection was handled again` }
        : { ok: true, detail: `a repeat of ${echo.op} on a new connection was acked, not handled again` }
      : { ok: false, detail: `a repeat of ${echo.op} on a new connection was not acked` }
  }
  results.push(Object.assign({ check: 'duplicate window' as const }, window))
  second.c.close()

  const early = connect(url, timeout)
  if ((await early.opened) === true) {
    early.send({ [OP]: probe, [ID]: `${id}-early` })
    const answer = await early.next(() => true)
    const refused = !answer && early.closed() !== undefined
    results.push({
      check: 'login first',
      ok: refused,
      detail: answer
        ? `answered a frame before the login: ${JSON.stringify(answer).slice(0, 120)}`
        : refused
          ? `closed with ${early.closed()}`
          : `neither answered nor closed within ${timeout} ms (a frame before the login must close the connection)`,
    })
  }
  early.close()
  return results
}

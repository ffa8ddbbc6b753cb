/**
 * The session of one link: login first, then `authenticating` until the server answers
 * `ready.ok` (`ready`) or one of `ready.fail` (the link halts: `unauthorized`). One timer bounds
 * the whole of it, from the open to `ready.ok`, the login Promise included, so a `login()` that
 * never settles backs off like a refused connect. Every callback checks that its link is still
 * the session's: a login resolving after its link ended does nothing.
 */
import { describe, MpbusError } from '../errors'
import type { SocketData } from '../platform/types'
import type { Link } from '../transport'
import type { Frame } from './dispatcher'
import { checkOperator, type Framing } from './framing'
import type { LoginFrame, Resolved } from './options'

export type Phase = 'authenticating' | 'ready'

export interface Session {
  /** Where the current link's session stands; undefined without a link. */
  readonly phase: Phase | undefined
  /** A link opened: log in on it. */
  start(link: Link): void
  /** An inbound frame, before the handlers see it: the login's answer, or the server ending the session. */
  frame(op: string, frame: Frame): void
  /** The link ended, or the bus closed: cancels the timer; nothing of the old link acts after it. */
  end(): void
}

/** Calls `next` with the value, or with what a thenable resolves to. */
function settle<T>(value: T | PromiseLike<T>, next: (v: T) => void, fail: (e: unknown) => void): void {
  const later = value as PromiseLike<T>
  if (later && typeof later.then === 'function') later.then(next, fail)
  else next(value as T)
}

/**
 * `loginFields` adds fields to the app's login frame when it is sent (the stream positions of
 * streams.ts), so they are as fresh as the link.
 */
export function createSession(
  options: Resolved,
  framing: Framing,
  onReady: () => void,
  loginFields: () => object | undefined,
): Session {
  const { ready, login, sessionEnd } = options
  let link: Link | undefined
  let phase: Phase | undefined
  let timer: ReturnType<typeof setTimeout> | undefined

  function stopTimer(): void {
    clearTimeout(timer)
    timer = undefined
  }

  function becomeReady(): void {
    stopTimer()
    phase = 'ready'
    onReady()
  }

  return {
    get phase() {
      return phase
    },
    start(opened) {
      stopTimer()
      const current = opened
      link = opened
      phase = 'authenticating'
      const fail = (e: unknown) => {
        if (link !== current) return
        current.drop(e instanceof MpbusError ? e : new MpbusError('LOGIN_ERROR', describe(e), e))
      }
      timer = setTimeout(() => {
        timer = undefined
        fail(new MpbusError('TIMEOUT', ready ? `no ${ready.ok}` : 'login did not settle'))
      }, options.sessionTimeout)
      let frame: ReturnType<NonNullable<typeof login>>
      try {
        frame = login ? login() : undefined
      } catch (e) {
        return fail(e)
      }
      settle(
        frame,
        (answer: LoginFrame | null | undefined) => {
          if (link !== current || phase !== 'authenticating') return
          if (answer) {
            let data: SocketData
            try {
              checkOperator(answer.op)
              const fields = loginFields()
              data = framing.encode(
                answer.op,
                fields ? Object.assign({}, answer.payload, fields) : answer.payload,
              )
            } catch (e) {
              return fail(new MpbusError('LOGIN_ERROR', describe(e), e))
            }
            // Refused while the app is hidden (the kept socket takes nothing): the next link logs in again.
            if (!current.send(data)) return fail(new MpbusError('LOGIN_ERROR', 'the link took no login'))
          }
          if (!ready) becomeReady()
        },
        fail,
      )
    },
    frame(op, frame) {
      if (!link) return
      if (sessionEnd && op === sessionEnd) {
        stopTimer()
        link.halt(new MpbusError('SESSION_ENDED', describe(frame.reason || op), frame))
      } else if (ready && phase === 'authenticating') {
        if (op === ready.ok) becomeReady()
        else if (ready.fail.indexOf(op) >= 0) {
          stopTimer()
          link.halt(new MpbusError('UNAUTHORIZED', op, frame))
        }
      }
    },
    end() {
      stopTimer()
      link = undefined
      phase = undefined
    },
  }
}

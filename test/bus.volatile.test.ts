// Volatile sends (src/bus/volatile.ts): straight to the link, settled by its result, and dropped
// at once (reported) when there is no ready link.
import { describe, expect, it } from 'vitest'
import { createFraming } from '../src/bus/framing'
import { resolveOptions } from '../src/bus/options'
import { createPending } from '../src/bus/pending'
import type { BusEvents } from '../src/bus/types'
import { createVolatile } from '../src/bus/volatile'
import { MpbusError } from '../src/errors'
import { createFakeLink, type FakeLink } from './helpers/fake-link'
import { createScriptPlatform } from './helpers/script-platform'

function setup(link: FakeLink | string) {
  const options = resolveOptions({ url: 'ws://x', platform: createScriptPlatform().platform })
  const pending = createPending()
  const drops: BusEvents['drop'][] = []
  const send = createVolatile(
    createFraming(options, () => {}),
    pending,
    () => link,
    (event) => drops.push(event),
  )
  return { send, drops, pending }
}

const outcome = (p: Promise<void>) =>
  p.then(
    () => 'sent',
    (e: MpbusError) => e.code,
  )

describe('volatile sends', () => {
  it('go to the link as a frame with no id, and resolve when the platform reports the send', async () => {
    const link = createFakeLink()
    const { send } = setup(link)
    const sent = outcome(send('Typing', { to: 'b' }))
    expect(link.sent).toEqual(['{"Operator":"Typing","to":"b"}'])
    link.dones[0]!()
    expect(await sent).toBe('sent')
  })

  it('reject with the error the platform reports for the send', async () => {
    const link = createFakeLink()
    const { send } = setup(link)
    const sent = outcome(send('Typing', 1))
    link.dones[0]!(new MpbusError('SOCKET_ERROR', 'send failed'))
    expect(await sent).toBe('SOCKET_ERROR')
  })

  it('with no ready link, or a link that takes nothing: rejected DROPPED at once and reported as an offline drop', async () => {
    const suspended = createFakeLink()
    suspended.accepting = false
    for (const link of ['connecting', suspended]) {
      const { send, drops } = setup(link)
      expect(await outcome(send('Typing', 1))).toBe('DROPPED')
      expect(drops.map((d) => [d.reason, d.envelopes, d.error.code])).toEqual([['offline', [], 'DROPPED']])
    }
  })

  it('refuse what JSON cannot carry before anything is sent', () => {
    const link = createFakeLink()
    const { send } = setup(link)
    expect(() => send('Typing', { n: BigInt(1) })).toThrow(expect.objectContaining({ code: 'BAD_PAYLOAD' }))
    expect(() => send('', {})).toThrow(expect.objectContaining({ code: 'BAD_OPERATOR' }))
    expect(link.sent).toEqual([])
  })

  it('are settled by close like every pending send', async () => {
    const link = createFakeLink()
    const { send, pending } = setup(link)
    const sent = outcome(send('Typing', 1))
    pending.close()
    expect(await sent).toBe('CLOSED')
  })
})

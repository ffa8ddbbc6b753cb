// Compiled by `npm run typecheck`, never run: each @ts-expect-error line must fail to compile
// (tsc reports an unused one), as mitt's test/test-types-compilation.ts does.
import { type Bus, type BusEvents, createBus } from '../src/index'

type Out = { SendMessage: { text: string } }
type In = { LoginOK: { openId: string } }
declare const bus: Bus<Out, In>
declare const untyped: Bus<Out>

export function checks() {
  const off: () => void = bus.events.on('ready', () => {})
  off()
  bus.events.on('state', ({ from, to }) => `${from}${to}`)
  bus.events.on('error', (error) => error.code)
  // @ts-expect-error a lifecycle event that does not exist
  bus.events.on('redy', () => {})
  bus.events.on('resync', ({ stream, offset, epoch }) => `${stream}${offset.toFixed()}${epoch}`)
  // @ts-expect-error a resync names its stream as a string
  bus.events.on('resync', (r) => r.stream.toFixed())
  // @ts-expect-error lifecycle payloads are typed: a close carries a CloseInfo
  bus.events.on('close', (info: string) => info)
  bus.send('SendMessage', { text: 'hi' })
  // @ts-expect-error a payload that Out requires cannot be left out
  bus.send('SendMessage')
  // @ts-expect-error the payload of an outbound operator is typed
  bus.send('SendMessage', { text: 1 })
  // @ts-expect-error an outbound operator that Out does not name
  bus.send('Other', {})
  bus.on('LoginOK', (frame) => frame.openId.length)
  // @ts-expect-error an inbound operator that In does not name
  bus.on('LoginError', () => {})
  // Typing only what is sent leaves inbound untyped: the quick start's handler compiles.
  untyped.on('LoginOK', (frame) => frame.openId)
  bus.request('SendMessage', { text: 'q' }, { reply: 'LoginOK' }).then((frame) => frame.openId)
  const unsubscribe: () => void = bus.onState((state) => state)
  unsubscribe()
  // The events map has no index signature.
  // @ts-expect-error
  const anything: BusEvents['anything'] = 1
  return [anything, createBus]
}

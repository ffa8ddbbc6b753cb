// Compiled by `npm run typecheck`, never run (as test/types.check.ts): one declaration of the
// operations types both ends. `createBus<Out, In>` and `createServer<Out, In>` take the same two
// types: what clients send, what they receive. Each @ts-expect-error line must fail to compile.
import { createBus } from '../src/index'
import { createServer, type HandlerContext, refuse } from '../src/server/index'

/** What clients send. */
type Out = { SendMessage: { text: string }; Typing: undefined }
/** What clients receive. */
type In = { NewMessage: { from: string; text: string }; Saved: { id: number } }

export async function checks() {
  const bus = createBus<Out, In>({ url: 'ws://x' })
  bus.send('SendMessage', { text: 'hi' })
  bus.on('NewMessage', (frame) => frame.from.length)

  const server = await createServer<Out, In>({
    authenticate: () => 'alice',
    handlers: {
      SendMessage: (frame, ctx) => {
        const text: string = frame.text
        if (!text) throw refuse('INVALID', 'text is empty')
        ctx.reply('Saved', { id: 1 })
        ctx.push('NewMessage', { from: ctx.user, text })
        // @ts-expect-error a frame has the fields its operator's type gives
        frame.txt.length
        // @ts-expect-error reply's payload is In's type for the operator
        ctx.reply('Saved', { id: '1' })
        // @ts-expect-error an operator clients do not receive
        ctx.reply('Unknown', {})
        // @ts-expect-error a payload In requires cannot be left out
        void ctx.push('NewMessage')
      },
      Typing: () => {},
      // @ts-expect-error a handler for an operator clients do not send
      Unknown: () => {},
    },
  })
  await server.push('alice', 'NewMessage', { from: 'bob', text: 'hi' })
  await server.publish('room', 'Saved', { id: 2 })
  // @ts-expect-error push's payload is typed by In
  await server.push('alice', 'NewMessage', { text: 'hi' })
  // @ts-expect-error publish names an operator of In
  await server.publish('room', 'SendMessage', { text: 'hi' })
  const port: number = server.port

  // Untyped, as before: any operator, any payload, the payload optional.
  const loose = await createServer({
    authenticate: () => 'alice',
    handlers: { Anything: (frame, ctx: HandlerContext) => ctx.reply('Whatever', { n: frame.n }) },
  })
  await loose.push('alice', 'Whatever')
  return [port, loose]
}

import { afterEach, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import { createTestServer, type TestServer } from '../../src/testing/index'
import { sleep, until } from './util'

/** The login answer of mpbus/server: the fields, and the tip of the user's stream (nothing pushed yet). */
const loginOk = (openId: any, fields: object = {}) => ({
  Operator: 'LoginOK',
  openId,
  ...fields,
  Streams: {
    [`user:${typeof openId === 'string' ? openId : 'openid-1'}`]: { offset: 0, epoch: expect.any(String) },
  },
})

const framesOf = (s: TestServer, op: string) =>
  s.received.map((r) => r.frame).filter((f) => f && f.Operator === op)

const servers: TestServer[] = []
const sockets: WebSocket[] = []

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate()
  for (const s of servers.splice(0)) await s.close()
})

async function server(options?: Parameters<typeof createTestServer>[0]) {
  const s = await createTestServer(options)
  servers.push(s)
  return s
}

async function connect(url: string) {
  const ws = new WebSocket(url)
  sockets.push(ws)
  const inbox: any[] = []
  let closed: { code: number; reason: string } | undefined
  ws.on('message', (d, binary) => inbox.push(binary ? d : JSON.parse(d.toString())))
  ws.on('close', (code, reason) => {
    closed = { code, reason: reason.toString() }
  })
  ws.on('error', () => {})
  await new Promise((resolve, reject) => {
    ws.once('open', resolve)
    ws.once('error', reject)
  })
  const send = (f: object | string) => ws.send(typeof f === 'string' ? f : JSON.stringify(f))
  return { ws, inbox, send, closed: () => closed }
}

describe('test server', () => {
  it('answers userLogin with LoginOK (openId kept or generated) and Heart with HeartOK', async () => {
    const s = await server()
    expect(s.url).toBe(`ws://127.0.0.1:${s.port}`)
    const a = await connect(s.url)
    a.send({ Operator: 'userLogin', userCode: 'c' })
    a.send({ Operator: 'Heart' })
    await until(() => a.inbox.length === 2, 'replies')
    expect(a.inbox[0]).toEqual(loginOk('openid-1'))
    expect(a.inbox[1]).toEqual({ Operator: 'HeartOK' })
    const b = await connect(s.url)
    b.send({ Operator: 'userLogin', userOpenId: 'o-42' })
    await until(() => b.inbox.length === 1, 'login reply')
    expect(b.inbox[0]).toEqual(loginOk('o-42'))
    expect(s.clients()).toBe(2)
    expect(s.received.map((r) => [r.client, r.frame.Operator])).toEqual([
      [1, 'userLogin'],
      [1, 'Heart'],
      [2, 'userLogin'],
    ])
  })

  it('lets loginOk refuse a login (LoginError, then a close with 1008) or add fields', async () => {
    const s = await server({ loginOk: (f) => (f.userCode === 'bad' ? null : { role: 'admin' }) })
    const refused = await connect(s.url)
    refused.send({ Operator: 'userLogin', userCode: 'bad' })
    refused.send({ Operator: 'userLogin', userCode: 'good', userOpenId: 'o' })
    await until(() => refused.closed(), 'refused')
    expect(refused.closed()).toEqual({ code: 1008, reason: 'login refused' })
    expect(refused.inbox).toEqual([{ Operator: 'LoginError' }])
    const c = await connect(s.url)
    c.send({ Operator: 'userLogin', userCode: 'good', userOpenId: 'o' })
    await until(() => c.inbox.length === 1, 'reply')
    expect(c.inbox).toEqual([loginOk('o', { role: 'admin' })])
  })

  it('acks frames with an id, records a duplicate once and counts it, across reconnects of a user', async () => {
    const s = await server()
    const a = await connect(s.url)
    a.send({ Operator: 'userLogin', userOpenId: 'u1' })
    a.send({ Operator: 'Chat', MsgId: 'm1', text: 'hi' })
    a.send({ Operator: 'Chat', MsgId: 'm1', text: 'hi' })
    await until(() => a.inbox.length === 3, 'acks')
    expect(a.inbox.slice(1)).toEqual([
      { Operator: 'Ack', MsgId: 'm1' },
      { Operator: 'Ack', MsgId: 'm1' },
    ])
    a.ws.close()
    // The same user retransmits on a new connection: still a duplicate.
    const b = await connect(s.url)
    b.send({ Operator: 'userLogin', userOpenId: 'u1' })
    b.send({ Operator: 'Chat', MsgId: 'm1', text: 'hi' })
    b.send({ Operator: 'Chat', MsgId: 'm2', text: 'yo' })
    await until(() => b.inbox.length === 3, 'acks')
    expect(s.duplicates()).toBe(2)
    expect(s.received.filter((r) => r.frame.Operator === 'Chat').map((r) => r.frame.MsgId)).toEqual([
      'm1',
      'm2',
    ])
    // Another user may reuse an id.
    const c = await connect(s.url)
    c.send({ Operator: 'userLogin', userOpenId: 'u2' })
    c.send({ Operator: 'Chat', MsgId: 'm1' })
    await s.waitFor((r) => r.client === 3 && r.frame.MsgId === 'm1')
    expect(s.duplicates()).toBe(2)
  })

  it('forgets the oldest ids beyond a bounded per-user window', async () => {
    const s = await server({ dedupWindow: 2 })
    const a = await connect(s.url)
    a.send({ Operator: 'userLogin', userOpenId: 'u' })
    for (const id of ['m1', 'm2', 'm1', 'm3', 'm1', 'm3']) a.send({ Operator: 'Chat', MsgId: id })
    await until(() => a.inbox.length === 7, 'acks')
    // m1 was a repeat while the window held it; after m3 pushed it out, m1 is new again.
    expect(framesOf(s, 'Chat').map((f) => f.MsgId)).toEqual(['m1', 'm2', 'm3', 'm1'])
    expect(s.duplicates()).toBe(2)
    expect(s.stats().get('u')).toMatchObject({ received: 4, duplicates: 2 })
  })

  it('keeps per-user stats with an order check, and the window survives a restart', async () => {
    const s = await server({ sequence: (f) => f.n })
    const a = await connect(s.url)
    a.send({ Operator: 'userLogin', userOpenId: 'u1' })
    for (const [id, n] of [
      ['a', 0],
      ['b', 2],
      ['c', 1],
      ['b', 2],
      ['d', 3],
    ] as const)
      a.send({ Operator: 'Chat', MsgId: id, n })
    await until(() => a.inbox.length === 6, 'acks')
    await s.stop()
    await s.start()
    const b = await connect(s.url)
    b.send({ Operator: 'userLogin', userOpenId: 'u1' })
    b.send({ Operator: 'Chat', MsgId: 'd', n: 3 })
    b.send({ Operator: 'Chat', MsgId: 'e', n: 4 })
    const c = await connect(s.url)
    c.send({ Operator: 'userLogin', userOpenId: 'u2' })
    c.send({ Operator: 'Chat', MsgId: 'a', n: 0 })
    await until(() => b.inbox.length === 3 && c.inbox.length === 2, 'acks after restart')
    expect(s.stats().get('u1')).toEqual({ received: 5, duplicates: 2, outOfOrder: 1, highest: 4 })
    expect(s.stats().get('u2')).toEqual({ received: 1, duplicates: 0, outOfOrder: 0, highest: 0 })
  })

  it('routes by operator through a Map: custom routes, route() add and remove, repeats not routed', async () => {
    const routed: string[] = []
    const s = await server({
      routes: new Map([
        [
          '__proto__',
          (f: any, ctx: any) => {
            routed.push(`${f.MsgId}@${ctx.user}`)
            ctx.reply({ Operator: 'Proto' })
          },
        ],
      ]),
      // A code2session stand-in: the code names the user.
      loginOk: (f) => ({ openId: `o-${f.userCode}` }),
    })
    const off = s.route('Save', (f, ctx) => ctx.reply({ Operator: 'Saved', text: f.text }))
    const a = await connect(s.url)
    a.send({ Operator: 'userLogin', userCode: 'abc' })
    a.send('{"Operator":"__proto__","MsgId":"p1"}')
    a.send('{"Operator":"__proto__","MsgId":"p1"}')
    a.send({ Operator: 'Save', MsgId: 's1', text: 'hi' })
    await until(() => a.inbox.length === 6, 'replies')
    expect(a.inbox).toEqual([
      loginOk('o-abc'),
      { Operator: 'Proto' },
      { Operator: 'Ack', MsgId: 'p1' },
      { Operator: 'Ack', MsgId: 'p1' },
      { Operator: 'Saved', text: 'hi' },
      { Operator: 'Ack', MsgId: 's1' },
    ])
    expect(routed).toEqual(['p1@o-abc'])
    expect(({} as any).MsgId).toBeUndefined()
    off()
    a.send({ Operator: 'Save', MsgId: 's2', text: 'again' })
    await until(() => a.inbox.length === 7, 'ack only')
    expect(a.inbox[6]).toEqual({ Operator: 'Ack', MsgId: 's2' })
    expect([...s.stats().keys()]).toEqual(['o-abc'])
  })

  it('uses a custom ack operator and id key, or none', async () => {
    const custom = await server({ ack: { op: 'Got', idKey: 'id' } })
    const a = await connect(custom.url)
    a.send({ Operator: 'X', id: '7' })
    await until(() => a.inbox.length === 1, 'ack')
    expect(a.inbox[0]).toEqual({ Operator: 'Got', id: '7' })
    const off = await server({ ack: false })
    const b = await connect(off.url)
    b.send({ Operator: 'X', MsgId: 'm' })
    b.send({ Operator: 'X', MsgId: 'm' })
    await off.waitFor((_r) => off.received.length === 2)
    await sleep(20)
    expect(b.inbox).toEqual([])
    expect(off.duplicates()).toBe(0)
  })

  it('onFrame hooks can reply, suppress the built-in reply, and be removed', async () => {
    const s = await server()
    const unhook = s.onFrame((frame, reply) => {
      if (frame.Operator === 'Ping') reply({ Operator: 'Pong' })
      if (frame.Operator === 'Heart') return true
    })
    const c = await connect(s.url)
    c.send({ Operator: 'Ping' })
    c.send({ Operator: 'Heart' })
    c.send('not json')
    await s.waitFor((r) => r.frame === 'not json')
    await sleep(20)
    expect(c.inbox).toEqual([{ Operator: 'Pong' }])
    unhook()
    c.send({ Operator: 'Heart' })
    await until(() => c.inbox.length === 2, 'HeartOK again')
  })

  it('broadcasts, sends to one client, and closes every client', async () => {
    const s = await server()
    const a = await connect(s.url)
    const b = await connect(s.url)
    s.broadcast({ Operator: 'News' })
    s.sendTo(2, { Operator: 'Private' })
    s.broadcast(new Uint8Array([1, 2]))
    await until(() => a.inbox.length === 2 && b.inbox.length === 3, 'deliveries')
    expect(a.inbox[0]).toEqual({ Operator: 'News' })
    expect(b.inbox[1]).toEqual({ Operator: 'Private' })
    expect([...b.inbox[2]]).toEqual([1, 2])
    s.closeAll(4002, 'kick')
    await until(() => a.closed() && b.closed(), 'closed')
    expect(a.closed()).toEqual({ code: 4002, reason: 'kick' })
    await until(() => s.clients() === 0, 'no clients')
  })

  it('withholds the Acks of chosen users (still recorded and routed), and terminates one user', async () => {
    const s = await server()
    const routed: string[] = []
    s.route('Chat', (f) => routed.push(f.MsgId))
    const a = await connect(s.url)
    const b = await connect(s.url)
    a.send({ Operator: 'userLogin', userOpenId: 'ua' })
    b.send({ Operator: 'userLogin', userOpenId: 'ub' })
    await until(() => a.inbox.length === 1 && b.inbox.length === 1, 'logins')
    const release = s.withholdAcks((user) => user === 'ua')
    a.send({ Operator: 'Chat', MsgId: 'm1' })
    a.send({ Operator: 'Heart' })
    b.send({ Operator: 'Chat', MsgId: 'm1' })
    await until(() => a.inbox.length === 2 && b.inbox.length === 2, 'replies')
    await sleep(20)
    // ua's link looks healthy (HeartOK) but its Ack was lost; ub is not affected.
    expect(a.inbox[1]).toEqual({ Operator: 'HeartOK' })
    expect(a.inbox).toHaveLength(2)
    expect(b.inbox[1]).toEqual({ Operator: 'Ack', MsgId: 'm1' })
    expect(routed).toEqual(['m1', 'm1'])
    expect(s.stats().get('ua')).toMatchObject({ received: 1, duplicates: 0 })

    // The user's connections go, nobody else's; the client sees a drop, not a close frame.
    expect(s.terminate('ua')).toBe(1)
    await until(() => a.closed(), 'ua dropped')
    expect(a.closed()!.code).toBe(1006)
    expect(s.clients()).toBe(1)
    expect(s.terminate('nobody')).toBe(0)

    // Still withheld on the next link, until released: then the resend is a repeat, acked.
    const a2 = await connect(s.url)
    a2.send({ Operator: 'userLogin', userOpenId: 'ua' })
    a2.send({ Operator: 'Chat', MsgId: 'm1' })
    await until(() => s.stats().get('ua')!.duplicates === 1, 'first resend')
    await sleep(20)
    expect(a2.inbox).toEqual([loginOk('ua')])
    release()
    a2.send({ Operator: 'Chat', MsgId: 'm1' })
    await until(() => a2.inbox.length === 2, 'ack of the resend')
    expect(a2.inbox[1]).toEqual({ Operator: 'Ack', MsgId: 'm1' })
    expect(s.stats().get('ua')).toMatchObject({ received: 1, duplicates: 2 })
    expect(routed).toEqual(['m1', 'm1'])
  })

  it('stops (clients see 1006) and starts again on the same port', async () => {
    const s = await server()
    const port = s.port
    const a = await connect(s.url)
    await s.stop()
    await until(() => a.closed(), 'client dropped')
    expect(a.closed()!.code).toBe(1006)
    await expect(connect(s.url)).rejects.toThrow(/ECONNREFUSED/)
    await s.start()
    expect(s.port).toBe(port)
    const b = await connect(s.url)
    b.send({ Operator: 'Heart' })
    await until(() => b.inbox.length === 1, 'HeartOK after restart')
    expect(s.received[s.received.length - 1]!.client).toBe(2)
  })
})

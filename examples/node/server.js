// The server half: mpbus/server on port 8080, one handler, a push every second.
import { createServer } from 'mpbus/server'

const server = await createServer({
  port: Number(process.env.PORT) || 8080,
  // The login frame decides the user (null: refused, LoginError). A mini program sends its
  // wx.login code, which a real server exchanges for the openId (WeChat's code2Session); this one
  // makes the openId up, and trusts the openId a returning client sends.
  authenticate: (login) => {
    const openId = login.userOpenId || (login.userCode && `openid-${login.userCode}`)
    return openId ? { user: openId, fields: { openId } } : null
  },
  handlers: {
    // The ack leaves when the handler returns; a throw withholds it and the client resends.
    SendMessage: async (frame, { user, push }) => {
      console.log(`server: ${user} sent "${frame.text}"`)
      await push('NewMessage', { text: `echo: ${frame.text}` }) // kept for the offline too
    },
  },
})
console.log(`server: listening on port ${server.port}`)

let tick = 0
setInterval(() => server.push('alice', 'Tick', { n: ++tick }), 1000)

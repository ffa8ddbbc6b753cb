// The example's server: mpbus/server with the handler the index page needs. `npm run server` in
// examples/wechat (after its README's install), port 8080 or PORT. Node only: project.config.json
// keeps this folder out of the mini program (packOptions.ignore).
const { createServer } = require('mpbus/server')

// A real server exchanges the wx.login code for the user's openId (WeChat's code2Session:
// https://developers.weixin.qq.com/miniprogram/dev/OpenApiDoc/user-login/code2Session.html);
// this one makes an openId up from the code, and trusts the openId a returning client sends.
function authenticate(login) {
  const openId = login.userOpenId || (login.userCode && `openid-${login.userCode}`)
  return openId ? { user: openId, fields: { openId } } : null
}

createServer({
  port: Number(process.env.PORT) || 8080,
  authenticate,
  handlers: {
    // Save the note (your database here), then confirm it to every device of the user: a push is
    // kept in the user's stream, so a device that was offline gets it when it is back.
    SaveNote: async (frame, { push }) => {
      await push('NoteSaved', { text: frame.text })
    },
  },
}).then((server) => console.log(`server: listening on ws://127.0.0.1:${server.port}/`))

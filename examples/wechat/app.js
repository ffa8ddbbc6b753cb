// One bus for the whole app: created once, at launch, and shared by every page through getApp().
const { createBus } = require('mpbus')
const config = require('./config')

// wx.login gives a fresh code on every (re)connect; the openId the server sent last time
// lets it recognise us without one (userLogin -> LoginOK, docs/protocol.md).
function login() {
  return new Promise((resolve) => {
    const userOpenId = wx.getStorageSync('openId') || undefined
    wx.login({
      success: (res) => resolve({ op: 'userLogin', payload: { userCode: res.code, userOpenId } }),
      fail: () => resolve({ op: 'userLogin', payload: { userOpenId } }),
    })
  })
}

App({
  onLaunch() {
    this.bus = createBus({
      url: config.url,
      platform: wx,
      login,
      ready: { ok: 'LoginOK', fail: ['LoginError', 'BanLogin'] },
      ack: true,
    })
    // Persist the openId from every LoginOK, so the next cold start logs in with it.
    this.bus.on('LoginOK', (frame) => {
      if (frame.openId) wx.setStorageSync('openId', frame.openId)
    })
    this.bus.events.on('error', (error) => console.warn('[mpbus]', error.code, error.message))
  },
})

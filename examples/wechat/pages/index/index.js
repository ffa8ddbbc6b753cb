// Sends notes whether or not the network is there: offline they wait in the outbox
// (persisted, so they survive the app being killed) and go out in order after the next login.
const { bindPage } = require('mpbus')
const app = getApp()

Page(
  bindPage(app.bus, {
    data: { openId: '', notes: [], queued: 0, draft: '' },
    // Registered in onLoad with `this` bound to the page, removed in onUnload.
    bus: {
      LoginOK(frame) {
        this.setData({ openId: frame.openId })
      },
      NoteSaved(frame) {
        this.setData({ notes: this.data.notes.concat(frame.text), queued: app.bus.queued })
      },
    },
    onInput(event) {
      this.setData({ draft: event.detail.value })
    },
    send() {
      const text = this.data.draft
      this.setData({ draft: '', queued: app.bus.queued + 1 })
      app.bus
        .send('SaveNote', { text })
        .then(() => this.setData({ queued: app.bus.queued }))
        .catch((error) => wx.showToast({ title: error.code, icon: 'none' }))
    },
    openStatus() {
      wx.navigateTo({ url: '/pages/status/status' })
    },
  }),
)

// Shows a banner while the bus is not ready, so that the user knows their actions are queued, not
// lost, rather than acting into a socket that cannot hear them.
const app = getApp()

const LABELS = {
  ready: '',
  authenticating: '正在登录… Logging in…',
  connecting: '正在连接… Connecting…',
  backoff: '网络不稳定，正在重连… Reconnecting…',
  offline: '网络已断开，消息将在恢复后发送 Offline: messages are queued',
  suspended: '',
  unauthorized: '登录失败 Login refused',
  failed: '连接失败 Connection failed',
}

Page({
  data: { state: '', banner: '' },
  onLoad() {
    const show = (state) => this.setData({ state, banner: LABELS[state] || '' })
    show(app.bus.state)
    // onState returns its unsubscribe: keep it and call it when the page goes away.
    this.offState = app.bus.onState(show)
  },
  onUnload() {
    this.offState()
  },
  retry() {
    app.bus.reconnect()
  },
})

// Your server: `npm run server` (server/server.js) listens here. WeChat accepts only wss://
// domains configured in the mini program console
// (https://developers.weixin.qq.com/miniprogram/dev/framework/ability/network.html); DevTools can
// skip the check with "urlCheck": false while developing.
module.exports = {
  url: 'ws://127.0.0.1:8080/',
}

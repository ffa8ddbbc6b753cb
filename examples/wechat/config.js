// Your server. WeChat accepts only wss:// domains configured in the mini program console
// (platform-facts §1); DevTools can skip the check with "urlCheck": false while developing.
module.exports = {
  url: 'wss://example.com/ws',
}

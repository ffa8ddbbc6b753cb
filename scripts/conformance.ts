// `npm run conformance -- ws://host:port/path [login-frame-json]`: checks a server against
// docs/protocol.md (login, login first, heartbeat, ack, duplicate window, resume) and exits 1
// if any check fails. The login frame defaults to {"Operator":"userLogin","userOpenId":"mpbus-conformance"}.
import { checkConformance } from '../src/server/conformance'

const [url, login] = process.argv.slice(2)
if (!url || !/^wss?:\/\//.test(url)) {
  console.error('usage: npm run conformance -- ws://host:port/path [login-frame-json]')
  process.exit(2)
}
checkConformance(url, { login: login ? JSON.parse(login) : undefined }).then(
  (results) => {
    for (const r of results) console.log(`${r.ok ? 'PASS' : 'FAIL'} ${r.check}: ${r.detail}`)
    process.exit(results.every((r) => r.ok) && results.length === 6 ? 0 : 1)
  },
  (error) => {
    console.error(error)
    process.exit(1)
  },
)

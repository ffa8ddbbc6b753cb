// `npm run conformance -- ws://host:port/path ['<login frame JSON>'] [--echo op,reply]`: the
// package's `mpbus-conformance` command (src/server/conformance-cli.ts), run from a clone.
import '../src/server/conformance-cli'

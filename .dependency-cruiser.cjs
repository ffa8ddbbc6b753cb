// The folder rules of src/ (docs/architecture.md says why), checked by `npm run deps`.
// Type-only imports count too (`tsPreCompilationDeps`): a cycle of types is still a cycle.

/** Modules every layer may use: they import nothing of the layers (and protocol.ts is the wire's one leaf). */
const LEAVES = '^src/(errors|utf8|payload|task|protocol)\\.ts$'
/** The public entries, as package.json `exports` names them (tsup.config.ts builds these). */
const ENTRIES = '^src/(index|node)\\.ts$|^src/(server|compat|testing)/index\\.ts$'
const CLIENT = '^src/(bus|outbox|transport|heartbeat|platform|compat)/|^src/(index|node)\\.ts$'

module.exports = {
  forbidden: [
    {
      name: 'no-cycle',
      comment: 'A cycle makes neither module readable alone, and the bundler orders their code by chance.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'leaves-stay-leaves',
      comment: 'errors, utf8, payload, task and protocol import only each other.',
      severity: 'error',
      from: { path: LEAVES },
      to: { path: '^src/', pathNot: LEAVES },
    },
    {
      name: 'platform-below-outbox-and-transport',
      comment: 'An adapter maps one platform onto src/platform/types.ts and knows nothing above it.',
      severity: 'error',
      from: { path: '^src/platform/' },
      to: { path: '^src/', pathNot: `^src/platform/|${LEAVES}` },
    },
    {
      name: 'outbox-and-transport-below-bus',
      comment: 'The outbox and the transport (with its heartbeat) stand on the platform and the leaves.',
      severity: 'error',
      from: { path: '^src/(outbox|transport|heartbeat)/' },
      to: { path: '^src/(bus|compat|server|testing)/|^src/(index|node)\\.ts$' },
    },
    {
      name: 'outbox-and-transport-apart',
      comment: 'The bus joins them; neither needs the other.',
      severity: 'error',
      from: { path: '^src/outbox/' },
      to: { path: '^src/(transport|heartbeat)/' },
    },
    {
      name: 'transport-and-outbox-apart',
      comment: 'The bus joins them; neither needs the other.',
      severity: 'error',
      from: { path: '^src/(transport|heartbeat)/' },
      to: { path: '^src/outbox/' },
    },
    {
      name: 'bus-below-the-entries',
      comment: 'The bus is what the entries (index, node, compat) export; it never imports them.',
      severity: 'error',
      from: { path: '^src/bus/' },
      to: { path: '^src/(compat|server|testing)/|^src/(index|node)\\.ts$' },
    },
    {
      name: 'server-apart-from-the-client',
      comment:
        'mpbus/server runs in Node alone: it shares the leaves (protocol.ts) with the client, nothing else.',
      severity: 'error',
      from: { path: '^src/server/' },
      to: { path: `${CLIENT}|^src/testing/` },
    },
    {
      name: 'client-apart-from-the-server',
      comment: 'The client ships to mini programs: no server or test-kit code may reach it.',
      severity: 'error',
      from: { path: CLIENT },
      to: { path: '^src/(server|testing)/' },
    },
    {
      name: 'testing-through-the-public-entries',
      comment:
        'mpbus/testing is a user of mpbus: it reaches the rest of src only through the entries a user ' +
        'imports (and the protocol leaf), so the kit cannot pass where the published API would not.',
      severity: 'error',
      from: {
        path: '^src/testing/',
        pathNot: '^src/testing/test-server\\.ts$',
      },
      to: { path: '^src/', pathNot: `^src/testing/|${ENTRIES}|${LEAVES}` },
    },
    {
      name: 'test-server-on-the-server-alone',
      comment:
        "The kit's server is mpbus/server's own connection handling with recording and fault hooks " +
        'around it (one protocol server, not two), so it may reach into src/server; never into the client.',
      severity: 'error',
      from: { path: '^src/testing/test-server\\.ts$' },
      to: { path: '^src/', pathNot: `^src/testing/|^src/server/|${ENTRIES}|${LEAVES}` },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
  },
}

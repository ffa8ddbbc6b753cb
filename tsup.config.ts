import { defineConfig } from 'tsup'

// ESM and CommonJS for bundlers and Node, with declarations. mitt is bundled in (it is small), so
// installing mpbus pulls in nothing at run time. `ws` and `redis` stay external: Node users bring
// them (optional peers).
export default defineConfig({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
    node: 'src/node.ts',
    compat: 'src/compat/index.ts',
    server: 'src/server/index.ts',
    // The `mpbus-conformance` command (package.json `bin`); its hashbang is kept.
    'conformance-cli': 'src/server/conformance-cli.ts',
  },
  format: ['esm', 'cjs'],
  target: 'es2015',
  dts: true,
  clean: true,
  sourcemap: false,
  splitting: true,
  noExternal: ['mitt'],
  external: ['ws', 'redis'],
})

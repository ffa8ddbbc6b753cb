// Builds miniprogram_dist/, the folder WeChat's "Build npm" copies (named by the
// "miniprogram" field of package.json): CommonJS, ES2015 syntax, mitt and nanoid
// bundled in, minified because it counts toward the mini program's package size.
// compat.js requires ./index.js instead of bundling a second copy of the bus.

import { rmSync } from 'node:fs'
import { build } from 'esbuild'

const outdir = 'miniprogram_dist'
rmSync(outdir, { recursive: true, force: true })

const common = {
  bundle: true,
  format: 'cjs',
  target: 'es2015',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
}

await build({ ...common, entryPoints: { index: 'src/index.ts' }, outdir })

const coreAsSibling = {
  name: 'core-as-sibling',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index$/ }, () => ({ path: './index', external: true }))
  },
}
await build({ ...common, entryPoints: { compat: 'src/compat/index.ts' }, outdir, plugins: [coreAsSibling] })
console.log('built miniprogram_dist/')

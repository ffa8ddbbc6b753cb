// Builds miniprogram_dist/, the folder WeChat's "Build npm" copies whole (named by the
// "miniprogram" field of package.json): CommonJS, ES2015 syntax, mitt and nanoid bundled in,
// minified because every byte counts toward the mini program's package size.
//
// - One bundle, index.js, holds everything, mpbus/compat included: two bundles would each
//   carry their own copy of the shared helpers, and gzip them apart. compat.js re-exports.
// - esbuild bundles to ESM (its CommonJS wrapper adds interop helpers a mini program never
//   needs); the one `export {…}` statement at the end becomes `module.exports = {…}`.
// - terser minifies: a few hundred bytes smaller than esbuild's minifier after gzip.
// - Mini programs have no WebSocket global and no localStorage: the browser/Node adapter is
//   swapped for a stub that says so.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'acorn'
import { build } from 'esbuild'
import { minify } from 'terser'

const outdir = 'miniprogram_dist'
rmSync(outdir, { recursive: true, force: true })
mkdirSync(outdir)

const noWebSocket = {
  name: 'no-websocket',
  setup(b) {
    b.onResolve({ filter: /^\.\/websocket$/ }, (args) => ({
      path: path.join(args.resolveDir, 'websocket.stub.ts'),
    }))
  },
}

const bundled = await build({
  stdin: {
    contents: "export * from './src/index'\nexport { WebsocketHeartbeat } from './src/compat/index'\n",
    resolveDir: process.cwd(),
    loader: 'ts',
  },
  bundle: true,
  write: false,
  format: 'esm',
  target: 'es2015',
  platform: 'neutral',
  mainFields: ['module', 'main'],
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [noWebSocket],
})
let code = bundled.outputFiles[0].text

// ESM to CommonJS: esbuild ends the bundle with a single `export { local as name, … }`.
const program = parse(code, { ecmaVersion: 2020, sourceType: 'module' })
const exports = program.body.filter((node) => node.type.startsWith('Export'))
const last = exports[0]
if (
  exports.length !== 1 ||
  last.type !== 'ExportNamedDeclaration' ||
  last.source ||
  last !== program.body.at(-1)
) {
  throw new Error('build-miniprogram: expected one `export {…}` statement at the end of the bundle')
}
const fields = last.specifiers.map((s) => `${s.exported.name}: ${s.local.name}`)
code = `${code.slice(0, last.start)}module.exports = { ${fields.join(', ')} };\n`

const minified = await minify(code, {
  ecma: 2015,
  toplevel: true,
  compress: { passes: 3 },
  mangle: { toplevel: true },
  format: { comments: false },
})
writeFileSync(path.join(outdir, 'index.js'), `"use strict";${minified.code}\n`)

// `require('mpbus/compat')` and `import WebsocketHeartbeat from 'mpbus/compat'` (compiled by
// DevTools) both get websocket-heartbeat-miniprogram's factory.
writeFileSync(
  path.join(outdir, 'compat.js'),
  '"use strict";var f=require("./index").WebsocketHeartbeat;module.exports=f;f.default=f;f.WebsocketHeartbeat=f;\n',
)
console.log('built miniprogram_dist/')

// Builds miniprogram_dist/, the folder named by the "miniprogram" field of package.json: CommonJS,
// ES2015 syntax, mitt and nanoid bundled in, minified because every byte counts toward the mini
// program's package size.
//
// Who reads it: the tools that copy that folder whole into miniprogram_npm ("Build npm" of WeChat
// and QQ, Douyin's npm build), all of the wx family. Alipay resolves node_modules through `main`
// (dist/index.cjs, every platform), and bundlers (uni-app, Taro, web) read `module`/`exports`.
// So this build is the wx family's alone (README, Size):
// - alipay.ts (the Alipay dialect: global socket, object storage, base64 frames) is swapped for
//   alipay.stub.ts, and websocket.ts (browsers, Node, localStorage, the H5 check) for
//   websocket.stub.ts. Both stubs keep the exports and say where the real thing is.
// - index.js holds the library; compat.js holds mpbus/compat alone and requires ./index for the
//   rest, so an app that never requires 'mpbus/compat' ships none of it where unused files are
//   filtered on upload (WeChat DevTools' `ignoreUploadUnusedFiles`).
// - esbuild bundles to ESM (its CommonJS wrapper adds interop helpers a mini program never needs);
//   imports and the one `export {…}` statement become require() and `module.exports`.
// - terser minifies (after esbuild's syntax pass): a few hundred bytes smaller than esbuild's
//   minifier alone after gzip.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { parse } from 'acorn'
import { build } from 'esbuild'
import { minify } from 'terser'
import { wxFamily } from './wx-family.mjs'

const outdir = 'miniprogram_dist'
rmSync(outdir, { recursive: true, force: true })
mkdirSync(outdir)

/** Leaves `../index` (compat's import of the library) to a require of the sibling index.js. */
const siblingIndex = {
  name: 'sibling-index',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/index$/ }, () => ({ path: './index', external: true }))
  },
}

async function bundle(contents, plugins) {
  const bundled = await build({
    stdin: { contents, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    write: false,
    format: 'esm',
    target: 'es2015',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    legalComments: 'none',
    // esbuild's syntax pass first, then terser: about 60 B (gzip) below terser alone.
    minifySyntax: true,
    logLevel: 'warning',
    plugins,
  })
  return bundled.outputFiles[0].text
}

/**
 * ESM to CommonJS: esbuild puts `import {…} from '…'` first and ends with a single
 * `export { local as name, … }`; `tail` is what the caller makes of the exported locals.
 */
function toCommonJs(code, tail) {
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
  let out = ''
  let at = 0
  for (const node of program.body.filter((n) => n.type === 'ImportDeclaration')) {
    if (node.specifiers.some((s) => s.type !== 'ImportSpecifier')) {
      throw new Error('build-miniprogram: only named imports can become require()')
    }
    const names = node.specifiers.map((s) => `${s.imported.name}: ${s.local.name}`)
    out += `${code.slice(at, node.start)}const { ${names.join(', ')} } = require(${JSON.stringify(node.source.value)});`
    at = node.end
  }
  const fields = Object.fromEntries(last.specifiers.map((s) => [s.exported.name, s.local.name]))
  return `${out}${code.slice(at, last.start)}${tail(fields)}\n`
}

async function write(file, code) {
  const minified = await minify(code, {
    ecma: 2015,
    toplevel: true,
    // hoist_funs: function declarations first in their scope (where JS hoists them anyway), ~30 B.
    compress: { passes: 3, hoist_funs: true },
    mangle: { toplevel: true },
    format: { comments: false },
  })
  writeFileSync(path.join(outdir, file), `"use strict";${minified.code}\n`)
}

const index = await bundle("export * from './src/index'\n", [wxFamily])
await write(
  'index.js',
  toCommonJs(
    index,
    (fields) =>
      `module.exports = { ${Object.entries(fields)
        .map(([name, local]) => `${name}: ${local}`)
        .join(', ')} };`,
  ),
)

// `require('mpbus/compat')` and `import WebsocketHeartbeat from 'mpbus/compat'` (compiled by
// DevTools) both get websocket-heartbeat-miniprogram's factory.
const compat = await bundle("export { WebsocketHeartbeat } from './src/compat/index'\n", [
  wxFamily,
  siblingIndex,
])
await write(
  'compat.js',
  toCommonJs(
    compat,
    ({ WebsocketHeartbeat: f }) =>
      `module.exports = ${f}; ${f}.default = ${f}; ${f}.WebsocketHeartbeat = ${f};`,
  ),
)
console.log('built miniprogram_dist/')

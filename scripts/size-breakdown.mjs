// Where the bytes go: bundles what a mini program gets, minified, and prints the total (min, gzip)
// and the minified bytes each source file contributes (from esbuild's metafile). The budgets
// themselves are checked by scripts/check/size.mjs; this is for finding what to cut.
//   node scripts/size-breakdown.mjs          miniprogram_dist/index.js: the wx family's build
//                                            (the Alipay dialect and the browser adapter stubbed)
//   node scripts/size-breakdown.mjs --esm    `{ createBus, miniProgramPlatform }` for bundlers
//   node scripts/size-breakdown.mjs "export { createBus } from './src/index.ts'"   any entry (--esm or not)
// esbuild's minifier, not terser: the totals run a few hundred bytes above the shipped files.
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { wxFamily } from './wx-family.mjs'

const args = process.argv.slice(2)
const esm = args.includes('--esm')
const entry =
  args.find((a) => !a.startsWith('--')) ||
  (esm ? "export { createBus, miniProgramPlatform } from './src/index.ts'" : "export * from './src/index.ts'")
const result = await build({
  stdin: { contents: entry, resolveDir: process.cwd(), loader: 'ts' },
  bundle: true,
  format: 'esm',
  target: 'es2015',
  minify: true,
  write: false,
  metafile: true,
  platform: 'neutral',
  mainFields: ['module', 'main'],
  plugins: esm ? [] : [wxFamily],
})
const code = result.outputFiles[0].contents
console.log(`total: ${code.length} B min, ${gzipSync(code, { level: 9 }).length} B min+gzip`)
const inputs = Object.values(result.metafile.outputs)[0].inputs
const rows = Object.entries(inputs)
  .map(([file, { bytesInOutput }]) => [file, bytesInOutput])
  .filter(([, bytes]) => bytes > 0)
  .sort((a, b) => b[1] - a[1])
for (const [file, bytes] of rows) console.log(`${String(bytes).padStart(7)}  ${file}`)

// Where the bytes go: bundles `{ createBus, miniProgramPlatform }` (or the import given as the
// first argument) as a mini program would get it, minified, and prints the total (min, gzip) and
// the minified bytes each source file contributes (from esbuild's metafile). The budget itself is
// checked by scripts/check/size.mjs; this is for finding what to cut.
//   node scripts/size-breakdown.mjs ["export { createBus } from './src/index.ts'"]
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const entry = process.argv[2] || "export { createBus, miniProgramPlatform } from './src/index.ts'"
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
})
const code = result.outputFiles[0].contents
console.log(`total: ${code.length} B min, ${gzipSync(code, { level: 9 }).length} B min+gzip`)
const inputs = Object.values(result.metafile.outputs)[0].inputs
const rows = Object.entries(inputs)
  .map(([file, { bytesInOutput }]) => [file, bytesInOutput])
  .filter(([, bytes]) => bytes > 0)
  .sort((a, b) => b[1] - a[1])
for (const [file, bytes] of rows) console.log(`${String(bytes).padStart(7)}  ${file}`)

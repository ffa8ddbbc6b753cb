// The shipped .d.ts files stand alone: a TypeScript user without `skipLibCheck` and without
// mitt installed (it is bundled, not a dependency) compiles against them, and the lifecycle
// events are typed by name (a misspelt one must not compile: the @ts-expect-error lines).
import { execFile } from 'node:child_process'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

const consumer = (from) => `import { createBus, type Bus } from ${JSON.stringify(from)}
const bus: Bus<{ SendMessage: { text: string } }> = createBus({ url: 'ws://127.0.0.1:1/' })
const off: () => void = bus.events.on('ready', () => {})
off()
bus.events.on('error', (error) => error.code)
// @ts-expect-error a lifecycle event that does not exist
bus.events.on('redy', () => {})
// @ts-expect-error the payload of SendMessage is typed
bus.send('SendMessage', { text: 1 })
bus.on('LoginOK', (frame) => frame.Operator)
`

export async function checkTypes({ root, tmp }) {
  const failures = []
  const details = []
  // Resolving here would find mitt in this repo's node_modules: a user's has none, so no
  // declaration file may import anything but its siblings.
  for (const name of readdirSync(join(root, 'dist')).filter((n) => /\.d\.c?ts$/.test(n))) {
    const text = readFileSync(join(root, 'dist', name), 'utf8')
    for (const [, specifier] of text.matchAll(/(?:from|import)\s+['"]([^'"]+)['"]/g))
      if (!specifier.startsWith('.') && !specifier.startsWith('node:') && specifier !== 'ws')
        failures.push(`dist/${name} imports '${specifier}', which a user need not have`)
  }
  for (const [name, from, module] of [
    ['esm.mts', join(root, 'dist/index.js'), 'nodenext'],
    ['cjs.cts', join(root, 'dist/index.cjs'), 'nodenext'],
  ]) {
    const file = join(tmp, name)
    writeFileSync(file, consumer(from))
    const project = join(tmp, `tsconfig.${name}.json`)
    const compilerOptions = {
      noEmit: true,
      strict: true,
      skipLibCheck: false,
      types: [],
      lib: ['es2017'],
      module,
      moduleResolution: module,
    }
    writeFileSync(project, JSON.stringify({ compilerOptions, files: [file] }))
    try {
      await promisify(execFile)(
        process.execPath,
        [join(root, 'node_modules/typescript/bin/tsc'), '-p', project],
        {
          cwd: tmp,
          timeout: 60_000,
        },
      )
      details.push(`${name}: compiles without skipLibCheck; misspelt events and wrong payloads do not`)
    } catch (error) {
      failures.push(`${name}: ${(error.stdout || '') + (error.stderr || '') || error.message}`)
    }
  }
  return { failures, details, summary: 'the .d.ts files compile alone, with mitt absent' }
}

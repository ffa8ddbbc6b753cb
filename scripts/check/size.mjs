// Check 5: the size budget of .size-limit.json, measured with size-limit's own plugins (min+gzip).
// Runs size-limit through its JS API rather than `npx size-limit`, for two reasons:
// - an entry without `import` is a file we already bundled and minified (miniprogram_dist): the CLI
//   would bundle it again with esbuild (and cannot be told not to: size-limit 11 refuses
//   `"esbuild": false` in a config), which changes the figure. Here such an entry goes through the
//   file plugin only, so the figure is the gzip of the bytes a mini program ships.

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pathToFileURL } from 'node:url'
import preset from '@size-limit/preset-small-lib'
import sizeLimit from 'size-limit'

const UNITS = { b: 1, kb: 1000, kib: 1024, mb: 1000 ** 2, mib: 1024 ** 2 } // as size-limit (bytes-iec)

function parseLimit(limit) {
  const m = /^\s*([\d.]+)\s*([a-z]*)\s*$/i.exec(limit)
  const unit = m && UNITS[(m[2] || 'b').toLowerCase()]
  if (!unit) throw new Error(`cannot read the limit ${JSON.stringify(limit)}`)
  return Math.round(Number(m[1]) * unit)
}

function listFiles(dir) {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  )
}

/** The files matching a path or a glob (`*`, `**`) relative to root. */
function expand(root, patterns) {
  return [patterns].flat().flatMap((pattern) => {
    if (!pattern.includes('*')) return existsSync(join(root, pattern)) ? [join(root, pattern)] : []
    const base = pattern.slice(0, pattern.indexOf('*')).replace(/[^/]*$/, '')
    const re = new RegExp(
      `^${pattern
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .split('**/')
        .map((part) => part.replace(/\*/g, '[^/]*'))
        .join('(?:.*/)?')}$`,
    )
    return listFiles(join(root, base))
      .filter((f) => re.test(relative(root, f).split('\\').join('/')))
      .sort()
  })
}

const kb = (n) => `${(n / 1000).toFixed(2)} kB`

export async function checkSize({ root, pkg }) {
  const failures = []
  const details = []
  const notes = []
  const entries = JSON.parse(readFileSync(join(root, '.size-limit.json'), 'utf8'))
  const filePlugin = preset.filter((p) => p.name === '@size-limit/file')
  const peers = Object.keys(pkg.peerDependencies || {}) // left out of the bundle, as the CLI does

  for (const entry of entries) {
    const files = expand(root, entry.path)
    if (!files.length) {
      failures.push(`${entry.name}: nothing matches ${entry.path}`)
      continue
    }
    const limit = parseLimit(entry.limit)
    const check = { files, gzip: entry.gzip === true, brotli: entry.brotli }
    let plugins = filePlugin
    if (entry.import) {
      const names = entry.import
        .replace(/[{}]/g, '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
      const mod = await import(pathToFileURL(files[0]).href)
      const missing = names.filter((n) => !(n in mod))
      if (missing.length) {
        throw new Error(`"${entry.name}": ${entry.path} does not export ${missing.join(', ')}`)
      }
      // logLevel 'error': esbuild warns that tsup's bare `import './chunk-*.js'` (its shared helpers)
      // is dropped under `sideEffects: false`; true, harmless, and not about size.
      const quiet = (config) => ({ ...config, logLevel: 'error' })
      Object.assign(check, {
        import: { [files[0]]: entry.import },
        ignore: peers,
        modifyEsbuildConfig: quiet,
      })
      plugins = preset
    }
    const [{ size }] = await sizeLimit(plugins, { checks: [check] })
    const how = `${entry.gzip ? 'gzip' : entry.brotli === false ? 'minified' : 'brotli'}${entry.import ? `, import ${entry.import}` : ''}`
    const which = files.length > 1 ? ` [${files.map((f) => relative(root, f)).join(' + ')}]` : ''
    const line = `${entry.name}${which}: ${size} B (${kb(size)}, ${how}) of ${limit} B (${entry.limit})`
    if (size > limit) failures.push(`${line}: OVER by ${size - limit} B`)
    else details.push(`${line}: ${limit - size} B to spare`)
  }
  const ok = details.length
  return { summary: failures.length ? undefined : `${ok} budget(s) met`, details, notes, failures }
}

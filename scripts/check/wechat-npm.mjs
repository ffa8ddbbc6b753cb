// Check 3: WeChat's npm builder accepts the published tarball. A scratch mini program project
// depends on the packed tarball, and miniprogram-ci's packNpmManually (the same code as DevTools'
// "Build npm") must produce miniprogram_npm/mpbus with our miniprogram_dist in it, byte for byte.
// Then WeChat's upload filter (miniprogram-ci's filterUnusedFile) must drop compat.js from an app
// that never requires 'mpbus/compat', and keep it in one that does.

import { execFile } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { listJs } from './es2015.mjs'

const run = promisify(execFile)
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

export async function checkWechatNpm({ root, tmp, tarball, pkg }) {
  const failures = []
  const details = []
  const project = join(tmp, 'scratch-miniprogram')
  const appRoot = join(project, 'miniprogram')
  mkdirSync(appRoot, { recursive: true })
  writeFileSync(
    join(project, 'project.config.json'),
    JSON.stringify({ miniprogramRoot: 'miniprogram/', compileType: 'miniprogram', appid: 'touristappid' }),
  )
  writeFileSync(join(appRoot, 'app.json'), JSON.stringify({ pages: ['pages/index/index'] }))
  writeFileSync(join(appRoot, 'app.js'), "const mpbus = require('mpbus')\nApp({})\n")
  writeFileSync(
    join(project, 'package.json'),
    JSON.stringify({ name: 'scratch', version: '0.0.0', private: true }),
  )
  // The tarball has no dependencies (mitt and nanoid are bundled; ws is an optional peer), so this
  // is a local unpack: no registry traffic, no lockfile, no install scripts.
  await run(
    npm,
    [
      'install',
      tarball,
      '--no-audit',
      '--no-fund',
      '--ignore-scripts',
      '--no-package-lock',
      '--loglevel=error',
    ],
    { cwd: project, timeout: 60_000 },
  )
  const installed = join(project, 'node_modules', pkg.name, 'package.json')
  if (!existsSync(installed)) return { failures: [`npm install of the tarball did not produce ${installed}`] }

  const child = fileURLToPath(new URL('./pack-npm.cjs', import.meta.url))
  let stdout
  try {
    ;({ stdout } = await run(process.execPath, [child, join(project, 'package.json'), appRoot], {
      cwd: root,
      timeout: 60_000,
    }))
  } catch (error) {
    return { failures: [`packNpmManually failed: ${(error.stderr || error.message).trim()}`] }
  }
  const line = stdout.split('\n').find((l) => l.startsWith('PACK_RESULT '))
  const result = line ? JSON.parse(line.slice('PACK_RESULT '.length)) : null
  if (!result) return { failures: [`packNpmManually printed no result: ${stdout.trim()}`] }
  details.push(`packNpmManually: ${JSON.stringify(result)}`)
  if (result.miniProgramPackNum !== 1) {
    failures.push(
      `miniProgramPackNum is ${result.miniProgramPackNum}: WeChat did not see a mini program package`,
    )
  }
  if (result.warnList?.length) {
    failures.push(
      `packNpmManually warned: ${result.warnList.map((w) => w.msg || JSON.stringify(w)).join('; ')}`,
    )
  }

  // Every file of our miniprogram_dist must arrive unchanged (Build npm copies the folder verbatim).
  const built = join(appRoot, 'miniprogram_npm', pkg.name)
  const distDir = join(root, pkg.miniprogram || 'miniprogram_dist')
  const ours = listJs(distDir).map((f) => f.slice(distDir.length + 1))
  for (const name of ['index.js', 'compat.js']) {
    if (!ours.includes(name)) failures.push(`${pkg.miniprogram}/${name} is missing from the build`)
  }
  for (const name of ours) {
    const target = join(built, name)
    if (!existsSync(target)) failures.push(`miniprogram_npm/${pkg.name}/${name} was not produced`)
    else if (!readFileSync(target).equals(readFileSync(join(distDir, name)))) {
      failures.push(`miniprogram_npm/${pkg.name}/${name} differs from ${pkg.miniprogram}/${name}`)
    }
  }
  if (!failures.length)
    details.push(`miniprogram_npm/${pkg.name}/{${ours.join(',')}} identical to ${pkg.miniprogram}/`)

  // What the upload keeps (the README's size figures count on it): WeChat drops files no code
  // requires unless project.config.json sets `ignoreUploadUnusedFiles` to false. An app that only
  // requires 'mpbus' uploads index.js without compat.js; one that requires 'mpbus/compat' both.
  const filter = fileURLToPath(new URL('./filter-unused.cjs', import.meta.url))
  const uploaded = async () => {
    const { stdout } = await run(process.execPath, [filter, project, appRoot], { cwd: root, timeout: 60_000 })
    const out = stdout.split('\n').find((l) => l.startsWith('FILTER_RESULT '))
    if (!out) throw new Error(`the upload filter printed no result: ${stdout.trim()}`)
    return JSON.parse(out.slice('FILTER_RESULT '.length)).filter((f) =>
      f.startsWith(`miniprogram_npm/${pkg.name}/`),
    )
  }
  const expectUpload = (files, want, why) => {
    const got = files.map((f) => f.slice(`miniprogram_npm/${pkg.name}/`.length)).join(', ')
    if (got !== want.join(', '))
      failures.push(`upload filter, ${why}: kept [${got}], expected [${want.join(', ')}]`)
    else details.push(`upload filter (ignoreUploadUnusedFiles, on by default), ${why}: keeps ${got}`)
  }
  try {
    expectUpload(await uploaded(), ['index.js'], "require('mpbus') only")
    mkdirSync(join(appRoot, 'pages', 'index'), { recursive: true })
    writeFileSync(
      join(appRoot, 'pages', 'index', 'index.js'),
      "const compat = require('mpbus/compat')\nPage({})\n",
    )
    expectUpload(await uploaded(), ['compat.js', 'index.js'], "require('mpbus/compat') too")
  } catch (error) {
    failures.push(`upload filter failed: ${(error.stderr || error.message).trim()}`)
  }
  return {
    summary: failures.length
      ? undefined
      : `miniprogram_npm/${pkg.name} built by miniprogram-ci; the upload drops compat.js unless required`,
    details,
    failures,
  }
}

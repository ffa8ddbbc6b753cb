// Child process of check 3: runs the filter WeChat applies on upload (`setting.ignoreUploadUnusedFiles`,
// on unless set to false: miniprogram-ci's filterUnusedFile, the code DevTools uses) over a scratch
// mini program, and prints the files it keeps as JSON on the last line. Local only: the project is
// never serialized for upload, and the key it needs to exist is a throwaway made here.
// Usage: node filter-unused.cjs <project root> <miniprogram root>
const { generateKeyPairSync } = require('node:crypto')
const { readdirSync, readFileSync, writeFileSync } = require('node:fs')
const path = require('node:path')
const ci = require('miniprogram-ci')
const { filterUnusedFile } = require('miniprogram-ci/dist/ci/utils/filterUnusedFile')

const [projectPath, miniprogramRoot] = process.argv.slice(2).map((p) => path.resolve(p))
const privateKeyPath = path.join(projectPath, 'throwaway.key')
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 })
writeFileSync(privateKeyPath, privateKey.export({ type: 'pkcs1', format: 'pem' }))
const project = new ci.Project({ appid: 'touristappid', type: 'miniProgram', projectPath, privateKeyPath })
// The compiler's file map: paths relative to the mini program root.
const codes = {}
const walk = (dir) => {
  for (const e of readdirSync(path.join(miniprogramRoot, dir), { withFileTypes: true })) {
    const file = path.posix.join(dir, e.name)
    if (e.isDirectory()) walk(file)
    else codes[file] = readFileSync(path.join(miniprogramRoot, file))
  }
}
walk('')
filterUnusedFile(false, project, codes).then(
  (kept) => process.stdout.write(`\nFILTER_RESULT ${JSON.stringify(Object.keys(kept).sort())}\n`),
  (error) => {
    process.stderr.write(`filterUnusedFile failed: ${error?.stack ? error.stack : error}\n`)
    process.exitCode = 1
  },
)

// Child process of check 3: runs WeChat's own "Build npm" (miniprogram-ci's packNpmManually, which
// needs no appid or key: https://developers.weixin.qq.com/miniprogram/dev/devtools/ci.html) and
// prints its result as JSON on the last line.
// It runs apart because miniprogram-ci is slow to load and writes its own logs to stdout.
// Usage: node pack-npm.cjs <package.json of the scratch project> <miniprogram root>

const ci = require('miniprogram-ci')

const [packageJsonPath, miniprogramNpmDistDir] = process.argv.slice(2)
ci.packNpmManually({ packageJsonPath, miniprogramNpmDistDir }).then(
  (result) => {
    process.stdout.write(`\nPACK_RESULT ${JSON.stringify(result)}\n`)
  },
  (error) => {
    process.stderr.write(`packNpmManually failed: ${error?.stack ? error.stack : error}\n`)
    process.exitCode = 1
  },
)

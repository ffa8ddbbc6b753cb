import { readdirSync, readFileSync } from 'node:fs'
import path from 'node:path'
import { expect, it } from 'vitest'

// src/ ships to users: a comment may cite a public link or the project's own docs/, never the
// notes this project was planned from (they are not in the repository or the package).
const OUTSIDE = /shared\/|platform-facts|platform-audit|anchors-|seeds\/|§\d/

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name)
    return entry.isDirectory() ? files(full) : full.endsWith('.ts') ? [full] : []
  })
}

it('no comment in src/ cites a document outside the repository', () => {
  const found = files('src').flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, i) => (OUTSIDE.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : [])),
  )
  expect(found).toEqual([])
})

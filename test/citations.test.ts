import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'

// Every file of the repository speaks to its users: a comment or a document may cite a public
// link or the project's own docs/, never the notes this project was planned from (they are not in
// the repository or the package), nor the history of the work (tracker numbers, work rounds).
const WORDS: Array<[RegExp, string, RegExp?]> = [
  [/platform-facts|platform-audit|anchors-|shared\/|seeds\//, 'a planning note'],
  [/§\s*\d/, 'a section of a planning note'],
  // A public citation may name an issue of another project, with its link.
  [/\bissues?\s*#?\(?\d/i, 'a tracker number', /https?:\/\//],
  [/\bseeds?['’]|\bthe seeds\b|\bseed 0\d\d\b/i, 'the planning notes ("seeds")'],
  [/\bthis round\b/i, 'the history of the work'],
]

function tracked(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' })
    .split('\0')
    .filter((file) => file && file !== 'test/citations.test.ts' && !file.endsWith('package-lock.json'))
}

it('no tracked file names a planning note, a tracker number or the history of the work', () => {
  const files = tracked()
  expect(files).toContain('README.md')
  expect(files).toContain('src/index.ts')
  const found = files.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, i) =>
        WORDS.filter(([pattern, , allowed]) => pattern.test(line) && !allowed?.test(line)).map(
          ([, what]) => `${file}:${i + 1}: ${what}: ${line.trim().slice(0, 160)}`,
        ),
      ),
  )
  expect(found).toEqual([])
})

// The documents' code runs. Every JS/TS block of a tracked Markdown file says what it is, in an
// HTML comment on the line before it:
//   <!-- file: path -->        the block is that file, verbatim (and the file runs in a test)
//   <!-- typecheck -->         the block compiles against src/ (tsc, the project's settings)
//   <!-- test: name (where) --> a test below runs it as written
//   <!-- fragment: why -->     a piece of a larger program, shown, not run
// and a ```text block marked <!-- output: command --> lists lines that command prints.
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createAppShim } from './helpers/app-shim'
import { runExample } from './helpers/example-server'
import { until } from './helpers/time'

const root = path.join(__dirname, '..')
const CODE = new Set(['js', 'javascript', 'ts', 'typescript', 'mjs', 'cjs'])
const MARKER = /^<!--\s*(file|typecheck|test|fragment|output)\b:?\s*(.*?)\s*-->$/

interface Block {
  where: string
  lang: string
  code: string
  kind?: string
  arg: string
}

function markdownFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z', '*.md'], { cwd: root, encoding: 'utf8' })
    .split('\0')
    .filter(Boolean)
}

function blocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(root, file), 'utf8').split('\n')
  const found: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!)
    if (!open?.[1]) continue
    let end = i + 1
    while (end < lines.length && lines[end] !== '```') end++
    let before = i - 1
    while (before >= 0 && lines[before]!.trim() === '') before--
    const marker = before >= 0 ? MARKER.exec(lines[before]!.trim()) : null
    found.push({
      where: `${file}:${i + 1}`,
      lang: open[1],
      code: lines.slice(i + 1, end).join('\n') + '\n',
      kind: marker?.[1],
      arg: marker?.[2] ?? '',
    })
    i = end
  }
  return found
}

const all = markdownFiles().flatMap(blocks)
const code = all.filter((b) => CODE.has(b.lang))
const readme = blocks('README.md')

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

describe('the code in the documents', () => {
  it('every JS/TS block is marked: a file, a type check, a test, or a fragment', () => {
    expect(code.length).toBeGreaterThan(5)
    const unmarked = code.filter((b) => !['file', 'typecheck', 'test', 'fragment'].includes(b.kind!))
    expect(unmarked.map((b) => b.where)).toEqual([])
    expect(code.filter((b) => b.kind === 'test').map((b) => b.arg)).toEqual(
      expect.arrayContaining(['quick start (test/readme.test.ts)']),
    )
    for (const b of code.filter((b) => b.kind === 'test'))
      expect(b.arg, b.where).toBe('quick start (test/readme.test.ts)')
  })

  it('a block marked as a file is that file, verbatim', () => {
    const files = code.filter((b) => b.kind === 'file')
    expect(files.map((b) => b.arg)).toEqual(
      expect.arrayContaining(['examples/node/server.js', 'examples/node/client.js']),
    )
    for (const b of files) expect(b.code, b.where).toBe(fs.readFileSync(path.join(root, b.arg), 'utf8'))
  })

  it('the blocks marked typecheck compile against src/', () => {
    const dir = path.join(root, '.tmp', 'readme-typecheck')
    fs.rmSync(dir, { recursive: true, force: true })
    fs.mkdirSync(dir, { recursive: true })
    const checked = code.filter((b) => b.kind === 'typecheck')
    expect(checked.length).toBeGreaterThan(0)
    checked.forEach((b, n) => {
      // A mini program's own globals, as the platform provides them.
      const globals = 'declare const wx: any\n'
      fs.writeFileSync(path.join(dir, `block-${n}.ts`), `// ${b.where}\n${globals}${b.code}\nexport {}\n`)
    })
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({ extends: '../../tsconfig.json', include: ['*.ts'] }),
    )
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
    let output = ''
    try {
      execFileSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8' })
    } catch (error: any) {
      output = String(error.stdout)
    }
    expect(output).toBe('')
  }, 60_000)

  it('quick start: the mini program (app.js and the page) logs in to the first example’s server, sends, and gets the push', async () => {
    const [app, page] = readme.filter((b) => b.kind === 'test' && b.arg.startsWith('quick start'))
    expect(app!.code).toContain('App(')
    expect(page!.code).toContain('Page(')
    const server = await runExample('examples/node/server.js')
    cleanups.push(() => server.stop())
    const dir = fs.mkdtempSync(path.join(root, '.tmp', 'quick-start-'))
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }))
    expect(app!.code).toContain("'wss://example.com/ws'")
    fs.writeFileSync(
      path.join(dir, 'app.js'),
      app!.code.replace("'wss://example.com/ws'", JSON.stringify(server.url)),
    )
    fs.mkdirSync(path.join(dir, 'pages', 'chat'), { recursive: true })
    fs.writeFileSync(path.join(dir, 'pages', 'chat', 'chat.js'), page!.code)

    const shim = createAppShim({ root: dir, url: server.url })
    cleanups.push(() => shim.wx.control.kill())
    const launched = shim.launch()
    cleanups.push(() => launched.bus.close())
    const chat = shim.open('pages/chat/chat')
    await until(() => launched.bus.state === 'ready', 'the mini program logged in to the example server')
    // The server made the openId up from the wx.login code; the app stored it for the next login.
    await until(() => shim.wx.getStorageSync('openId'), 'the openId of LoginOK stored')
    expect(shim.wx.getStorageSync('openId')).toBe('openid-code-1')

    chat.setData({ draft: 'hi' })
    chat.send()
    await until(() => chat.data.last === 'echo: hi', 'the pushed NewMessage on the page')
    await until(() => launched.bus.queued === 0, 'the message acknowledged')
    await until(() => server.lines.some((l) => l === 'server: openid-code-1 sent "hi"'), 'the server’s line')
  })

  it('`npm run example` prints what the README says it prints', async () => {
    const [output] = readme.filter((b) => b.kind === 'output' && b.arg === 'npm run example')
    expect(output).toBeDefined()
    const printed = await new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, [path.join(root, 'examples/node/main.js')], { cwd: root })
      let out = ''
      child.stdout.on('data', (chunk) => (out += chunk))
      child.stderr.on('data', (chunk) => (out += chunk))
      child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`exit ${code}:\n${out}`))))
    })
    const lines = printed.split('\n')
    for (const expected of output!.code.trim().split('\n')) {
      const pattern = new RegExp(`^${expected.split('…').map(literal).join('.*')}$`)
      expect(
        lines.some((line) => pattern.test(line)),
        `${expected}\nin:\n${printed}`,
      ).toBe(true)
    }
  }, 60_000)
})

function literal(text: string) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

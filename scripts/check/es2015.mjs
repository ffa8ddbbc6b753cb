// Check 1: every .js file in miniprogram_dist is ES2015 CommonJS that a mini program can run.
// acorn at ecmaVersion 2015 already refuses later syntax (async/await, `**`, `?.`, spread in objects...);
// the walk below catches what ES2015 allows but mini programs do not (https://developers.weixin.qq.com/miniprogram/dev/framework/runtime/js-support.html): generators
// (no regenerator in the base library), `Proxy` (missing on some old clients), `eval` and
// `new Function` (the runtime has neither), and `require` of anything but a sibling file (Build npm
// copies miniprogram_dist verbatim, so a bare `require('ws')` would fail at run time).

import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { parse } from 'acorn'

/** Every .js file under `dir`, recursively. */
export function listJs(dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...listJs(path))
    else if (entry.name.endsWith('.js')) out.push(path)
  }
  return out.sort()
}

/** Calls `visit(node, parent, key)` for every node of an ESTree AST (acorn-walk is not a dependency). */
export function walk(node, visit, parent = null, key = null) {
  visit(node, parent, key)
  for (const k of Object.keys(node)) {
    if (k === 'loc' || k === 'start' || k === 'end') continue
    const value = node[k]
    if (Array.isArray(value)) {
      for (const child of value) if (child && typeof child.type === 'string') walk(child, visit, node, k)
    } else if (value && typeof value.type === 'string') {
      walk(value, visit, node, k)
    }
  }
}

/** Whether an Identifier names a variable (not a property name, a method name or a label). */
function isReference(parent, key) {
  if (!parent) return true
  switch (parent.type) {
    case 'MemberExpression':
      return key !== 'property' || parent.computed
    case 'Property':
    case 'MethodDefinition':
      return key !== 'key' || parent.computed
    case 'LabeledStatement':
    case 'BreakStatement':
    case 'ContinueStatement':
      return false
    default:
      return true
  }
}

/** The violations in one file's source, as `line:column message` strings. */
export function findViolations(code, file) {
  const found = []
  let ast
  try {
    ast = parse(code, { ecmaVersion: 2015, sourceType: 'script', locations: true })
  } catch (error) {
    found.push(
      `${error.loc ? `${error.loc.line}:${error.loc.column}` : '?'} not ES2015 script: ${error.message}`,
    )
    // acorn's message for ES2017 syntax is a bare "Unexpected token": parse again with the newest
    // grammar so the walk below can name what is wrong (an async function, `await`...).
    try {
      ast = parse(code, { ecmaVersion: 'latest', sourceType: 'script', locations: true })
    } catch {
      return found
    }
  }
  const at = (node, message) => found.push(`${node.loc.start.line}:${node.loc.start.column} ${message}`)
  walk(ast, (node, parent, key) => {
    switch (node.type) {
      case 'FunctionDeclaration':
      case 'FunctionExpression':
      case 'ArrowFunctionExpression':
        if (node.generator) at(node, 'generator function')
        if (node.async) at(node, 'async function')
        break
      case 'YieldExpression':
        at(node, 'yield')
        break
      case 'AwaitExpression':
        at(node, 'await')
        break
      case 'Identifier':
        // `typeof Proxy` is the guard that makes a later use safe, not a use.
        if (!isReference(parent, key) || (parent.type === 'UnaryExpression' && parent.operator === 'typeof'))
          break
        if (node.name === 'Proxy') at(node, 'reference to Proxy')
        if (node.name === 'eval') at(node, 'reference to eval')
        break
      case 'NewExpression':
      case 'CallExpression': {
        const callee = node.callee
        if (callee.type !== 'Identifier') break
        if (callee.name === 'Function')
          at(node, `${node.type === 'NewExpression' ? 'new ' : ''}Function(...)`)
        if (callee.name === 'require') {
          const arg = node.arguments[0]
          const spec = arg && arg.type === 'Literal' && typeof arg.value === 'string' ? arg.value : null
          if (!spec || !/^\.\.?\//.test(spec)) {
            at(
              node,
              `require(${spec === null ? '<not a string>' : JSON.stringify(spec)}): only sibling files`,
            )
          } else {
            const target = resolve(dirname(file), spec)
            if (!existsSync(target) && !existsSync(`${target}.js`)) {
              at(node, `require(${JSON.stringify(spec)}): no such file in the build`)
            }
          }
        }
        break
      }
    }
  })
  return found
}

export async function checkEs2015({ root }) {
  const dir = join(root, 'miniprogram_dist')
  if (!existsSync(dir)) return { failures: ['miniprogram_dist/ is missing: run `npm run build` first'] }
  const files = listJs(dir)
  if (files.length === 0) return { failures: ['miniprogram_dist/ has no .js file'] }
  const failures = []
  const sizes = []
  for (const file of files) {
    const code = readFileSync(file, 'utf8')
    const name = relative(dir, file)
    sizes.push(`${name} ${Buffer.byteLength(code)} B`)
    for (const v of findViolations(code, file)) failures.push(`${name}:${v}`)
  }
  return { summary: sizes.join(', '), failures }
}

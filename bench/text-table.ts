/** The plain-text tables and spreads bench/nodes.ts prints. */

/** min–max of `values` (one figure when they round alike). */
export const spread = (values: number[], digits = 2) => {
  const lo = Math.min(...values)
  const hi = Math.max(...values)
  return lo.toFixed(digits) === hi.toFixed(digits)
    ? lo.toFixed(digits)
    : `${lo.toFixed(digits)}–${hi.toFixed(digits)}`
}

export function table(head: string[], rows: Array<Array<string | number>>): string {
  const cells = [head, ...rows.map((r) => r.map(String))]
  const widths = head.map((_, i) => Math.max(...cells.map((r) => (r[i] || '').length)))
  const line = (r: string[]) => `  ${r.map((cell, i) => cell.padEnd(widths[i]!)).join(' | ')}`.trimEnd()
  return [
    line(cells[0]!),
    `  ${widths.map((w) => '-'.repeat(w)).join('-|-')}`,
    ...cells.slice(1).map(line),
  ].join('\n')
}

/** µs, whole. */
export const us = (n: number) => n.toFixed(0)

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** The figures each print gives back: what `npm run bench` shows as JSON. */
export type Summary = Record<string, string | number>

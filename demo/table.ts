/** The demo's tables as text. */

/** Rows as a text table, the last row (the totals) under a rule. Names left-aligned, numbers right-aligned. */
export function render<T>(columns: Array<[string, (r: T) => string]>, rows: T[]): string {
  const cells = rows.map((r) => columns.map(([, cell]) => cell(r)))
  const widths = columns.map(([title], i) => Math.max(title.length, ...cells.map((row) => row[i]!.length)))
  const line = (row: string[]) =>
    row.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  const rule = widths.map((w) => '-'.repeat(w)).join('  ')
  const body = cells.slice(0, -1).map(line)
  return [line(columns.map(([title]) => title)), rule, ...body, rule, line(cells[cells.length - 1]!)].join(
    '\n',
  )
}

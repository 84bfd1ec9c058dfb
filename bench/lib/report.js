// Formatting of figures and markdown tables.

const MiB = 1024 * 1024

const finite = (n) => typeof n === 'number' && Number.isFinite(n)

export const fmtInt = (n) => (finite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')

export const fmtNum = (n, digits = 1) =>
  finite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'

/** Microseconds with a precision that suits their size. */
export const fmtUs = (n) => (!finite(n) ? 'n/a' : n >= 100 ? fmtInt(n) : n.toFixed(1))

export const fmtMs = (n, digits = 2) => (finite(n) ? n.toFixed(digits) : 'n/a')

export const fmtMiB = (n) => (finite(n) ? `${(n / MiB).toFixed(1)} MiB` : 'n/a')

export const fmtRatio = (x) => (!finite(x) ? 'n/a' : x >= 100 ? `${x.toFixed(0)}×` : `${x.toFixed(2)}×`)

export const verdict = (ok) => (ok === null || ok === undefined ? '–' : ok ? 'met' : '**missed**')

/**
 * A markdown table. `rows[0]` is the header; `align` is a string of 'l' / 'r' per column (default: first
 * column left, the rest right).
 */
export function table(rows, align) {
  const cols = rows[0].length
  const a = align ?? `l${'r'.repeat(cols - 1)}`
  const cells = rows.map((row) => row.map((c) => String(c ?? '')))
  const widths = Array.from({ length: cols }, (_, c) => Math.max(3, ...cells.map((row) => row[c].length)))
  const pad = (s, c) => (a[c] === 'r' ? s.padStart(widths[c]) : s.padEnd(widths[c]))
  const line = (row) => `| ${row.map((cell, c) => pad(cell, c)).join(' | ')} |`
  const rule = `|${widths.map((w, c) => (a[c] === 'r' ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`
  return [line(cells[0]), rule, ...cells.slice(1).map(line)].join('\n')
}

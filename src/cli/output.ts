// What the tool prints: a table of counts for a person or one JSON object for a script (stdout), and progress
// on long work (stderr, so a script reading stdout never sees it).

/** Prints `counts` as an aligned table, or as JSON with `json`. */
export function printCounts(
  counts: Readonly<Record<string, number>>,
  labels: Readonly<Record<string, string>>,
  json: boolean,
): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(counts)}\n`)
    return
  }
  const width = Math.max(...Object.values(labels).map((label) => label.length))
  for (const [key, label] of Object.entries(labels)) {
    process.stdout.write(
      `${label.padEnd(width)}  ${(counts[key] ?? 0).toLocaleString('en-US').padStart(10)}\n`,
    )
  }
}

/** Width of the progress bar, in characters. */
const BAR_WIDTH = 24

/**
 * Progress of long work on stderr: rewritten in place on a terminal, a line every `every` items otherwise; with
 * a known `total`, a bar and a percentage.
 */
export class Progress {
  readonly #what: string
  readonly #every: number
  readonly #tty = process.stderr.isTTY === true
  #total: number | undefined
  #done = 0
  #shownAt = 0

  constructor(what: string, every = 1000, total?: number) {
    this.#what = what
    this.#every = every
    this.#total = total
  }

  /** Sets (or corrects) how many items there are in all. */
  set total(total: number) {
    this.#total = total
  }

  add(n: number): void {
    this.#done += n
    const now = Date.now()
    if (this.#tty ? now - this.#shownAt >= 100 : this.#done - this.#shownAt >= this.#every) {
      this.#shownAt = this.#tty ? now : this.#done
      this.#show()
    }
  }

  end(): void {
    this.#show()
    if (this.#tty) process.stderr.write('\n')
  }

  #show(): void {
    const done = this.#done.toLocaleString('en-US')
    const total = this.#total
    let line = `${this.#what}: ${done}`
    if (total !== undefined && total > 0) {
      const fraction = Math.min(1, this.#done / total)
      const filled = Math.round(fraction * BAR_WIDTH)
      line = `${this.#what}: [${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] ${Math.floor(fraction * 100)}% ${done}/${total.toLocaleString('en-US')}`
    }
    process.stderr.write(this.#tty ? `\r${line}` : `${line}\n`)
  }
}

/** A note for a person on stderr (not part of the --json output). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`)
}

/** A value as a person reads it in a table: numbers grouped, null as `-`. */
function shown(value: string | number | null): string {
  if (value === null) return '-'
  return typeof value === 'number' ? value.toLocaleString('en-US') : value
}

/** Prints `label  value` rows, aligned (stdout). */
export function printFields(rows: ReadonlyArray<readonly [string, string | number | null]>): void {
  const width = Math.max(0, ...rows.map(([label]) => label.length))
  for (const [label, value] of rows) process.stdout.write(`${label.padEnd(width)}  ${shown(value)}\n`)
}

/** Prints a table with a header row, each column as wide as its widest cell (stdout). */
export function printColumns(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number | null>>,
): void {
  const cells = rows.map((row) => row.map(shown))
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)),
  )
  const line = (row: readonly string[]) =>
    `${row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()}\n`
  process.stdout.write(line(headers))
  for (const row of cells) process.stdout.write(line(row))
}

/** Prints `value` as one JSON line (stdout), for --json. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

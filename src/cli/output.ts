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

/** Progress of long work on stderr: rewritten in place on a terminal, a line every `every` items otherwise. */
export class Progress {
  readonly #what: string
  readonly #every: number
  readonly #tty = process.stderr.isTTY === true
  #done = 0
  #shownAt = 0

  constructor(what: string, every = 1000) {
    this.#what = what
    this.#every = every
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
    const line = `${this.#what}: ${this.#done.toLocaleString('en-US')}`
    process.stderr.write(this.#tty ? `\r${line}` : `${line}\n`)
  }
}

/** A note for a person on stderr (not part of the --json output). */
export function note(line: string): void {
  process.stderr.write(`${line}\n`)
}

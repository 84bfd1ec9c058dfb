// The one error the command line tool reports: a line for a person (no stack), and the exit code.

/** A failure the tool explains in one line; `exitCode` 2 for a usage error, 1 for everything else. */
export class CliError extends Error {
  readonly exitCode: number

  constructor(message: string, exitCode = 1) {
    super(message)
    this.exitCode = exitCode
  }
}

// How long one request may wait for Redis in all (redis.commandTimeout), shared by every command it sends: a
// read, then a write, then a replica confirmation together never hold a request past the command timeout.
// Only time spent inside store calls counts: the app's own work between them (a route handler) does not.

/** Below this many ms left, a command is not sent: it could not be answered in time. */
const MIN_LEFT_MS = 1

/** What is left of one command timeout, counted down while a store call of the request runs. */
export class Budget {
  /** While paused: the ms left. */
  #leftMs: number
  /** While running: the deadline, on performance.now()'s clock. */
  #until = 0
  /** Store calls running on this budget (a request may overlap two). */
  #running = 0

  constructor(ms: number) {
    this.#leftMs = ms
  }

  /** Counts time from now on, until the matching `pause()`; returns the budget. */
  run(): this {
    if (this.#running++ === 0) this.#until = performance.now() + this.#leftMs
    return this
  }

  /** Stops counting (once every `run()` is paused). */
  pause(): void {
    if (this.#running > 0 && --this.#running === 0) this.#leftMs = this.#until - performance.now()
  }

  /** Milliseconds left, at most `cap`. */
  left(cap: number): number {
    return Math.min(cap, this.#running > 0 ? this.#until - performance.now() : this.#leftMs)
  }

  /** True once too little is left to send another command. */
  get spent(): boolean {
    return this.left(Number.POSITIVE_INFINITY) < MIN_LEFT_MS
  }

  /** Time spent waiting for the first connection (redis.connectTimeout) does not count against the budget. */
  extend(ms: number): void {
    if (this.#running > 0) this.#until += ms
    else this.#leftMs += ms
  }
}

/** True when `budget` leaves too little for another command (never without a budget). */
export function isSpent(budget: Budget | undefined): boolean {
  return budget?.spent === true
}

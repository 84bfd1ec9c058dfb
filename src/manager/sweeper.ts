// The background sweep of expired sessions: one run at a time, in batches (yielding between them so a large
// backlog never blocks requests for long), stopped before its next batch by close(), which awaits it.

import { setImmediate as nextTurn } from 'node:timers/promises'
import type { Clock } from '../clock.js'
import type { TieredSessionError } from '../errors.js'
import { ErrorCodes, wrapError } from '../errors.js'
import type { MemoryTier } from '../tiers/memory-tier.js'

/** Options of {@link Sweeper}. */
export interface SweeperOptions {
  /** The tier below memory that holds expired rows to remove (the SQLite file), if any. */
  readonly disk: {
    sweep(now: number, limit: number, onRemoved?: (userId: string | null) => void): number
  } | null
  readonly memory: MemoryTier
  /** Most rows removed per batch (one transaction). */
  readonly batchSize: number
  readonly intervalMs: number
  readonly clock: Clock
  /** Sessions removed by a run (counted even when a later batch failed). */
  readonly onSwept: (removed: number) => void
  /** Hears the user of each session the sweep removed (local mode: each is an `expired` lifecycle step). */
  readonly onExpired?: (userId: string | null) => void
  readonly report: (error: TieredSessionError) => void
}

/** Runs the sweep on an unref'd interval and on demand. */
export class Sweeper {
  readonly #options: SweeperOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined
  #stopped = false

  constructor(options: SweeperOptions) {
    this.#options = options
  }

  /** Starts the interval; the timer never keeps the process alive. */
  start(): void {
    this.#timer = setInterval(() => {
      this.run().catch(() => {
        // NB: run() has already reported the error; nothing else to do for a background run.
      })
    }, this.#options.intervalMs)
    this.#timer.unref()
  }

  /**
   * Runs the sweep now, or joins the run in progress; resolves to how many sessions it removed. `onBatch` hears
   * how many each batch removed (a run this call started).
   */
  run(onBatch?: (removed: number) => void): Promise<number> {
    this.#running ??= this.#sweep(onBatch).finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #sweep(onBatch: ((removed: number) => void) | undefined): Promise<number> {
    const { disk, memory, batchSize, clock } = this.#options
    let total = 0
    try {
      while (disk !== null && !this.#stopped) {
        const removed = disk.sweep(clock.now(), batchSize, this.#options.onExpired)
        total += removed
        onBatch?.(removed)
        if (removed < batchSize) break
        // NB: yield between batches so a large backlog never blocks requests for long.
        await nextTurn()
      }
      if (!this.#stopped) memory.sweep(clock.now())
    } catch (error) {
      const wrapped = wrapError(ErrorCodes.DISK_IO, 'sweeping expired sessions failed', error)
      this.#options.report(wrapped)
      throw wrapped
    } finally {
      this.#options.onSwept(total)
    }
    return total
  }

  /** Stops the interval and the run in progress (before its next batch), and waits for it. */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running?.catch(() => undefined)
  }
}

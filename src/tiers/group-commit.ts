// Group commit: writes that arrive close together share one transaction, and each is acknowledged
// only after that transaction has committed.

/** Options of {@link GroupCommit}. */
export interface GroupCommitOptions<Op, R> {
  /** Most operations in one batch; a full batch commits at once. */
  readonly maxBatchSize: number
  /**
   * Runs a batch in one transaction and returns one result per operation, in order (an Error for an
   * operation that failed on its own). Throwing fails the whole batch: nothing in it was committed.
   */
  readonly commit: (ops: readonly Op[]) => ReadonlyArray<R | Error>
}

interface Pending<Op, R> {
  readonly op: Op
  readonly onCommit: ((result: R) => void) | undefined
  readonly resolve: (result: R) => void
  readonly reject: (error: unknown) => void
}

function ignore(): void {}

/** Collects operations and commits them together on the next turn of the event loop. */
export class GroupCommit<Op, R> {
  readonly #options: GroupCommitOptions<Op, R>
  #queue: Pending<Op, R>[] = []
  #scheduled: NodeJS.Immediate | undefined
  #batches = 0
  #running = false
  /** While true, batches wait (a checkpoint is running); an explicit {@link GroupCommit.commitNow} still commits. */
  #held = false

  constructor(options: GroupCommitOptions<Op, R>) {
    this.#options = options
  }

  /** Operations waiting for their transaction. */
  get pending(): number {
    return this.#queue.length
  }

  /** Transactions committed (or attempted) so far. */
  get batches(): number {
    return this.#batches
  }

  /**
   * Queues `op`. The promise settles after its transaction; `onCommit` runs synchronously right after
   * the commit, before any other code, so a cache can be updated without a window of staleness.
   */
  enqueue(op: Op, onCommit?: (result: R) => void): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#queue.push({ op, onCommit, resolve, reject })
      if (this.#queue.length >= this.#options.maxBatchSize && !this.#held) this.commitNow()
      else this.#schedule()
    })
  }

  /** Queues `op` with nobody waiting for it (a background write); `onFailure` hears if it was not committed. */
  enqueueDetached(op: Op, onFailure: (error: unknown) => void): void {
    this.#queue.push({ op, onCommit: undefined, resolve: ignore, reject: onFailure })
    if (this.#queue.length >= this.#options.maxBatchSize && !this.#held) this.commitNow()
    else this.#schedule()
  }

  /** Holds batches back (true) until released (false), when what waits is committed on the next turn. */
  hold(held: boolean): void {
    this.#held = held
    if (!held && this.#queue.length > 0) this.#schedule()
  }

  #schedule(): void {
    if (this.#held) return
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined
      if (!this.#held) this.commitNow()
    })
  }

  /** Commits everything queued now, in batches of at most `maxBatchSize`. */
  commitNow(): void {
    // NB: not re-entrant. Code run by an onCommit (a spill, an event listener) may queue writes; committing
    // them in the middle of this batch would let this batch's remaining onCommits install older records.
    if (this.#running) {
      this.#schedule()
      return
    }
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled)
      this.#scheduled = undefined
    }
    this.#running = true
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, this.#options.maxBatchSize)
        this.#run(batch)
      }
    } finally {
      this.#running = false
    }
  }

  #run(batch: Pending<Op, R>[]): void {
    this.#batches++
    let results: ReadonlyArray<R | Error>
    try {
      results = this.#options.commit(batch.map((p) => p.op))
    } catch (error) {
      for (const p of batch) p.reject(error)
      return
    }
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i] as Pending<Op, R>
      const result = results[i]
      if (result instanceof Error) {
        p.reject(result)
        continue
      }
      try {
        p.onCommit?.(result as R)
      } catch (error) {
        // NB: the write is durable, so it stays acknowledged; the failure is a bug and surfaces as one.
        queueMicrotask(() => {
          throw error
        })
      }
      p.resolve(result as R)
    }
  }
}

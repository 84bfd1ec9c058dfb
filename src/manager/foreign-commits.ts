// Local mode: commits another connection made to the SQLite file (the command line tool, another process on the
// same file), noticed through SQLite's `data_version` on a short unref'd timer; memory copies whose row is gone
// or has another version or expiry are dropped, so the app stops serving what was changed within a second.

import { setImmediate as nextTurn } from 'node:timers/promises'
import type { TieredSessionError } from '../errors.js'
import { ErrorCodes, wrapError } from '../errors.js'
import type { MemoryTier } from '../tiers/memory-tier.js'

/** How often the file is checked for commits by other connections, in ms (one PRAGMA when nothing changed). */
export const FOREIGN_CHECK_MS = 250

/** Memory copies compared with their rows per turn of the event loop. */
const CHECK_BATCH = 1000

/**
 * Most memory copies a pass compares with their rows (about 0.3 s for 60,000 on this kind of machine); with more,
 * the pass drops every copy instead, so the one-second promise holds however many sessions memory holds.
 */
export const MAX_COMPARED = 50_000

/** What the check needs of the disk tier. */
export interface ForeignCommitsDisk {
  /** True when another connection committed since the last call. */
  changedElsewhere(): boolean
  /** The version and expiry of the rows of `keys`; a key without a row is absent. */
  stampsOf(keys: readonly string[]): ReadonlyMap<string, { version: number; expiresAt: number }>
  /** Commits pending touches, so the rows hold the expiries memory holds. */
  commitTouches(): void
}

/** Options of {@link ForeignCommits}. */
export interface ForeignCommitsOptions {
  readonly disk: ForeignCommitsDisk
  readonly memory: MemoryTier
  /** @default FOREIGN_CHECK_MS */
  readonly intervalMs?: number
  /** @default MAX_COMPARED */
  readonly maxCompared?: number
  /** Memory copies dropped by one pass (the store counts them as invalidations). */
  readonly onDropped: (count: number) => void
  readonly report: (error: TieredSessionError) => void
}

/**
 * Keeps the memory tier of a local-mode store a cache of what the file holds, whoever wrote it. A copy whose row
 * is gone or holds another version or expiry is dropped (memory in local mode only ever holds
 * committed rows, so dropping loses nothing; a pending touch stays queued on the disk tier).
 */
export class ForeignCommits {
  readonly #options: ForeignCommitsOptions
  #timer: NodeJS.Timeout | undefined
  #running: Promise<number> | undefined
  #stopped = false

  constructor(options: ForeignCommitsOptions) {
    this.#options = options
  }

  /** Starts the unref'd timer. */
  start(): void {
    this.#timer = setInterval(() => {
      this.check().catch(() => {
        // NB: check() has reported the error; a background run has no caller to tell.
      })
    }, this.#options.intervalMs ?? FOREIGN_CHECK_MS)
    this.#timer.unref()
  }

  /** Looks for foreign commits now (joining a pass under way); resolves to how many memory copies were dropped. */
  check(): Promise<number> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  async #pass(): Promise<number> {
    const { disk, memory } = this.#options
    let dropped = 0
    try {
      // NB: another commit during a pass may have changed a copy already compared: go again until none came.
      while (!this.#stopped && disk.changedElsewhere()) {
        if (memory.entries === 0) continue
        disk.commitTouches()
        if (memory.entries > (this.#options.maxCompared ?? MAX_COMPARED)) {
          // NB: memory in local mode holds only committed rows (pending touches stay queued): nothing is lost.
          dropped += memory.entries
          memory.clear()
          continue
        }
        const sids = [...memory.leastRecentlyUsed()]
        for (let i = 0; i < sids.length && !this.#stopped; i += CHECK_BATCH) {
          if (i > 0) await nextTurn()
          dropped += this.#dropStale(sids.slice(i, i + CHECK_BATCH))
        }
      }
    } catch (error) {
      const wrapped = wrapError(ErrorCodes.DISK_IO, 'checking for changes by other connections failed', error)
      this.#options.report(wrapped)
      throw wrapped
    } finally {
      if (dropped > 0) this.#options.onDropped(dropped)
    }
    return dropped
  }

  /**
   * Drops the memory copies of `sids` whose row is gone or has another version or expiry (any write raises the
   * version; a touch moves the expiry); returns how many. Synchronous: nothing changes between look and drop.
   */
  #dropStale(sids: readonly string[]): number {
    const { disk, memory } = this.#options
    const stamps = disk.stampsOf(sids)
    let dropped = 0
    for (const sid of sids) {
      const copy = memory.peekMeta(sid)
      if (copy === undefined) continue
      const row = stamps.get(sid)
      if (row !== undefined && row.version === copy.version && row.expiresAt === copy.expiresAt) continue
      memory.delete(sid)
      dropped++
    }
    return dropped
  }

  /** Stops the timer and waits for a pass under way (it stops before its next batch). */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running?.catch(() => undefined)
  }
}

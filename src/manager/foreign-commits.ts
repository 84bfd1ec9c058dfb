// Local mode: commits another connection made to the SQLite file (the command line tool, another process on the
// same file), noticed through SQLite's `data_version` on a short unref'd timer; memory copies that no longer
// match their row are dropped, so the app stops serving what the other connection changed within a second.

import { setImmediate as nextTurn } from 'node:timers/promises'
import type { TieredSessionError } from '../errors.js'
import { ErrorCodes, isTieredSessionError, wrapError } from '../errors.js'
import type { MemoryTier } from '../tiers/memory-tier.js'
import type { StoredRecord } from '../tiers/tier.js'

/** How often the file is checked for commits by other connections, in ms (one PRAGMA when nothing changed). */
export const FOREIGN_CHECK_MS = 250

/** Memory copies compared with their rows per turn of the event loop. */
const CHECK_BATCH = 1000

/** What the check needs of the disk tier. */
export interface ForeignCommitsDisk {
  /** True when another connection committed since the last call. */
  changedElsewhere(): boolean
  /** The live row of `sid`, or undefined. */
  get(sid: string): StoredRecord | undefined
  /** Commits pending touches, so the rows hold the expiries memory holds. */
  commitTouches(): void
}

/** Options of {@link ForeignCommits}. */
export interface ForeignCommitsOptions {
  readonly disk: ForeignCommitsDisk
  readonly memory: MemoryTier
  /** @default FOREIGN_CHECK_MS */
  readonly intervalMs?: number
  /** Memory copies dropped by one pass (the store counts them as invalidations). */
  readonly onDropped: (count: number) => void
  readonly report: (error: TieredSessionError) => void
}

/**
 * Keeps the memory tier of a local-mode store a cache of what the file holds, whoever wrote it. A copy whose row
 * is gone, expired, or holds another version or payload is dropped (memory in local mode only ever holds
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
        const sids = [...memory.leastRecentlyUsed()]
        for (let i = 0; i < sids.length && !this.#stopped; i += CHECK_BATCH) {
          if (i > 0) await nextTurn()
          for (const sid of sids.slice(i, i + CHECK_BATCH)) if (this.#stale(sid)) dropped++
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

  /** Drops the memory copy of `sid` unless its row holds exactly it; true when dropped. */
  #stale(sid: string): boolean {
    const { disk, memory } = this.#options
    const copy = memory.peek(sid)
    if (copy === undefined) return false
    let row: StoredRecord | undefined
    try {
      row = disk.get(sid)
    } catch (error) {
      // NB: a row that does not decode vouches for nothing: the copy goes (a read of it reports the row).
      if (!isTieredSessionError(error) || error.code !== ErrorCodes.DECODE_FAILED) throw error
      row = undefined
    }
    if (
      row !== undefined &&
      row.version === copy.version &&
      row.expiresAt === copy.expiresAt &&
      row.payload === copy.payload
    )
      return false
    memory.delete(sid)
    return true
  }

  /** Stops the timer and waits for a pass under way (it stops before its next batch). */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#running?.catch(() => undefined)
  }
}

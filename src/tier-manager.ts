// The tier manager: the read path (memory, then disk, promoting on a disk hit), the write path (disk commit,
// then memory), expiry and the background sweep, and the per-user index. Knows nothing of Express.

import { setImmediate as nextTurn } from 'node:timers/promises'
import type { SessionObject } from './codec.js'
import type { ManagerEvents, SessionEngine, SessionEntry, SessionPatch, UserSession } from './engine-core.js'
import { EngineCore } from './engine-core.js'
import type { TieredSessionError } from './errors.js'
import { ErrorCodes, isTieredSessionError, wrapError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { assertValidSid, isValidSid, normalizeUserId } from './session-fields.js'
import type { SpillResult } from './spiller.js'
import type { StoreStats } from './stats.js'
import { DiskTier } from './tiers/disk-tier.js'
import type { RecordInput, StoredRecord } from './tiers/tier.js'

export type { ManagerEvents, SessionEntry, SessionPatch, UserSession } from './engine-core.js'

/** Local mode: the disk tier is the authority, memory a cache of it. All methods are safe to call concurrently. */
export class TierManager extends EngineCore implements SessionEngine {
  readonly disk: DiskTier
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping: Promise<number> | undefined

  constructor(options: ResolvedOptions, events: ManagerEvents) {
    // Local mode: every record in memory is already durable on disk, so a spill only drops memory copies.
    super(options, events)
    if (options.disk === null) throw new Error('local mode needs the disk tier')
    this.disk = new DiskTier({
      ...options.disk,
      clock: options.clock,
      onError: (error) => this.report(error),
    })
    this.spiller.start()
    this.#sweepTimer = setInterval(() => {
      this.sweep().catch(() => {
        // NB: sweep() has already reported the error; nothing else to do for a background run.
      })
    }, options.sweepIntervalMs)
    this.#sweepTimer.unref()
  }

  /** The live session with its absolute expiry (ms), or undefined. */
  getEntry(sid: string): SessionEntry | undefined {
    this.checkOpen()
    if (!isValidSid(sid)) {
      this.counters.misses++
      return undefined
    }
    const cached = this.memory.get(sid)
    if (cached !== undefined) {
      const session = this.decode(cached)
      if (session !== undefined) {
        this.counters.hits.memory++
        return { session, expiresAt: cached.expiresAt, version: cached.version }
      }
      this.memory.delete(sid)
    }
    let stored: StoredRecord | undefined
    try {
      stored = this.disk.get(sid)
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        this.report(error)
        this.counters.misses++
        return undefined
      }
      this.fail(error)
    }
    const session = stored === undefined ? undefined : this.decode(stored)
    if (stored === undefined || session === undefined) {
      this.counters.misses++
      return undefined
    }
    this.counters.hits.disk++
    const promoted = this.memory.set(sid, stored)
    this.counters.promotions++
    this.events.promote({ bytes: promoted.bytes })
    this.afterMemoryGrew()
    return { session, expiresAt: stored.expiresAt, version: stored.version }
  }

  /**
   * Applies a request's changes onto the latest stored version, atomically: the keys in `set` (as JSON
   * text) are replaced, those in `unset` removed, the cookie replaced; every other key keeps what the
   * latest write left. Resolves to false when the session no longer exists (destroyed or expired
   * meanwhile): it is not brought back.
   */
  async merge(sid: string, patch: SessionPatch): Promise<boolean> {
    this.checkOpen()
    assertValidSid(sid)
    const now = this.now()
    const prepared = this.preparePatch(patch, now)
    try {
      // NB: two requests that change different keys both keep their change (the same key: the last one to
      // commit wins).
      return await this.#patchRow(sid, (current) => this.applyPatch(current, prepared, now))
    } catch (error) {
      return this.fail(error)
    }
  }

  /**
   * Runs `change` on the latest row inside the write transaction, so it never undoes a write queued before it;
   * resolves to whether a row was written (false: the session is missing or expired, or nothing changed).
   */
  async #patchRow(sid: string, change: (current: StoredRecord) => RecordInput | undefined): Promise<boolean> {
    let written = false
    await this.disk.write({ type: 'patch', sid, patch: change }, (stored) => {
      if (stored === undefined) return
      written = true
      this.memory.set(sid, stored as StoredRecord)
      this.counters.writes++
      this.afterMemoryGrew()
    })
    return written
  }

  /** Stores a session; resolves once its transaction has committed. */
  async set(sid: string, session: SessionObject): Promise<void> {
    this.checkOpen()
    const now = this.now()
    const record = this.prepareWrite(sid, session, now)
    // NB: a session already expired is a delete, as connect-redis does; storing it would only waste space.
    if (record.expiresAt <= now) return this.destroy(sid)
    try {
      await this.disk.set(sid, record, (stored) => {
        this.memory.set(sid, stored)
        this.counters.writes++
        this.afterMemoryGrew()
      })
    } catch (error) {
      this.fail(error)
    }
  }

  /**
   * Slides the expiry of a live session forward to the session's `cookie.expires` (or ttl), keeping the
   * stored data and replacing only its `cookie`. A missing or expired session stays missing, and a touch
   * never shortens a session (a later write may have given it a longer life).
   */
  async touch(sid: string, session: SessionObject): Promise<void> {
    const plan = await this.planTouch(sid, session, (id) => this.destroy(id))
    if (plan === undefined) return
    const { cookie, expiresAt } = plan
    try {
      await this.#patchRow(sid, (current) => this.applyTouch(current, cookie, expiresAt))
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        this.report(error)
        return
      }
      this.fail(error)
    }
  }

  /** Removes a session from every tier; resolves once committed. */
  async destroy(sid: string): Promise<void> {
    this.checkOpen()
    if (!isValidSid(sid)) return
    try {
      await this.disk.delete(sid, () => {
        this.memory.delete(sid)
        this.counters.destroys++
      })
    } catch (error) {
      this.fail(error)
    }
  }

  #onCorrupt = (error: TieredSessionError): void => this.report(error)

  /** Every live session by id. */
  all(): Record<string, SessionObject> {
    this.checkOpen()
    return this.sessionsById(this.#rows(() => this.disk.rows(this.#onCorrupt)))
  }

  #rows<T>(query: () => T): T {
    try {
      return query()
    } catch (error) {
      return this.fail(error)
    }
  }

  /** Ids of every live session. */
  ids(): string[] {
    this.checkOpen()
    return this.#rows(() => this.disk.ids())
  }

  /** Number of live sessions. */
  length(): number {
    this.checkOpen()
    return this.#rows(() => this.disk.countLive())
  }

  /** Removes every session. */
  async clear(): Promise<void> {
    this.checkOpen()
    try {
      await this.disk.clear(() => this.memory.clear())
    } catch (error) {
      this.fail(error)
    }
  }

  /** The live sessions of one user. */
  listByUser(userId: unknown): UserSession[] {
    this.checkOpen()
    const key = normalizeUserId(userId)
    if (key === null) return []
    return this.userSessions(this.#rows(() => this.disk.rowsOfUser(key, this.#onCorrupt)))
  }

  /** Destroys every session of one user except the ids in `except`; resolves to how many. */
  async destroyByUser(userId: unknown, except: readonly string[] = []): Promise<number> {
    this.checkOpen()
    const key = normalizeUserId(userId)
    if (key === null) return 0
    const keep = new Set(except)
    const sids = this.#rows(() => this.disk.rowsOfUser(key, this.#onCorrupt))
      .map((row) => row.sid)
      .filter((sid) => !keep.has(sid))
    await Promise.all(sids.map((sid) => this.destroy(sid)))
    return sids.length
  }

  /** Commits every queued write and runs a spill cycle now. */
  async flush(): Promise<SpillResult> {
    this.checkOpen()
    this.disk.commitNow()
    // NB: let the acknowledgements of the writes just committed run before we report back.
    await nextTurn()
    return this.spiller.cycle()
  }

  /** Deletes expired sessions from disk (in transactions of `sweepBatchSize` rows) and memory. */
  sweep(): Promise<number> {
    this.checkOpen()
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined
    })
    return this.#sweeping
  }

  async #sweep(): Promise<number> {
    let total = 0
    try {
      for (;;) {
        if (this.closed) break
        const now = this.options.clock.now()
        const removed = this.disk.deleteExpired(now, this.options.sweepBatchSize)
        total += removed
        if (removed < this.options.sweepBatchSize) break
        // NB: yield between batches so a large backlog never blocks requests for long.
        await nextTurn()
      }
      if (!this.closed) this.memory.purgeExpired(this.options.clock.now())
    } catch (error) {
      const wrapped = wrapError(ErrorCodes.DISK_IO, 'sweeping expired sessions failed', error)
      this.report(wrapped)
      throw wrapped
    } finally {
      this.counters.expired += total
    }
    return total
  }

  /** A snapshot of the counters and tier sizes. */
  stats(): StoreStats {
    return this.snapshot(this.disk, null, 0)
  }

  /** Commits everything, stops the timers and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.spiller.stop()
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    await this.#sweeping?.catch(() => undefined)
    this.closed = true
    this.disk.close()
    await nextTurn()
    this.memory.close()
  }
}

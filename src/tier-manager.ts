// The tier manager: the read path (memory, then disk, promoting on a disk hit), the write path (disk commit,
// then memory), expiry and the background sweep, and the per-user index. Knows nothing of Express.

import { setImmediate as nextTurn } from 'node:timers/promises'
import type { SessionObject } from './codec.js'
import { decodeSession, encodeSession } from './codec.js'
import type { ErrorCode } from './errors.js'
import { ErrorCodes, isTieredSessionError, TieredSessionError, wrapError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { assertValidSid, expiresAtOf, isValidSid, normalizeUserId, userIdOf } from './session-fields.js'
import type { SpillResult } from './spiller.js'
import { Spiller } from './spiller.js'
import type { StoreStats } from './stats.js'
import { Counters } from './stats.js'
import { DiskTier } from './tiers/disk-tier.js'
import { MemoryTier } from './tiers/memory-tier.js'
import type { StoredRecord } from './tiers/tier.js'

/** A session of one user, as listByUser returns it. */
export interface UserSession<S = SessionObject> {
  /** The session id. */
  readonly sid: string
  /** The decoded session. */
  readonly session: S
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
}

/** A live session and its absolute expiry. */
export interface SessionEntry {
  readonly session: SessionObject
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
}

/** The changes one request made to a session, as `merge` applies them. */
export interface SessionPatch {
  /** Top-level keys set, each as its JSON text. */
  readonly set: Readonly<Record<string, string>>
  /** Top-level keys deleted. */
  readonly unset: readonly string[]
  /** The session's cookie to store (its `expires` sets the expiry), or undefined to keep the stored one. */
  readonly cookie?: unknown
}

/** Where the manager reports what happens; the store turns these into events. */
export interface ManagerEvents {
  spill(result: SpillResult): void
  promote(info: { readonly bytes: number }): void
  error(error: TieredSessionError): void
}

/** Coordinates the tiers. All public methods are safe to call concurrently. */
export class TierManager {
  readonly memory: MemoryTier
  readonly disk: DiskTier
  readonly counters = new Counters()
  readonly #options: ResolvedOptions
  readonly #events: ManagerEvents
  readonly #spiller: Spiller
  #sweepTimer: NodeJS.Timeout | undefined
  #sweeping: Promise<number> | undefined
  #closed = false
  #diskEntries = 0

  constructor(options: ResolvedOptions, events: ManagerEvents) {
    this.#options = options
    this.#events = events
    this.memory = new MemoryTier({ maxBytes: options.memory.maxBytes, clock: options.clock })
    this.disk = new DiskTier({ ...options.disk, clock: options.clock })
    this.#spiller = new Spiller({
      memory: this.memory,
      highWatermark: options.memory.highWatermark,
      lowWatermark: options.memory.lowWatermark,
      intervalMs: options.spillIntervalMs,
      onSpill: (result) => {
        this.counters.spills += result.sessions
        this.#events.spill(result)
      },
      onError: (error) => this.#report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error)),
    })
    this.#spiller.start()
    this.#sweepTimer = setInterval(() => {
      this.sweep().catch(() => {
        // NB: sweep() has already reported the error; nothing else to do for a background run.
      })
    }, options.sweepIntervalMs)
    this.#sweepTimer.unref()
  }

  #checkOpen(): void {
    if (this.#closed) throw new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store is closed')
  }

  /** Counts an error by code and hands it to the error event. */
  #report(error: TieredSessionError): void {
    this.counters.countError(error.code)
    this.#events.error(error)
  }

  /** Counts an error, emits it as an `error` event, and throws it to the caller. */
  #fail(
    error: unknown,
    code: ErrorCode = ErrorCodes.DISK_IO,
    message = 'a session store operation failed',
  ): never {
    const wrapped = wrapError(code, message, error)
    this.#report(wrapped)
    throw wrapped
  }

  /** Runs a spill cycle right away when memory crossed the high watermark. */
  #afterMemoryGrew(): void {
    if (!this.#spiller.overHighWatermark) return
    try {
      this.#spiller.cycle()
    } catch (error) {
      this.#report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error))
    }
  }

  #decode(record: StoredRecord): SessionObject | undefined {
    try {
      return decodeSession(record.payload)
    } catch (error) {
      this.#report(error as TieredSessionError)
      return undefined
    }
  }

  /** The live session, or undefined. Memory first; a disk hit is promoted into memory. */
  get(sid: string): SessionObject | undefined {
    return this.getEntry(sid)?.session
  }

  /** The live session with its absolute expiry (ms), or undefined. */
  getEntry(sid: string): SessionEntry | undefined {
    this.#checkOpen()
    if (!isValidSid(sid)) {
      this.counters.misses++
      return undefined
    }
    const cached = this.memory.get(sid)
    if (cached !== undefined) {
      const session = this.#decode(cached)
      if (session !== undefined) {
        this.counters.hits.memory++
        return { session, expiresAt: cached.expiresAt }
      }
      this.memory.delete(sid)
    }
    let stored: StoredRecord | undefined
    try {
      stored = this.disk.get(sid)
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        this.#report(error)
        this.counters.misses++
        return undefined
      }
      this.#fail(error)
    }
    const session = stored === undefined ? undefined : this.#decode(stored)
    if (stored === undefined || session === undefined) {
      this.counters.misses++
      return undefined
    }
    this.counters.hits.disk++
    const promoted = this.memory.set(sid, stored)
    this.counters.promotions++
    this.#events.promote({ bytes: promoted.bytes })
    this.#afterMemoryGrew()
    return { session, expiresAt: stored.expiresAt }
  }

  /** The current time of the store's clock, in ms. */
  now(): number {
    return this.#options.clock.now()
  }

  /** The lifetime (ms) a write of `session` would get: its cookie's remaining life, or the ttl. */
  lifetimeMs(session: SessionObject): number {
    const now = this.now()
    return expiresAtOf(session, now, this.#options) - now
  }

  /**
   * Applies a request's changes onto the latest stored version, atomically: the keys in `set` (as JSON
   * text) are replaced, those in `unset` removed, the cookie replaced; every other key keeps what the
   * latest write left. Resolves to false when the session no longer exists (destroyed or expired
   * meanwhile): it is not brought back.
   */
  async merge(sid: string, patch: SessionPatch): Promise<boolean> {
    this.#checkOpen()
    assertValidSid(sid)
    const now = this.now()
    let applied = false
    try {
      await this.disk.write(
        {
          type: 'patch',
          sid,
          // NB: runs inside the write transaction on the latest row: two requests that change different
          // keys both keep their change (the same key: the last one to commit wins).
          patch: (current) => {
            const latest = decodeSession(current.payload)
            for (const key of patch.unset) delete latest[key]
            for (const [key, json] of Object.entries(patch.set)) {
              Object.defineProperty(latest, key, {
                value: JSON.parse(json),
                enumerable: true,
                writable: true,
                configurable: true,
              })
            }
            if (patch.cookie !== undefined) latest.cookie = patch.cookie
            const { payload, bytes } = encodeSession(latest)
            this.#checkSize(bytes)
            const expiresAt = expiresAtOf(latest, now, this.#options)
            return { payload, expiresAt, userId: userIdOf(latest, this.#options) }
          },
        },
        (stored) => {
          if (stored === undefined) return
          applied = true
          this.memory.set(sid, stored as StoredRecord)
          this.counters.writes++
          this.#afterMemoryGrew()
        },
      )
    } catch (error) {
      this.#fail(error)
    }
    return applied
  }

  #checkSize(bytes: number): void {
    if (bytes > this.#options.maxSessionBytes) {
      throw new TieredSessionError(
        ErrorCodes.SESSION_TOO_LARGE,
        `the session is ${bytes} bytes serialized, over maxSessionBytes (${this.#options.maxSessionBytes})`,
      )
    }
  }

  /** Stores a session; resolves once its transaction has committed. */
  async set(sid: string, session: SessionObject): Promise<void> {
    this.#checkOpen()
    let record: { payload: string; expiresAt: number; userId: string | null }
    const now = this.#options.clock.now()
    try {
      assertValidSid(sid)
      const { payload, bytes } = encodeSession(session)
      this.#checkSize(bytes)
      record = {
        payload,
        expiresAt: expiresAtOf(session, now, this.#options),
        userId: userIdOf(session, this.#options),
      }
    } catch (error) {
      this.#fail(error, ErrorCodes.ENCODE_FAILED, 'the session could not be stored')
    }
    // NB: a session already expired is a delete, as connect-redis does; storing it would only waste space.
    if (record.expiresAt <= now) return this.destroy(sid)
    try {
      await this.disk.set(sid, record, (stored) => {
        this.memory.set(sid, stored)
        this.counters.writes++
        this.#afterMemoryGrew()
      })
    } catch (error) {
      this.#fail(error)
    }
  }

  /**
   * Slides the expiry of a live session forward to the session's `cookie.expires` (or ttl), keeping the
   * stored data and replacing only its `cookie`. A missing or expired session stays missing, and a touch
   * never shortens a session (a later write may have given it a longer life).
   */
  async touch(sid: string, session: SessionObject): Promise<void> {
    this.#checkOpen()
    if (!isValidSid(sid)) return
    const now = this.#options.clock.now()
    let cookie: unknown
    let expiresAt: number
    try {
      // NB: copy the cookie now; the caller may change its object before the transaction runs.
      cookie = session.cookie === undefined ? undefined : JSON.parse(JSON.stringify(session.cookie))
      expiresAt = expiresAtOf({ ...session, cookie }, now, this.#options)
    } catch (error) {
      this.#fail(error, ErrorCodes.ENCODE_FAILED, 'the session cookie could not be stored')
    }
    if (expiresAt <= now) return this.destroy(sid)
    try {
      await this.disk.write(
        {
          type: 'patch',
          sid,
          // NB: runs inside the transaction on the latest row, so a touch never undoes a write queued before it.
          patch: (current) => {
            if (current.expiresAt >= expiresAt) return undefined
            const latest = decodeSession(current.payload)
            latest.cookie = cookie
            return { payload: encodeSession(latest).payload, expiresAt, userId: current.userId }
          },
        },
        (stored) => {
          if (stored === undefined) return
          this.memory.set(sid, stored as StoredRecord)
          this.counters.writes++
          this.#afterMemoryGrew()
        },
      )
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        this.#report(error)
        return
      }
      this.#fail(error)
    }
  }

  /** Removes a session from every tier; resolves once committed. */
  async destroy(sid: string): Promise<void> {
    this.#checkOpen()
    if (!isValidSid(sid)) return
    try {
      await this.disk.delete(sid, () => {
        this.memory.delete(sid)
        this.counters.destroys++
      })
    } catch (error) {
      this.#fail(error)
    }
  }

  #onCorrupt = (error: TieredSessionError): void => this.#report(error)

  /** Every live session by id. */
  all(): Record<string, SessionObject> {
    this.#checkOpen()
    const out: Record<string, SessionObject> = {}
    for (const row of this.#rows(() => this.disk.rows(this.#onCorrupt))) {
      const session = this.#decode(row)
      // NB: defineProperty, so a sid such as "__proto__" is a key like any other.
      if (session !== undefined) {
        Object.defineProperty(out, row.sid, {
          value: session,
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
    }
    return out
  }

  #rows<T>(query: () => T): T {
    try {
      return query()
    } catch (error) {
      return this.#fail(error)
    }
  }

  /** Ids of every live session. */
  ids(): string[] {
    this.#checkOpen()
    return this.#rows(() => this.disk.ids())
  }

  /** Number of live sessions. */
  length(): number {
    this.#checkOpen()
    return this.#rows(() => this.disk.countLive())
  }

  /** Removes every session. */
  async clear(): Promise<void> {
    this.#checkOpen()
    try {
      await this.disk.clear(() => this.memory.clear())
    } catch (error) {
      this.#fail(error)
    }
  }

  /** The live sessions of one user. */
  listByUser(userId: unknown): UserSession[] {
    this.#checkOpen()
    const key = normalizeUserId(userId)
    if (key === null) return []
    const out: UserSession[] = []
    for (const row of this.#rows(() => this.disk.rowsOfUser(key, this.#onCorrupt))) {
      const session = this.#decode(row)
      if (session !== undefined) out.push({ sid: row.sid, session, expiresAt: row.expiresAt })
    }
    return out
  }

  /** Destroys every session of one user except the ids in `except`; resolves to how many. */
  async destroyByUser(userId: unknown, except: readonly string[] = []): Promise<number> {
    this.#checkOpen()
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
    this.#checkOpen()
    this.disk.commitNow()
    // NB: let the acknowledgements of the writes just committed run before we report back.
    await nextTurn()
    return this.#spiller.cycle()
  }

  /** Deletes expired sessions from disk (in transactions of `sweepBatchSize` rows) and memory. */
  sweep(): Promise<number> {
    this.#checkOpen()
    this.#sweeping ??= this.#sweep().finally(() => {
      this.#sweeping = undefined
    })
    return this.#sweeping
  }

  async #sweep(): Promise<number> {
    let total = 0
    try {
      for (;;) {
        if (this.#closed) break
        const now = this.#options.clock.now()
        const removed = this.disk.deleteExpired(now, this.#options.sweepBatchSize)
        total += removed
        if (removed < this.#options.sweepBatchSize) break
        // NB: yield between batches so a large backlog never blocks requests for long.
        await nextTurn()
      }
      if (!this.#closed) this.memory.purgeExpired(this.#options.clock.now())
    } catch (error) {
      const wrapped = wrapError(ErrorCodes.DISK_IO, 'sweeping expired sessions failed', error)
      this.#report(wrapped)
      throw wrapped
    } finally {
      this.counters.expired += total
    }
    return total
  }

  /** A snapshot of the counters and tier sizes. */
  stats(): StoreStats {
    const c = this.counters
    if (!this.#closed) {
      try {
        this.#diskEntries = this.disk.count()
      } catch (error) {
        this.#report(wrapError(ErrorCodes.DISK_IO, 'counting rows failed', error))
      }
    }
    return {
      memory: { entries: this.memory.entries, bytes: this.memory.bytes, maxBytes: this.memory.maxBytes },
      disk: {
        entries: this.#diskEntries,
        pendingWrites: this.disk.pendingWrites,
        transactions: this.disk.transactions,
      },
      redis: null,
      spills: c.spills,
      promotions: c.promotions,
      hits: { ...c.hits },
      misses: c.misses,
      writes: c.writes,
      destroys: c.destroys,
      outbox: 0,
      expired: c.expired,
      errors: c.errorsByCode(),
    }
  }

  /** Commits everything, stops the timers and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#spiller.stop()
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer)
    this.#sweepTimer = undefined
    await this.#sweeping?.catch(() => undefined)
    this.#closed = true
    this.disk.close()
    await nextTurn()
    this.memory.close()
  }
}

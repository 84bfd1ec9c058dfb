// The parts of one engine and their upkeep, shared by the read path, the write path and the manager: the
// memory tier with its spiller, the SQLite file, the authority (the disk tier in local mode, Redis in shared
// mode), shared mode's parts, the counters, and error reporting. Built once per store, by mode.

import type { SessionObject } from '../codec.js'
import { decodeSession } from '../codec.js'
import type { ErrorCode } from '../errors.js'
import { ErrorCodes, isTieredSessionError, TieredSessionError, wrapError } from '../errors.js'
import { DiskFailures } from '../health.js'
import { LatencyHistograms } from '../histogram.js'
import type { LifecycleStep } from '../lifecycle.js'
import { countStep } from '../lifecycle.js'
import type { ResolvedOptions } from '../options.js'
import { Spiller } from '../spiller.js'
import { Counters } from '../stats.js'
import { DiskTier } from '../tiers/disk-tier.js'
import type { MemoryRecord } from '../tiers/memory-tier.js'
import { MemoryTier } from '../tiers/memory-tier.js'
import type { DeferredTouches, MaybePromise, StoredRecord, Tier } from '../tiers/tier.js'
import type { ManagerEvents } from './engine.js'
import type { SharedParts } from './shared-parts.js'
import { connectShared } from './shared-parts.js'

/** How long the near cache is memory only after the disk could not take a spill, in ms. */
const CACHE_RETRY_MS = 10_000

/** The engine's parts and the upkeep every path needs. */
export class EngineContext {
  readonly options: ResolvedOptions
  readonly events: ManagerEvents
  readonly counters = new Counters()
  /** Operation and spill durations (metrics()). */
  readonly latency = new LatencyHistograms()
  /** The last disk failure (health()). */
  readonly diskFailures = new DiskFailures()
  readonly memory: MemoryTier
  readonly spiller: Spiller
  /** The SQLite file: the authority in local mode; the spill cache and the outbox log in shared mode. */
  readonly disk: DiskTier | null
  /** Where every acknowledged write lives: the disk tier (local mode) or Redis (shared mode). */
  readonly authority: Tier & DeferredTouches
  /** Shared mode's parts (Redis, coherence, outbox); null in local mode. */
  readonly shared: SharedParts | null
  /** The disk tier when it is a cache below the authority (shared mode), else null. */
  readonly cache: DiskTier | null
  /** The code a failure of the authority that is not one of ours is reported as. */
  readonly authorityCode: ErrorCode
  closed = false
  /** Codes of the disk cache's failures reported since it last worked (each is reported once meanwhile). */
  readonly #cacheFailures = new Set<string>()
  /** After a spill the disk cache could not take, when (store clock, ms) to try the disk again. */
  #cacheRetryAt = 0

  constructor(options: ResolvedOptions, events: ManagerEvents) {
    this.options = options
    this.events = events
    this.memory = new MemoryTier({
      maxBytes: options.memory.maxBytes,
      clock: options.clock,
      // NB: local mode: a copy found expired on read goes from the file too, so the sweep does not count it again.
      ...(options.redis === null
        ? { onExpired: (sid: string, record: StoredRecord) => this.#expiredOnRead(sid, record) }
        : {}),
    })
    this.disk =
      options.disk === null
        ? null
        : new DiskTier({
            ...options.disk,
            clock: options.clock,
            hashIds: options.atRest.hashIds,
            sealer: options.atRest.sealer,
            onError: (error) => this.report(error),
            // NB: shared mode: a spill's rows are written by a worker thread, with up to a quarter of the memory
            // budget (at least 1 MiB) waiting for it.
            cacheBacklogBytes:
              options.redis === null
                ? undefined
                : Math.max(1024 * 1024, Math.floor(options.memory.maxBytes / 4)),
          })
    this.shared =
      options.redis === null
        ? null
        : connectShared(options, {
            memory: this.memory,
            disk: this.disk,
            counters: this.counters,
            events,
            report: (error) => this.report(error),
            dropCopy: (sid) => this.dropCacheCopy(sid),
          })
    const authority = this.shared?.redis ?? this.disk
    if (authority === null) throw new Error('local mode needs the disk tier')
    this.authority = authority
    this.cache = this.shared === null ? null : this.disk
    this.authorityCode = this.shared === null ? ErrorCodes.DISK_IO : ErrorCodes.REDIS_UNAVAILABLE
    const cache = this.cache
    this.spiller = new Spiller({
      memory: this.memory,
      highWatermark: options.memory.highWatermark,
      lowWatermark: options.memory.lowWatermark,
      intervalMs: options.spillIntervalMs,
      // NB: in local mode every record in memory is already on disk: a spill only drops memory copies.
      ...(cache === null ? {} : { moveDown: (victims) => this.#spillToCache(cache, victims) }),
      onSlice: (durationMs) => this.latency.spills.observe(0, durationMs / 1000),
      onSpill: (result) => {
        this.counters.spills += result.sessions
        this.events.spill(result)
      },
      onError: (error) => this.report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error)),
    })
  }

  /** The current time of the store's clock, in ms. */
  now(): number {
    return this.options.clock.now()
  }

  // ---- errors --------------------------------------------------------------------------------------

  checkOpen(): void {
    if (this.closed) throw new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store is closed')
  }

  /** Counts an error by code and hands it to the error event. */
  report(error: TieredSessionError): void {
    this.counters.countError(error.code)
    if (error.code === ErrorCodes.DISK_IO && this.disk !== null)
      this.diskFailures.failed(error.code, this.now(), this.disk.transactions)
    this.events.error(error)
  }

  /** Counts a lifecycle step and hands it to the lifecycle event. */
  step(step: LifecycleStep): void {
    countStep(this.counters.lifecycle, step)
    this.events.lifecycle?.(step)
  }

  /**
   * Local mode: memory held a copy that a read found expired. Its row goes from the file too (unless a newer
   * version replaced it), and whoever removes the row emits `expired`: this read or the sweep, once.
   */
  #expiredOnRead(sid: string, record: StoredRecord): void {
    if (this.disk === null || this.closed) return
    const userId = record.userId
    this.disk
      .delete(sid, {
        upToVersion: record.version,
        onCommit: (existed) => {
          if (existed) this.step({ type: 'expired', userId, reason: 'read' })
        },
      })
      .catch((error: unknown) =>
        this.report(wrapError(ErrorCodes.DISK_IO, 'removing an expired session failed', error)),
      )
  }

  /** Counts an error, emits it as an `error` event, and throws it to the caller. */
  fail(
    error: unknown,
    code: ErrorCode = this.authorityCode,
    message = 'a session store operation failed',
  ): never {
    const wrapped = wrapError(code, message, error)
    this.report(wrapped)
    throw wrapped
  }

  /**
   * Runs a query on the authority (synchronously when it answers synchronously); a failure is counted, emitted
   * and thrown. In local mode the expiries pending touches moved are committed first (the query reads the file).
   */
  queryAuthority<T, R>(query: () => MaybePromise<T>, then: (value: T) => R): MaybePromise<R> {
    this.checkOpen()
    let value: MaybePromise<T>
    try {
      if (this.shared === null) void this.authority.commitTouches()
      value = query()
    } catch (error) {
      return this.fail(error)
    }
    return value instanceof Promise ? value.then(then, (error: unknown) => this.fail(error)) : then(value)
  }

  /** Runs a validation of the write path; its failure is counted, emitted and thrown. */
  prepare<T>(plan: () => T, message = 'the session could not be stored'): T {
    try {
      return plan()
    } catch (error) {
      return this.fail(error, ErrorCodes.ENCODE_FAILED, message)
    }
  }

  /** Decodes a stored payload; a corrupt one is reported and becomes undefined (a miss). */
  decode = (record: StoredRecord): SessionObject | undefined => {
    try {
      return decodeSession(record.payload)
    } catch (error) {
      this.report(error as TieredSessionError)
      return undefined
    }
  }

  /** Reports a stored record a listing leaves out. */
  onCorrupt = (error: TieredSessionError): void => this.report(error)

  /** A miss, counted. */
  miss(): undefined {
    this.counters.misses++
    return undefined
  }

  // ---- memory and the copies below it ---------------------------------------------------------------

  /** Runs a slice of a spill cycle right away when memory crossed the high watermark (the rest follows). */
  afterMemoryGrew(): void {
    if (!this.spiller.overHighWatermark) return
    try {
      this.spiller.step()
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error))
    }
  }

  /**
   * Puts a record into memory and returns the memory copy; with `verifiedAt` (ms), it is what the authority
   * held then (shared mode: trusted from that time on).
   */
  remember(sid: string, record: StoredRecord, verifiedAt?: number): MemoryRecord {
    const kept = this.memory.write(sid, record)
    if (verifiedAt !== undefined) this.shared?.coherence.verified(kept, verifiedAt)
    this.afterMemoryGrew()
    return kept
  }

  /**
   * Shared mode: spilled sessions go to the disk cache. When it cannot take them (a full or read-only disk)
   * they leave memory all the same (Redis or the outbox has each of them), and the near cache is memory only
   * for CACHE_RETRY_MS; then a spill tries the disk again, and one it takes ends the failure.
   */
  #spillToCache(cache: DiskTier, victims: ReadonlyArray<readonly [string, MemoryRecord]>): void {
    const now = this.now()
    if (now < this.#cacheRetryAt) return
    const failed = (error: unknown) => {
      this.#cacheRetryAt = this.now() + CACHE_RETRY_MS
      this.#cacheFailed(
        wrapError(ErrorCodes.DISK_IO, 'the disk cache could not take spilled sessions', error),
      )
    }
    try {
      cache.keepLater(victims, {
        written: () => this.#cacheFailures.clear(),
        failed: (message) => failed(new Error(message)),
      })
    } catch (error) {
      failed(error)
    }
  }

  /** A failure of the disk cache: counted and emitted once per code until the cache works again. */
  #cacheFailed(error: TieredSessionError): void {
    if (this.#cacheFailures.has(error.code)) return
    this.#cacheFailures.add(error.code)
    this.report(error)
  }

  /**
   * Drops the disk cache's copy of a session (shared mode), unless the outbox holds it; true when the file holds
   * no row of it now (false too when the row was still on its way: its delete is the worker's, and may fail).
   */
  dropCacheCopy(sid: string): boolean {
    if (this.cache === null || this.shared?.outbox?.has(sid)) return false
    try {
      return this.cache.dropNow(sid)
    } catch (error) {
      // NB: a copy left behind is harmless: shared mode checks a disk copy's version in Redis before serving it.
      this.#cacheFailed(wrapError(ErrorCodes.DISK_IO, 'dropping a cached session failed', error))
      return false
    }
  }

  /** Drops the local copies of a session the authority no longer has (unless the outbox holds it). */
  forget(sid: string): void {
    if (this.shared?.outbox?.has(sid)) return
    this.memory.delete(sid)
    this.dropCacheCopy(sid)
  }

  /** The disk tier's copy; a failure of the authority (local mode) is thrown, of the cache reported. */
  readDisk(sid: string): StoredRecord | undefined {
    if (this.disk === null) return undefined
    try {
      return this.disk.get(sid)
    } catch (error) {
      const corrupt = isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED
      if (this.shared === null && !corrupt) return this.fail(error)
      if (corrupt) this.report(error as TieredSessionError)
      else this.#cacheFailed(wrapError(ErrorCodes.DISK_IO, 'reading the disk cache failed', error))
      return undefined
    }
  }
}

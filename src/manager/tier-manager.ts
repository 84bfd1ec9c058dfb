// The tier manager: the one engine of both modes. It holds the memory tier (with its spiller) over an
// authority — the SQLite disk tier in local mode, Redis in shared mode — and, in shared mode, the outbox and the
// coherence tracker with the disk tier as spill cache (see context.ts). The read path, the write path, the
// sweep, flush and close are each written once; what differs by mode is which parts are present.
// Knows nothing of Express.

import { setImmediate as nextTurn } from 'node:timers/promises'
import { handleOf, SessionKeys } from '../at-rest/session-key.js'
import type { SessionObject } from '../codec.js'
import { ErrorCodes, wrapError } from '../errors.js'
import type { StoreHealth } from '../health.js'
import { healthOf } from '../health.js'
import type { LatencyHistograms } from '../histogram.js'
import type { DestroyReason } from '../lifecycle.js'
import type { Budget } from '../redis/budget.js'
import type { RedisTier } from '../redis/redis-tier.js'
import { normalizeUserId } from '../session-fields.js'
import type { SpillResult } from '../spiller.js'
import type { StoreStats } from '../stats.js'
import { statsSnapshot } from '../stats.js'
import type { Inventory } from '../tiers/inventory.js'
import type { BackupProgress } from '../tiers/sqlite-backup.js'
import type { MaybePromise, TierRow } from '../tiers/tier.js'
import { traced, tracingChannels } from '../tracing.js'
import { EngineContext } from './context.js'
import type {
  DestroyByUserFilter,
  ExportedRow,
  ManagerEvents,
  SessionEngine,
  SessionEntry,
  SessionPatch,
  UserSession,
} from './engine.js'
import { ForeignCommits } from './foreign-commits.js'
import { sessionsById, userSessions } from './listings.js'
import { PlainIds } from './plain-ids.js'
import { ReadPath } from './read-path.js'
import type { RekeyCounts } from './rekey.js'
import { rekeyAll } from './rekey.js'
import { StoreTools } from './store-tools.js'
import { Sweeper } from './sweeper.js'
import { WritePath } from './write-path.js'
import { WritePlan } from './write-plan.js'

/** The engine of both modes. All methods are safe to call concurrently. */
export class TierManager implements SessionEngine {
  readonly #ctx: EngineContext
  readonly #reads: ReadPath
  readonly #writes: WritePath
  readonly #sweeper: Sweeper
  /** Local mode: drops memory copies of rows another connection changed (the command line tool). */
  readonly #foreign: ForeignCommits | null
  readonly #tools: StoreTools
  /** Session ids to stored keys (`hashIds`): every method below hashes its id here, once. */
  readonly #keys: SessionKeys
  /**
   * Shared mode with `hashIds`: Redis may still hold sessions under plain ids (written by 0.1.0 or with
   * `hashIds: false`): a miss looks there too and moves what it finds. (Local mode moves them at open.)
   */
  readonly #plainMayExist: boolean
  readonly #plainIds: PlainIds
  readonly #mode: 'local' | 'shared'
  #diskEntries = 0

  constructor(options: EngineContext['options'], events: ManagerEvents) {
    const ctx = new EngineContext(options, events)
    this.#ctx = ctx
    this.#keys = new SessionKeys(options.atRest.hashIds)
    this.#plainMayExist = options.atRest.hashIds && ctx.shared !== null
    this.#plainIds = new PlainIds(ctx)
    this.#mode = ctx.shared === null ? 'local' : 'shared'
    this.#reads = new ReadPath(ctx)
    this.#writes = new WritePath(ctx)
    this.#tools = new StoreTools(ctx, new WritePlan(options))
    this.#sweeper = new Sweeper({
      disk: ctx.disk,
      memory: ctx.memory,
      batchSize: options.sweepBatchSize,
      intervalMs: options.sweepIntervalMs,
      clock: options.clock,
      onSwept: (removed) => {
        ctx.counters.expired += removed
      },
      // NB: in shared mode the file is a cache: its expired copies are no lifecycle step (Redis expires its own).
      ...(ctx.shared === null
        ? { onExpired: (userId: string | null) => ctx.step({ type: 'expired', userId, reason: 'sweep' }) }
        : {}),
      report: (error) => ctx.report(error),
    })
    this.#foreign =
      ctx.shared === null && ctx.disk !== null
        ? new ForeignCommits({
            disk: ctx.disk,
            memory: ctx.memory,
            onDropped: (count) => {
              ctx.counters.invalidations += count
              ctx.events.invalidation?.()
            },
            report: (error) => ctx.report(error),
          })
        : null
    ctx.spiller.start()
    this.#sweeper.start()
    this.#foreign?.start()
  }

  // ---- one session ----------------------------------------------------------------------------------

  // NB: each operation runs inside its `tiered-session:<op>` tracing channel (src/tracing.ts); with nobody
  // subscribed, one check and no closure.
  getEntry(sid: string, budget?: Budget): MaybePromise<SessionEntry | undefined> {
    if (!tracingChannels.get.hasSubscribers) return this.#getEntry(sid, budget)
    return traced('get', this.#mode, () => this.#getEntry(sid, budget))
  }

  #getEntry(sid: string, budget?: Budget): MaybePromise<SessionEntry | undefined> {
    const key = this.#keys.keyOf(sid)
    const entry = this.#reads.getEntry(key, budget)
    if (!this.#plainMayExist || key === sid) return entry
    return entry instanceof Promise
      ? entry.then((found) => found ?? this.#adoptPlain(sid, key, budget))
      : (entry ?? this.#adoptPlain(sid, key, budget))
  }

  /**
   * Shared mode, `hashIds`: a session Redis holds under its plain id (0.1.0, `hashIds: false`) is moved to its
   * hashed key (written there, then purged under the plain id) and served from there.
   */
  async #adoptPlain(sid: string, key: string, budget?: Budget): Promise<SessionEntry | undefined> {
    const session = await this.#plainIds.find(sid)
    if (session === undefined) return undefined
    await this.#writes.set(key, session, budget)
    await this.#plainIds.purge(sid)
    // NB: the miss under the hashed key was counted; the session was found after all.
    this.#ctx.counters.misses--
    return this.#reads.getEntry(key, budget)
  }

  /** The session of a live entry, or undefined. */
  get(sid: string): MaybePromise<SessionObject | undefined> {
    const entry = this.getEntry(sid)
    return entry instanceof Promise ? entry.then((found) => found?.session) : entry?.session
  }

  set(sid: string, session: SessionObject, budget?: Budget): Promise<void> {
    const key = this.#keys.keyOf(sid)
    if (!tracingChannels.set.hasSubscribers) return this.#writes.set(key, session, budget)
    return traced('set', this.#mode, () => this.#writes.set(key, session, budget)) as Promise<void>
  }

  merge(sid: string, patch: SessionPatch, budget?: Budget): Promise<boolean> {
    const key = this.#keys.keyOf(sid)
    if (!tracingChannels.merge.hasSubscribers) return this.#writes.merge(key, patch, budget)
    return traced('merge', this.#mode, () => this.#writes.merge(key, patch, budget)) as Promise<boolean>
  }

  touch(sid: string, session: SessionObject, budget?: Budget): Promise<void> {
    const key = this.#keys.keyOf(sid)
    if (!tracingChannels.touch.hasSubscribers) return this.#writes.touch(key, session, budget)
    return traced('touch', this.#mode, () => this.#writes.touch(key, session, budget)) as Promise<void>
  }

  async destroy(sid: string, budget?: Budget, reason: DestroyReason = 'destroy'): Promise<void> {
    const key = this.#keys.keyOf(sid)
    if (!this.#plainMayExist || key === sid) return this.#destroyStored(key, budget, reason)
    // NB: a session still under its plain id (never read since hashIds was turned on) goes too.
    await Promise.all([this.#destroyStored(key, budget, reason), this.#plainIds.purge(sid)])
  }

  /** Destroys the session stored under `key` (a stored key, not a session id). */
  #destroyStored(key: string, budget: Budget | undefined, reason: DestroyReason): Promise<void> {
    if (!tracingChannels.destroy.hasSubscribers) return this.#writes.destroy(key, budget, reason)
    return traced('destroy', this.#mode, () => this.#writes.destroy(key, budget, reason)) as Promise<void>
  }

  /** Shared mode: a budget of one command timeout for the store calls of one request (local mode: none). */
  budget(): Budget | undefined {
    return this.#ctx.shared?.connection.budget()
  }

  // ---- whole-store operations (the authority) -------------------------------------------------------

  /** Every live session by id (with `hashIds`: by handle, the store knows no ids). */
  all(): MaybePromise<Record<string, SessionObject>> {
    const ctx = this.#ctx
    const named = this.#keys.hashed
    return this.#ctx.queryAuthority(
      () => ctx.authority.rows(ctx.onCorrupt),
      (rows) =>
        sessionsById(named ? rows.map((row) => ({ ...row, sid: handleOf(row.sid) })) : rows, ctx.decode),
    )
  }

  /** Ids of every live session (with `hashIds`: their handles). */
  ids(): MaybePromise<string[]> {
    const named = this.#keys.hashed
    return this.#ctx.queryAuthority(
      () => this.#ctx.authority.ids(),
      (keys) => (named ? keys.map(handleOf) : keys),
    )
  }

  /** Number of live sessions. */
  length(): MaybePromise<number> {
    return this.#ctx.queryAuthority(
      () => this.#ctx.authority.countLive(),
      (n) => n,
    )
  }

  #rowsOfUser(userId: unknown): MaybePromise<TierRow[]> {
    const ctx = this.#ctx
    ctx.checkOpen()
    const key = normalizeUserId(userId)
    if (key === null) return []
    return this.#ctx.queryAuthority(
      () => ctx.authority.rowsOfUser(key, ctx.onCorrupt),
      (rows) => rows,
    )
  }

  /** The live sessions of one user, each with its handle (and, without `hashIds`, its id). */
  listByUser(userId: unknown): MaybePromise<UserSession[]> {
    const decode = this.#ctx.decode
    const withIds = !this.#keys.hashed
    const rows = this.#rowsOfUser(userId)
    return rows instanceof Promise
      ? rows.then((found) => userSessions(found, decode, withIds))
      : userSessions(rows, decode, withIds)
  }

  /**
   * Destroys every session of one user but those whose id is in `except`, or, with `only`, just those whose
   * handle is in it; resolves to how many.
   */
  async destroyByUser(userId: unknown, filter: DestroyByUserFilter = {}): Promise<number> {
    // NB: a session still under its plain id (shared mode) is listed under it: both forms of an id are kept.
    const keep = new Set(filter.except ?? [])
    for (const sid of filter.except ?? []) keep.add(this.#keys.keyOf(sid))
    const only = filter.only === undefined ? undefined : new Set(filter.only)
    const keys = (await this.#rowsOfUser(userId))
      .map((row) => row.sid)
      .filter((key) => !keep.has(key) && (only === undefined || only.has(handleOf(key))))
    await Promise.all(keys.map((key) => this.#destroyStored(key, undefined, 'logout')))
    return keys.length
  }

  /** Destroys the session with this handle (a scan of every stored key: for tools, not requests). */
  async destroyByHandle(handle: string): Promise<boolean> {
    const ctx = this.#ctx
    const keys = await this.#ctx.queryAuthority(
      () => ctx.authority.ids(),
      (found) => found,
    )
    const key = keys.find((stored) => handleOf(stored) === handle)
    if (key === undefined) return false
    await this.#destroyStored(key, undefined, 'destroy')
    return true
  }

  /** Removes every session from every tier (and the outbox's entries). */
  async clear(): Promise<void> {
    const ctx = this.#ctx
    ctx.checkOpen()
    try {
      // NB: memory is cleared at the commit, so no read in between serves what the authority no longer has.
      await ctx.authority.clear({ onCommit: () => this.#cleared() })
    } catch (error) {
      ctx.fail(error)
    }
  }

  /** The authority was cleared: so are memory, the outbox's entries and the disk cache. */
  #cleared(): void {
    const ctx = this.#ctx
    ctx.memory.clear()
    ctx.shared?.outbox?.clear()
    if (ctx.cache === null) return
    try {
      ctx.cache.clearNow()
    } catch (error) {
      ctx.report(wrapError(ErrorCodes.DISK_IO, 'clearing the disk cache failed', error))
    }
  }

  // ---- maintenance ----------------------------------------------------------------------------------

  /**
   * Resolves once every configured tier is usable: memory and disk are from the start; in shared mode, once
   * the connection to Redis is ready. Rejects with TS_REDIS_UNAVAILABLE after `redis.connectTimeout`.
   */
  async ready(): Promise<void> {
    const ctx = this.#ctx
    ctx.checkOpen()
    const redis = ctx.options.redis
    if (ctx.shared !== null && redis !== null) await ctx.shared.connection.whenReady(redis.connectTimeoutMs)
  }

  /** Commits every queued write and runs a spill cycle now. */
  async flush(): Promise<SpillResult> {
    const ctx = this.#ctx
    ctx.checkOpen()
    // NB: pending touches are committed too (in local mode with the queued writes, just below).
    await ctx.authority.commitTouches()
    ctx.disk?.commitNow()
    // NB: let the acknowledgements of the writes just committed run before we report back.
    await nextTurn()
    const spilled = await ctx.spiller.cycle()
    // NB: shared mode: the spill cache's rows are written by a worker thread; their outcome is reported first.
    await ctx.disk?.cacheSettled()
    return spilled
  }

  /** Deletes expired sessions from disk (in transactions of `sweepBatchSize` rows) and memory now. */
  sweep(onBatch?: (removed: number) => void): Promise<number> {
    this.#ctx.checkOpen()
    return this.#sweeper.run(onBatch)
  }

  /** A snapshot of the counters and tier sizes; the disk's row count is refreshed unless closed. */
  stats(): StoreStats {
    const ctx = this.#ctx
    const disk = ctx.disk
    if (!ctx.closed && disk !== null) {
      try {
        this.#diskEntries = disk.count()
      } catch (error) {
        ctx.report(wrapError(ErrorCodes.DISK_IO, 'counting rows failed', error))
      }
    }
    return statsSnapshot({
      counters: ctx.counters,
      memory: ctx.memory,
      disk:
        disk === null
          ? null
          : {
              entries: this.#diskEntries,
              pendingWrites: disk.pendingWrites,
              transactions: disk.transactions,
              checkpoints: disk.checkpoints,
            },
      redis:
        ctx.shared === null
          ? null
          : { connected: ctx.shared.connection.up, invalidation: ctx.shared.coherence.mode },
      outbox: ctx.shared?.outbox?.depth() ?? 0,
      outboxOldestAgeMs: ctx.shared?.outbox?.oldestAgeMs() ?? null,
    })
  }

  /** The latency histograms of the operations and the spiller. */
  get latency(): LatencyHistograms {
    return this.#ctx.latency
  }

  /** The health view: Redis, the outbox, the disk, memory, and whether all is well. Synchronous, no I/O but a count. */
  health(): StoreHealth {
    const ctx = this.#ctx
    const shared = ctx.shared
    const outbox = shared?.outbox ?? null
    return healthOf({
      closed: ctx.closed,
      redis:
        shared === null
          ? null
          : {
              connected: shared.connection.up,
              invalidationLive: shared.coherence.live,
              invalidation: shared.coherence.mode,
            },
      hasOutbox: outbox !== null,
      outbox: { depth: outbox?.depth() ?? 0, oldestAgeMs: outbox?.oldestAgeMs() ?? null },
      disk: ctx.disk === null ? null : ctx.diskFailures.view(ctx.disk.transactions, ctx.now()),
      memory: { bytes: ctx.memory.bytes, maxBytes: ctx.memory.maxBytes },
    })
  }

  /** Commits everything, stops the timers (awaiting a sweep or replay in progress), closes file and connections. */
  async close(): Promise<void> {
    const ctx = this.#ctx
    if (ctx.closed) return
    ctx.spiller.stop()
    await this.#sweeper.stop()
    await this.#foreign?.stop()
    await this.#tools.settled()
    await ctx.authority.commitTouches()
    await ctx.shared?.outbox?.close()
    ctx.closed = true
    ctx.disk?.close()
    await ctx.shared?.coherence.close()
    await ctx.shared?.connection.close()
    await nextTurn()
    ctx.memory.close()
  }

  // ---- operating it (the command line tool) --------------------------------------------------------

  /** See StoreTools.backup. */
  backup(path: string, onProgress: (progress: BackupProgress) => void): Promise<BackupProgress> {
    return this.#tools.backup(path, onProgress)
  }

  /** See StoreTools.inventory. */
  inventory(top: number): Promise<Inventory> {
    return this.#tools.inventory(top)
  }

  /** See StoreTools.exportRows (stored keys, not session ids). */
  exportRows(onPage: (rows: ExportedRow[]) => Promise<void>): Promise<number> {
    return this.#tools.exportRows(onPage)
  }

  /** See StoreTools.importRow (a stored key, not a session id: never hashed again). */
  importRow(row: ExportedRow): Promise<boolean> {
    return this.#tools.importRow(row)
  }

  /**
   * Rewrites every stored session as it is, atomically on its latest version, so its payload is sealed with the
   * first encryption key (`tiered-session rekey`); `onBatch` hears progress.
   */
  rekey(onBatch: (handled: number) => void): Promise<RekeyCounts> {
    this.#ctx.checkOpen()
    return rekeyAll(this.#ctx, onBatch)
  }

  /** Local mode: looks for commits by other connections now; resolves to how many memory copies it dropped. */
  async checkForeignCommits(): Promise<number> {
    return (await this.#foreign?.check()) ?? 0
  }

  // ---- time and state -------------------------------------------------------------------------------

  /** The current time of the store's clock, in ms. */
  now(): number {
    return this.#ctx.now()
  }

  /** The lifetime (ms) a write of `session` would get: its cookie's remaining life, or the ttl. */
  lifetimeMs(session: SessionObject): number {
    return this.#writes.lifetimeMs(session)
  }

  /** The handle of the session with this id (what listByUser shows and `destroyByUser({ only })` takes). */
  handleOf(sid: string): string {
    return handleOf(this.#keys.keyOf(sid))
  }

  /** `maxLifetime` of this session in ms, or null without the option. */
  maxLifetimeMs(session: SessionObject): number | null {
    return this.#writes.maxLifetimeMs(session)
  }

  /** True while Redis is connected and answering (shared mode). */
  get connected(): boolean {
    return this.#ctx.shared?.connection.up ?? false
  }

  /** True while invalidations are being delivered (shared mode). */
  get coherent(): boolean {
    return this.#ctx.shared?.coherence.live ?? false
  }

  /** The Redis tier (shared mode). */
  get redis(): RedisTier | undefined {
    return this.#ctx.shared?.redis
  }

  /** Resolves once the outbox replay now running (if any) has finished. */
  /** Shared mode: resolves once every invalidation Redis sent before now has been applied (tests use it). */
  async invalidationsDelivered(): Promise<void> {
    await this.#ctx.shared?.coherence.delivered()
  }

  async replayed(): Promise<void> {
    await this.#ctx.shared?.outbox?.replayed()
  }
}

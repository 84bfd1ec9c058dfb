// Shared mode: Redis is the authority; memory (and the disk spill cache) is a near cache kept coherent by the
// invalidation channel; while Redis is down, writes go to the disk outbox and are replayed in order later.

import { randomUUID } from 'node:crypto'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { SessionObject } from './codec.js'
import type { ManagerEvents, SessionEngine, SessionEntry, SessionPatch, UserSession } from './engine-core.js'
import { EngineCore } from './engine-core.js'
import { ErrorCodes, isTieredSessionError, TieredSessionError, wrapError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import type { StatusChange } from './redis/connection.js'
import { RedisConnection } from './redis/connection.js'
import { InvalidationChannel } from './redis/invalidation-channel.js'
import { RedisTier } from './redis/redis-tier.js'
import { isValidSid, normalizeUserId } from './session-fields.js'
import type { SpillResult } from './spiller.js'
import type { StoreStats } from './stats.js'
import type { OutboxEntry } from './tiers/disk-tier.js'
import { DiskTier } from './tiers/disk-tier.js'
import type { MemoryRecord } from './tiers/memory-tier.js'
import type { RecordInput, StoredRecord } from './tiers/tier.js'

/**
 * A read of Redis in flight. An invalidation for a newer version than the reply (or a lost channel) arriving
 * meanwhile means the reply may be stale: it is served but not cached.
 */
interface InflightRead {
  /** The highest version an invalidation announced during the read (Infinity: the channel was lost). */
  newest: number
}

/** Most compare-and-set attempts of one merge or touch before giving up (heavy contention on one session). */
const MAX_CAS_ATTEMPTS = 32

/** The engine of shared mode. All methods are safe to call concurrently. */
export class SharedTierManager extends EngineCore implements SessionEngine {
  readonly disk: DiskTier | null
  readonly redis: RedisTier
  readonly #connection: RedisConnection
  readonly #channel: InvalidationChannel
  readonly #localTtlMs: number
  readonly #inflight = new Map<string, Set<InflightRead>>()
  /** The latest write of each session that Redis has not acknowledged yet (the outbox, in memory). */
  readonly #pending = new Map<string, OutboxEntry>()
  /** Bumped whenever invalidations may have been missed; a memory copy from an older epoch is unverified. */
  #epoch = 1
  #sweepTimer: NodeJS.Timeout | undefined
  #replaying: Promise<void> | undefined
  #retryTimer: NodeJS.Timeout | undefined
  #replayDelayMs = 250

  constructor(options: ResolvedOptions, events: ManagerEvents) {
    super(options, events, (victims) => this.#moveDown(victims))
    const redis = options.redis
    if (redis === null) throw new Error('shared mode needs redis options')
    this.#localTtlMs = redis.localTtlMs
    this.disk =
      options.disk === null
        ? null
        : new DiskTier({ ...options.disk, clock: options.clock, onError: (error) => this.report(error) })
    this.#connection = new RedisConnection({
      ...(redis.url === undefined ? {} : { url: redis.url }),
      ...(redis.client === undefined ? {} : { client: redis.client }),
      commandTimeoutMs: redis.commandTimeoutMs,
    })
    const origin = randomUUID()
    this.redis = new RedisTier({
      connection: this.#connection,
      prefix: options.prefix,
      channel: redis.channel,
      origin,
      clock: options.clock,
    })
    for (const entry of this.disk?.outbox((error) => this.report(error)) ?? [])
      this.#pending.set(entry.sid, entry)
    this.#channel = new InvalidationChannel({
      connection: this.#connection,
      channel: redis.channel,
      origin,
      onInvalidate: (sid, version) => {
        this.#invalidate(sid, version)
        this.counters.invalidations++
        this.events.invalidation?.()
      },
      onLost: () => {
        this.#loseTrust()
        this.events.coherence?.(false)
      },
      onLive: () => {
        this.#loseTrust()
        this.events.coherence?.(true)
      },
      onGarbage: () => this.counters.countError(ErrorCodes.DECODE_FAILED),
    })
    this.#connection.on('status', ({ status, previous }: StatusChange) => {
      if (status === 'ready') {
        this.events.connect?.()
        this.#replay()
      } else if (previous === 'ready') this.events.disconnect?.()
    })
    this.#connection.on('client-error', () => this.counters.countError(ErrorCodes.REDIS_UNAVAILABLE))
    if (this.#connection.up) this.#replay()
    this.spiller.start()
    this.#sweepTimer = setInterval(() => {
      this.sweep().catch(() => {
        // NB: sweep() has already reported the error; nothing else to do for a background run.
      })
    }, options.sweepIntervalMs)
    this.#sweepTimer.unref()
  }

  /** True while Redis is connected and answering. */
  get connected(): boolean {
    return this.#connection.up
  }

  /** True while invalidations are being delivered. */
  get coherent(): boolean {
    return this.#channel.live
  }

  // ---- coherence -------------------------------------------------------------------------------------

  #invalidate(sid: string, version: number): void {
    for (const read of this.#inflight.get(sid) ?? []) read.newest = Math.max(read.newest, version)
    const cached = this.memory.peek(sid)
    // NB: keep our own newer copy (a write of ours that Redis ordered after this one).
    if (cached === undefined || cached.version < version) this.memory.delete(sid)
    this.#dropDiskCopy(sid)
  }

  /** Invalidations may have been missed (or the channel just came back): nothing cached is trusted as is. */
  #loseTrust(): void {
    this.#epoch++
    for (const reads of this.#inflight.values())
      for (const read of reads) read.newest = Number.POSITIVE_INFINITY
  }

  #beginRead(sid: string): InflightRead {
    const read: InflightRead = { newest: this.#channel.live ? 0 : Number.POSITIVE_INFINITY }
    let reads = this.#inflight.get(sid)
    if (reads === undefined) {
      reads = new Set()
      this.#inflight.set(sid, reads)
    }
    reads.add(read)
    return read
  }

  #endRead(sid: string, read: InflightRead): void {
    const reads = this.#inflight.get(sid)
    reads?.delete(read)
    if (reads?.size === 0) this.#inflight.delete(sid)
  }

  /** A memory copy that can be served without asking Redis. */
  #trusted(record: MemoryRecord, now: number): boolean {
    return record.epoch === this.#epoch && this.#channel.live && now - record.verifiedAt < this.#localTtlMs
  }

  #remember(sid: string, record: StoredRecord, verifiedAt: number): void {
    this.memory.set(sid, record, { at: verifiedAt, epoch: this.#epoch })
    this.afterMemoryGrew()
  }

  #dropDiskCopy(sid: string): void {
    if (this.disk === null || this.#pending.has(sid)) return
    try {
      this.disk.deleteNow(sid)
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'dropping a cached session failed', error))
    }
  }

  /** Spilled sessions go to the disk cache (synchronously, so they are never absent from both). */
  #moveDown(victims: ReadonlyArray<readonly [string, MemoryRecord]>): void {
    if (this.disk === null) return
    this.disk.putNow(victims.map(([sid, r]) => [sid, r] as const))
  }

  // ---- read path -------------------------------------------------------------------------------------

  /** The live session: from the outbox, from a trusted local copy, or from Redis (cached on the way back). */
  async getEntry(sid: string): Promise<SessionEntry | undefined> {
    this.checkOpen()
    if (!isValidSid(sid)) {
      this.counters.misses++
      return undefined
    }
    const now = this.now()
    const pending = this.#pending.get(sid)
    if (pending !== undefined)
      return this.#serveLocal(sid, pending.op === 'delete' ? undefined : pending.record, 'memory')

    const cached = this.memory.get(sid)
    if (cached !== undefined && this.#trusted(cached, now)) return this.#serveLocal(sid, cached, 'memory')
    let local: StoredRecord | undefined = cached
    let localTier: 'memory' | 'disk' = 'memory'
    if (local === undefined && this.disk !== null) {
      try {
        local = this.disk.get(sid)
        localTier = 'disk'
      } catch (error) {
        this.report(wrapError(ErrorCodes.DISK_IO, 'reading the disk cache failed', error))
      }
    }
    if (!this.#connection.up) {
      // Redis is down: what we hold locally is the best there is; an unknown session is an outage, not a miss.
      if (local !== undefined) return this.#serveLocal(sid, local, localTier)
      return this.fail(
        new TieredSessionError(
          ErrorCodes.REDIS_UNAVAILABLE,
          'Redis is down and the session is not held locally',
        ),
      )
    }

    const read = this.#beginRead(sid)
    let fresh: StoredRecord | undefined
    try {
      if (local !== undefined && (await this.redis.version(sid)) === local.version) {
        const current = read.newest <= local.version
        const entry = this.#serveLocal(sid, local, localTier, current)
        if (current && localTier === 'memory') this.#remember(sid, local, now)
        return entry
      }
      fresh = await this.redis.get(sid)
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        this.report(error)
        this.#forget(sid)
        this.counters.misses++
        return undefined
      }
      // NB: down, or refusing reads (CLUSTERDOWN, a failover): what we hold locally is the best there is.
      if (
        isTieredSessionError(error) &&
        (error.code === ErrorCodes.REDIS_UNAVAILABLE || error.code === ErrorCodes.REDIS_REFUSED) &&
        local !== undefined
      ) {
        return this.#serveLocal(sid, local, localTier)
      }
      return this.fail(error, ErrorCodes.REDIS_UNAVAILABLE)
    } finally {
      this.#endRead(sid, read)
    }
    if (fresh === undefined) {
      this.#forget(sid)
      this.counters.misses++
      return undefined
    }
    const session = this.decode(fresh)
    if (session === undefined) {
      this.counters.misses++
      return undefined
    }
    this.counters.hits.redis++
    // NB: an invalidation that overtook this reply means it may be stale: serve it, but do not cache it.
    if (read.newest <= fresh.version && !this.#pending.has(sid)) {
      const mine = this.memory.peek(sid)
      if (mine === undefined || mine.version <= fresh.version) this.#remember(sid, fresh, now)
      if (localTier === 'disk' && local !== undefined) this.#dropDiskCopy(sid)
    }
    return { session, expiresAt: fresh.expiresAt, version: fresh.version }
  }

  /** Serves a local copy; one from disk is promoted into memory (unverified unless `verified`). */
  #serveLocal(
    sid: string,
    record: StoredRecord | undefined,
    tier: 'memory' | 'disk',
    verified = false,
  ): SessionEntry | undefined {
    if (record === undefined || record.expiresAt <= this.now()) {
      this.counters.misses++
      return undefined
    }
    const session = this.decode(record)
    if (session === undefined) {
      this.#forget(sid)
      this.counters.misses++
      return undefined
    }
    this.counters.hits[tier]++
    if (tier === 'disk') {
      const promoted = this.memory.set(
        sid,
        record,
        verified ? { at: this.now(), epoch: this.#epoch } : { at: 0, epoch: 0 },
      )
      this.counters.promotions++
      this.events.promote({ bytes: promoted.bytes })
      this.afterMemoryGrew()
    }
    return { session, expiresAt: record.expiresAt, version: record.version }
  }

  /** Drops local copies of a session that Redis no longer has. */
  #forget(sid: string): void {
    if (this.#pending.has(sid)) return
    this.memory.delete(sid)
    this.#dropDiskCopy(sid)
  }

  // ---- write path ------------------------------------------------------------------------------------

  /** The newest version this instance knows of `sid`, to order an outbox write after it. */
  #knownVersion(sid: string): number {
    const pending = this.#pending.get(sid)?.record.version ?? 0
    const cached = this.memory.peek(sid)?.version
    // NB: a copy in memory is at least as new as one on disk (disk copies are spilled from memory).
    if (cached !== undefined) return Math.max(pending, cached)
    let onDisk = 0
    try {
      onDisk = this.disk?.get(sid)?.version ?? 0
    } catch {
      // NB: a corrupt or unreadable cached row only means we do not know its version; Redis orders the rest.
    }
    return Math.max(pending, onDisk)
  }

  /** The session as this instance holds it locally (outbox, memory or disk cache), for writes during an outage. */
  #localRecord(sid: string): StoredRecord | undefined {
    const now = this.now()
    const pending = this.#pending.get(sid)
    // NB: an expired copy is no copy: a touch or merge must never bring it back (found by the soak run).
    if (pending !== undefined)
      return pending.op === 'set' && pending.record.expiresAt > now ? pending.record : undefined
    const cached = this.memory.peek(sid)
    if (cached !== undefined) return cached.expiresAt > now ? cached : undefined
    try {
      return this.disk?.get(sid)
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'reading the disk cache failed', error))
      return undefined
    }
  }

  /** Queues a write for Redis in the outbox; acknowledged once the outbox row has committed. */
  async #toOutbox(sid: string, record: RecordInput | null): Promise<void> {
    if (this.disk === null) {
      this.fail(
        new TieredSessionError(
          ErrorCodes.REDIS_UNAVAILABLE,
          'Redis is down and there is no disk outbox (disk: false)',
        ),
      )
    }
    const version = this.redis.proposedVersion(this.#knownVersion(sid))
    try {
      if (record === null) {
        await this.disk.write({ type: 'outbox-delete', sid, version }, (seq) => {
          this.#pending.set(sid, {
            seq: seq as number,
            sid,
            op: 'delete',
            record: { payload: '', expiresAt: 0, version, userId: null },
          })
          this.memory.delete(sid)
          this.counters.destroys++
        })
      } else {
        const stored: StoredRecord = { ...record, version }
        await this.disk.write({ type: 'outbox-set', sid, record: stored }, (seq) => {
          this.#pending.set(sid, { seq: seq as number, sid, op: 'set', record: stored })
          this.memory.set(sid, stored, { at: 0, epoch: 0 })
          this.counters.writes++
          this.afterMemoryGrew()
        })
      }
    } catch (error) {
      this.fail(error)
    }
  }

  /**
   * A write Redis acknowledged. `write` tracked invalidations while it was in flight: one for a newer version
   * (another instance wrote after us) means our copy is already stale, so it is dropped, not cached.
   */
  #wrote(sid: string, stored: StoredRecord, write: InflightRead): void {
    this.#pending.delete(sid)
    if (write.newest <= stored.version) this.#remember(sid, stored, this.now())
    else this.memory.delete(sid)
    this.#dropDiskCopy(sid)
    this.counters.writes++
  }

  /**
   * Before a live write of a session that still has an outbox entry, let the replay put that entry into
   * Redis first; otherwise the live write (newer) would make the replay skip an acknowledged outage write.
   */
  async #settle(sid: string): Promise<void> {
    for (let i = 0; i < 3 && this.#pending.has(sid) && this.#connection.up; i++) {
      this.#replay()
      await this.replayed()
    }
  }

  async set(sid: string, session: SessionObject): Promise<void> {
    this.checkOpen()
    const now = this.now()
    const record = this.prepareWrite(sid, session, now)
    if (record.expiresAt <= now) return this.destroy(sid)
    await this.#settle(sid)
    if (this.#connection.up) {
      const write = this.#beginRead(sid)
      try {
        const stored = await this.redis.set(
          sid,
          { ...record, version: this.redis.proposedVersion(this.#knownVersion(sid)) },
          this.memory.peek(sid)?.userId,
        )
        this.#wrote(sid, stored, write)
        return
      } catch (error) {
        this.#failUnlessOutage(error)
      } finally {
        this.#endRead(sid, write)
      }
    }
    await this.#toOutbox(sid, record)
  }

  /**
   * Read-modify-write with compare-and-set in Redis (the Lua script retries nothing: we do, on a conflict),
   * so parallel changes to different keys all survive. While Redis is down it applies to the local copy.
   */
  async #update(sid: string, change: (current: StoredRecord) => RecordInput | undefined): Promise<boolean> {
    await this.#settle(sid)
    if (!this.#connection.up || this.#pending.has(sid)) {
      const local = this.#localRecord(sid)
      if (local === undefined) {
        if (this.disk === null || !this.#pending.has(sid)) {
          this.fail(
            new TieredSessionError(
              ErrorCodes.REDIS_UNAVAILABLE,
              'Redis is down and the session is not held locally',
            ),
          )
        }
        return false
      }
      const next = change(local)
      if (next !== undefined) await this.#toOutbox(sid, next)
      return true
    }
    // NB: any live local copy can be the base, trusted or not: the compare-and-set refuses a stale version
    // (then we read the current one and retry), so a copy past localTtlMs costs no read before the write.
    const cached = this.memory.peek(sid)
    const now = this.now()
    let current: StoredRecord | undefined =
      cached !== undefined && cached.expiresAt > now ? cached : undefined
    // A base nobody vouches for: "nothing to write" (a touch that would not extend it) needs the real record.
    let unverified = current !== undefined && cached !== undefined && !this.#trusted(cached, now)
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      try {
        current ??= await this.redis.get(sid)
        if (current === undefined) {
          this.#forget(sid)
          return false
        }
        const next = change(current)
        if (next === undefined && unverified) {
          unverified = false
          current = undefined
          continue
        }
        unverified = false
        if (next === undefined) return true
        const write = this.#beginRead(sid)
        let result: Awaited<ReturnType<RedisTier['compareAndSet']>>
        try {
          result = await this.redis.compareAndSet(sid, next, current.version, current.userId)
        } finally {
          this.#endRead(sid, write)
        }
        if (result.ok) {
          this.#wrote(sid, result.record, write)
          return true
        }
        if (result.gone) {
          this.#forget(sid)
          return false
        }
        current = undefined
      } catch (error) {
        if (
          isTieredSessionError(error) &&
          error.code === ErrorCodes.REDIS_UNAVAILABLE &&
          !this.#connection.up
        ) {
          return this.#update(sid, change)
        }
        this.fail(error, ErrorCodes.REDIS_UNAVAILABLE)
      }
    }
    return this.fail(
      new TieredSessionError(
        ErrorCodes.WRITE_CONFLICT,
        `a session kept changing under ${MAX_CAS_ATTEMPTS} merge attempts`,
      ),
    )
  }

  async merge(sid: string, patch: SessionPatch): Promise<boolean> {
    this.checkOpen()
    if (!isValidSid(sid)) this.fail(new TieredSessionError(ErrorCodes.INVALID_SID, 'invalid session id'))
    const now = this.now()
    const prepared = this.preparePatch(patch, now)
    return this.#update(sid, (current) => this.applyPatch(current, prepared, now))
  }

  async touch(sid: string, session: SessionObject): Promise<void> {
    const plan = await this.planTouch(sid, session, (id) => this.destroy(id))
    if (plan === undefined) return
    const { cookie, expiresAt } = plan
    try {
      await this.#update(sid, (current) => this.applyTouch(current, cookie, expiresAt))
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) return
      throw error
    }
  }

  async destroy(sid: string): Promise<void> {
    this.checkOpen()
    if (!isValidSid(sid)) return
    // A live destroy wins over the outbox entries before it: drop them rather than replay them.
    if (this.#connection.up) {
      try {
        await this.redis.delete(sid)
        this.#pending.delete(sid)
        this.memory.delete(sid)
        this.#dropDiskCopy(sid)
        this.counters.destroys++
        return
      } catch (error) {
        this.#failUnlessOutage(error)
      }
    }
    await this.#toOutbox(sid, null)
  }

  /** A failure that means "Redis is down" falls through to the outbox; anything else is the caller's. */
  #failUnlessOutage(error: unknown): void {
    if (isTieredSessionError(error) && error.code === ErrorCodes.REDIS_UNAVAILABLE && !this.#connection.up)
      return
    this.fail(error, ErrorCodes.REDIS_UNAVAILABLE)
  }

  // ---- outbox replay ---------------------------------------------------------------------------------

  /**
   * Replays the outbox once Redis is back: for each session only its latest entry (older ones are superseded),
   * and only if no live operation replaced it meanwhile. A newer value in Redis is kept, a destroy deletes
   * anything not newer, a tombstone blocks a write, expired entries are dropped. An entry Redis refuses stays
   * (it was acknowledged) and is retried with a growing delay; an outage stops the replay until the next `up`.
   */
  #replay(): void {
    if (this.disk === null || this.#replaying !== undefined || this.closed || !this.#connection.up) return
    const disk = this.disk
    this.#replaying = (async () => {
      let refused = 0
      for (const entry of disk.outbox((error) => this.report(error))) {
        if (!this.#connection.up || this.closed) return
        if (this.#pending.get(entry.sid)?.seq !== entry.seq) {
          disk.removeFromOutbox(entry.seq)
          continue
        }
        try {
          if (entry.op === 'delete') await this.redis.delete(entry.sid, entry.record.version)
          else if (entry.record.expiresAt > this.now()) {
            // Redis had something newer (or a tombstone): our copy is stale.
            if (!(await this.redis.setIfNewer(entry.sid, entry.record))) this.memory.delete(entry.sid)
          }
        } catch (error) {
          if (!this.#connection.up) return
          this.report(wrapError(ErrorCodes.REDIS_UNAVAILABLE, 'Redis refused an outbox entry', error))
          refused++
          continue
        }
        disk.removeFromOutbox(entry.seq)
        if (this.#pending.get(entry.sid)?.seq === entry.seq) this.#pending.delete(entry.sid)
      }
      this.#replayDelayMs = refused > 0 ? Math.min(this.#replayDelayMs * 2, 30_000) : 250
      if (refused > 0) this.#retryTimer = setTimeout(() => this.#replay(), this.#replayDelayMs).unref()
    })()
      .catch((error: unknown) =>
        this.report(wrapError(ErrorCodes.DISK_IO, 'replaying the outbox failed', error)),
      )
      .finally(() => {
        this.#replaying = undefined
      })
  }

  /** Resolves once the outbox replay now running (if any) has finished. */
  async replayed(): Promise<void> {
    while (this.#replaying !== undefined) await this.#replaying
  }

  // ---- whole-store operations (Redis only) -----------------------------------------------------------

  #onCorrupt = (error: TieredSessionError): void => this.report(error)

  async #authoritative<T>(what: () => Promise<T>): Promise<T> {
    this.checkOpen()
    try {
      return await what()
    } catch (error) {
      return this.fail(error, ErrorCodes.REDIS_UNAVAILABLE)
    }
  }

  async all(): Promise<Record<string, SessionObject>> {
    return this.sessionsById(await this.#authoritative(() => this.redis.rows(this.#onCorrupt)))
  }

  ids(): Promise<string[]> {
    return this.#authoritative(() => this.redis.ids())
  }

  async length(): Promise<number> {
    return (await this.ids()).length
  }

  async clear(): Promise<void> {
    await this.#authoritative(() => this.redis.clear())
    this.memory.clear()
    this.#pending.clear()
    try {
      this.disk?.clearNow()
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'clearing the disk cache failed', error))
    }
  }

  async listByUser(userId: unknown): Promise<UserSession[]> {
    const key = normalizeUserId(userId)
    if (key === null) return []
    return this.userSessions(await this.#authoritative(() => this.redis.rowsOfUser(key, this.#onCorrupt)))
  }

  async destroyByUser(userId: unknown, except: readonly string[] = []): Promise<number> {
    const keep = new Set(except)
    const sids = (await this.listByUser(userId)).map((s) => s.sid).filter((sid) => !keep.has(sid))
    await Promise.all(sids.map((sid) => this.destroy(sid)))
    return sids.length
  }

  // ---- maintenance -----------------------------------------------------------------------------------

  async flush(): Promise<SpillResult> {
    this.checkOpen()
    this.disk?.commitNow()
    await nextTurn()
    return this.spiller.cycle()
  }

  /** Drops expired rows from the disk cache and expired copies from memory (Redis expires its own keys). */
  async sweep(): Promise<number> {
    this.checkOpen()
    const now = this.now()
    let total = 0
    try {
      if (this.disk !== null) {
        for (;;) {
          const removed = this.disk.deleteExpired(now, this.options.sweepBatchSize)
          total += removed
          if (removed < this.options.sweepBatchSize || this.closed) break
          await nextTurn()
        }
      }
      if (!this.closed) this.memory.purgeExpired(now)
    } catch (error) {
      this.fail(error)
    } finally {
      this.counters.expired += total
    }
    return total
  }

  stats(): StoreStats {
    return this.snapshot(this.disk, { connected: this.#connection.up }, this.#outboxDepth())
  }

  #outboxDepth(): number {
    if (this.disk === null || this.closed) return 0
    try {
      return this.disk.outboxCount()
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'counting the outbox failed', error))
      return this.#pending.size
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.spiller.stop()
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer)
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    await this.#replaying
    this.closed = true
    this.disk?.close()
    await this.#channel.close()
    await this.#connection.close()
    await nextTurn()
    this.memory.close()
  }
}

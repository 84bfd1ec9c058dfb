// The read path, in both modes: the outbox's latest entry (shared mode), a trusted memory copy, else the disk
// tier — the authority in local mode — or Redis, which in shared mode vouches for a local copy by its version
// (one HMGET of two fields) or answers with the current record, cached unless an invalidation overtook it.

import type { InflightRead } from '../coherence.js'
import { ErrorCodes, isTieredSessionError, TieredSessionError } from '../errors.js'
import type { Budget } from '../redis/budget.js'
import { isValidSid } from '../session-fields.js'
import type { MaybePromise, StoredRecord } from '../tiers/tier.js'
import type { EngineContext } from './context.js'
import type { SessionEntry } from './engine.js'
import type { SharedParts } from './shared-parts.js'

/** The tier a local copy came from. */
type LocalTier = 'memory' | 'disk'

/** Reads sessions for the engine. */
export class ReadPath {
  readonly #ctx: EngineContext

  constructor(context: EngineContext) {
    this.#ctx = context
  }

  /**
   * The live session with its expiry and version, or undefined. `budget` (shared mode): what is left of the
   * request's command timeout; without one, the call gets a whole one.
   */
  getEntry(sid: string, budget?: Budget): MaybePromise<SessionEntry | undefined> {
    const ctx = this.#ctx
    ctx.checkOpen()
    if (!isValidSid(sid)) return ctx.miss()
    const shared = ctx.shared
    const pending = shared?.outbox?.get(sid)
    if (pending !== undefined)
      return this.#serve(sid, pending.op === 'delete' ? undefined : pending.record, 'memory')
    let started = performance.now()
    const cached = ctx.memory.get(sid)
    ctx.latency.observe('get', 'memory', started)
    // Local mode: every memory copy is current, and the disk tier is the authority: its answer is final.
    if (shared === null) {
      if (cached !== undefined) return this.#serve(sid, cached, 'memory')
      started = performance.now()
      const record = ctx.readDisk(sid)
      ctx.latency.observe('get', 'disk', started)
      return this.#serve(sid, record, 'disk')
    }
    const now = ctx.now()
    if (cached !== undefined && shared.coherence.trusted(cached, now))
      return this.#serve(sid, cached, 'memory')
    started = performance.now()
    const local = cached ?? ctx.readDisk(sid)
    if (cached === undefined && ctx.disk !== null) ctx.latency.observe('get', 'disk', started)
    const tier = cached === undefined ? 'disk' : 'memory'
    return this.#fromRedis(shared, sid, local, tier, now, budget)
  }

  /** Serves a local copy; one from disk is promoted into memory (trusted only if `verified`). */
  #serve(
    sid: string,
    record: StoredRecord | undefined,
    tier: LocalTier,
    verified = false,
  ): SessionEntry | undefined {
    const ctx = this.#ctx
    if (record === undefined || record.expiresAt <= ctx.now()) return ctx.miss()
    const session = ctx.decode(record)
    if (session === undefined) {
      ctx.forget(sid)
      return ctx.miss()
    }
    ctx.counters.hits[tier]++
    if (tier === 'disk') {
      const promoted = ctx.memory.write(sid, record)
      if (verified) ctx.shared?.coherence.verified(promoted, ctx.now())
      ctx.counters.promotions++
      ctx.events.promote({ bytes: promoted.bytes })
      ctx.afterMemoryGrew()
    }
    return { session, expiresAt: record.expiresAt, version: record.version, createdAt: record.createdAt }
  }

  /** Shared mode: asks Redis about a session no trusted copy answers for. */
  async #fromRedis(
    shared: SharedParts,
    sid: string,
    local: StoredRecord | undefined,
    tier: LocalTier,
    now: number,
    budget: Budget | undefined,
  ): Promise<SessionEntry | undefined> {
    const ctx = this.#ctx
    // NB: while the first connection is being made, the commands below wait for it (redis.connectTimeout).
    if (!shared.connection.usable) {
      // Redis is down: what we hold locally is the best there is; an unknown session is an outage, not a miss.
      if (local !== undefined) return this.#serve(sid, local, tier)
      return ctx.fail(
        new TieredSessionError(
          ErrorCodes.REDIS_UNAVAILABLE,
          'Redis is down and the session is not held locally',
        ),
      )
    }
    // NB: before beginRead: tracksRead asks whether anything else of this session is in flight.
    const tracked = shared.coherence.tracksRead(sid, local, tier === 'disk')
    const read = shared.coherence.beginRead(sid)
    const limit = (budget ?? shared.connection.budget()).run()
    let fresh: StoredRecord | undefined
    const started = performance.now()
    try {
      // NB: a copy whose read would not be tracked is not worth a version check: it could not become trusted.
      if (tracked && local !== undefined && (await shared.redis.version(sid, limit)) === local.version) {
        const current = shared.coherence.isCurrent(read, local.version)
        const entry = this.#serve(sid, local, tier, current)
        if (current && tier === 'memory') shared.coherence.verified(local, now)
        return entry
      }
      fresh = await shared.redis.get(sid, limit, tracked)
    } catch (error) {
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
        ctx.report(error)
        ctx.forget(sid)
        return ctx.miss()
      }
      // NB: down, or refusing reads (CLUSTERDOWN, a failover): what we hold locally is the best there is.
      const outage =
        isTieredSessionError(error) &&
        (error.code === ErrorCodes.REDIS_UNAVAILABLE || error.code === ErrorCodes.REDIS_REFUSED)
      if (outage && local !== undefined) return this.#serve(sid, local, tier)
      return ctx.fail(error)
    } finally {
      limit.pause()
      shared.coherence.endRead(sid, read)
      ctx.latency.observe('get', 'redis', started)
    }
    // NB: an untracked read that finds the copy held still current: this instance reads the session more often
    // than it changes, so its next read is tracked.
    if (!tracked && local !== undefined && fresh?.version === local.version) shared.coherence.reused(sid)
    return this.#fresh(shared, sid, fresh, read, tracked, tier === 'disk' && local !== undefined, now)
  }

  /** Redis's answer: served, and cached unless an invalidation overtook it or the outbox holds newer. */
  #fresh(
    shared: SharedParts,
    sid: string,
    fresh: StoredRecord | undefined,
    read: InflightRead,
    tracked: boolean,
    diskCopy: boolean,
    now: number,
  ): SessionEntry | undefined {
    const ctx = this.#ctx
    if (fresh === undefined) {
      ctx.forget(sid)
      return ctx.miss()
    }
    const session = ctx.decode(fresh)
    if (session === undefined) return ctx.miss()
    ctx.counters.hits.redis++
    // NB: an invalidation that overtook this reply means it may be stale: serve it, but do not cache it. With the
    // channel lost meanwhile it is kept unverified (checked before it is served; in an outage, the best there is).
    const current = shared.coherence.isCurrent(read, fresh.version)
    // NB: a session connect-redis wrote (migrate) is served, not cached: its first write converts it.
    const cacheable = fresh.legacy === undefined && !shared.outbox?.has(sid)
    if ((current || shared.coherence.lostDuring(read)) && cacheable) {
      const mine = ctx.memory.peekMeta(sid)
      // NB: an untracked reply of the version held leaves our copy be: it may carry a touch not yet sent, or have
      // been verified (by a write of ours, say) while this read was on its way. (`tracked` is true with the channel,
      // which announces every write to every instance.)
      if (mine === undefined || mine.version < fresh.version || (mine.version === fresh.version && tracked))
        ctx.remember(sid, fresh, current && tracked ? now : undefined)
      if (diskCopy) ctx.dropCacheCopy(sid)
    }
    return { session, expiresAt: fresh.expiresAt, version: fresh.version, createdAt: fresh.createdAt }
  }
}

// The write path, in both modes: set, merge, touch and destroy on the authority (a group-committed SQLite
// transaction in local mode, a Lua script in Redis in shared mode), keeping memory in step at the commit; in
// shared mode, while Redis is down, writes go to the outbox and merges and touches apply to the local copy.

import type { SessionObject } from '../codec.js'
import { splitCookie, withCookie } from '../codec.js'
import type { InflightRead } from '../coherence.js'
import { ErrorCodes, isTieredSessionError } from '../errors.js'
import type { DestroyReason } from '../lifecycle.js'
import type { Budget } from '../redis/budget.js'
import { isSpent } from '../redis/budget.js'
import { assertValidSid, isValidSid } from '../session-fields.js'
import type {
  MaybePromise,
  RecordInput,
  StoredRecord,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
} from '../tiers/tier.js'
import { touchWindowMs } from '../tiers/tier.js'
import type { EngineContext } from './context.js'
import type { SessionPatch } from './engine.js'
import type { Change } from './outbox-writes.js'
import { OutboxWrites } from './outbox-writes.js'
import type { SharedParts } from './shared-parts.js'
import type { PreparedTouch, PreparedWrite } from './write-plan.js'
import { WritePlan } from './write-plan.js'

/** True for a failure that means "Redis is down" (not a refusal: Redis answered). */
function isOutage(error: unknown): boolean {
  return isTieredSessionError(error) && error.code === ErrorCodes.REDIS_UNAVAILABLE
}

/** Writes sessions for the engine. */
export class WritePath {
  readonly #ctx: EngineContext
  readonly #plan: WritePlan
  /** Writes the outbox takes instead of Redis. */
  readonly #offline: OutboxWrites
  /** Sessions with data writes (set, merge, destroy) under way, and how many. */
  readonly #writing = new Map<string, number>()

  constructor(context: EngineContext) {
    this.#ctx = context
    this.#plan = new WritePlan(context.options)
    this.#offline = new OutboxWrites(context)
  }

  /**
   * Stores a session; resolves once the authority (or, Redis down, the outbox) has it. `budget` (shared mode):
   * what is left of the request's command timeout; without one, the call gets a whole one.
   */
  async set(sid: string, session: SessionObject, budget?: Budget): Promise<void> {
    const ctx = this.#ctx
    ctx.checkOpen()
    const now = ctx.now()
    const prepared = ctx.prepare(() => this.#plan.write(sid, session, now))
    const record = this.#plan.limitsLifetime
      ? ctx.prepare(() => {
          // NB: a maxLifetime function is called once per write.
          const maxLifetimeMs = this.#plan.maxLifetimeMs(session, prepared.payload) as number
          return {
            ...this.#plan.capped(prepared, this.#createdAt(sid, now), now, maxLifetimeMs),
            maxLifetimeMs,
          }
        })
      : prepared
    // NB: a session already expired is a delete, as connect-redis does; storing it would only waste space.
    if (record.expiresAt <= now) return this.destroy(sid, budget)
    const started = performance.now()
    if (this.#setIsTouch(sid, record, now)) return ctx.latency.observe('set', 'memory', started)
    const limit = this.#begin(sid, budget)
    try {
      // NB: no await unless there is an outbox entry to settle: a write is queued within the call, so writes
      // called one after another (set, then destroy) reach the authority in that order.
      const outbox = ctx.shared?.outbox
      if (outbox?.has(sid)) await outbox.settle(sid, limit)
      await this.#set(sid, record, limit)
    } finally {
      this.#end(sid, limit)
    }
  }

  #set(sid: string, record: PreparedWrite, budget: Budget | undefined): Promise<void> {
    const ctx = this.#ctx
    return this.#onAuthority(
      sid,
      (tracked) => {
        let created = false
        const onCommit = (stored: StoredRecord) => {
          this.#wrote(sid, stored, tracked)
          // NB: local mode: an inserted row gets version 1 (an upsert of an existing one raises its version).
          if (ctx.shared === null ? stored.version === 1 : created)
            ctx.step({ type: 'created', userId: stored.userId })
        }
        // NB: ordering after other writers' versions and the user-index hint matter only to a shared authority.
        const options: WriteOptions =
          ctx.shared === null
            ? { onCommit, fresh: ctx.memory.peekMeta(sid) === undefined }
            : {
                after: this.#offline.knownVersion(sid),
                previousUser: ctx.memory.peekMeta(sid)?.userId,
                onCommit,
                onCreated: () => {
                  created = true
                },
                budget,
                ...(record.maxLifetimeMs === undefined ? {} : { maxLifetimeMs: record.maxLifetimeMs }),
              }
        const started = performance.now()
        return ctx.latency.time('set', ctx.authority.kind, started, ctx.authority.write(sid, record, options))
      },
      async () => {
        // NB: Redis down: a session this instance knows nothing of is taken as created (Redis cannot say).
        const created = this.#offline.knownVersion(sid) === 0
        const started = performance.now()
        await ctx.latency.time('set', 'disk', started, this.#offline.queue(sid, record))
        if (created) ctx.step({ type: 'created', userId: record.userId })
      },
      (stored) => stored,
      budget,
    )
  }

  /**
   * A data write of `sid` is under way (until #end): a set meanwhile is never taken for a touch. In shared mode
   * it counts against `budget` (a budget of its own without one), which it returns, running.
   */
  #begin(sid: string, budget: Budget | undefined): Budget | undefined {
    this.#writing.set(sid, (this.#writing.get(sid) ?? 0) + 1)
    return this.#run(budget)
  }

  #end(sid: string, budget: Budget | undefined): void {
    budget?.pause()
    const left = (this.#writing.get(sid) ?? 1) - 1
    if (left === 0) this.#writing.delete(sid)
    else this.#writing.set(sid, left)
  }

  /**
   * Applies a request's changes onto the latest stored version, atomically: the keys in `set` (as JSON text)
   * are replaced, those in `unset` removed, the cookie replaced; every other key keeps what the latest write
   * left. Resolves to false when the session no longer exists (destroyed or expired meanwhile).
   */
  async merge(sid: string, patch: SessionPatch, budget?: Budget): Promise<boolean> {
    const ctx = this.#ctx
    ctx.checkOpen()
    const now = ctx.now()
    const prepared = ctx.prepare(() => {
      assertValidSid(sid)
      return this.#plan.patch(patch, now)
    })
    // NB: two requests that change different keys both keep their change (the same key: the last one wins).
    const limit = this.#begin(sid, budget)
    const started = performance.now()
    try {
      return await this.#update(
        sid,
        (current) =>
          this.#plan.withLifetime(this.#plan.applyPatch(current, prepared, now), current.createdAt, now),
        limit,
      )
    } finally {
      ctx.latency.observe('merge', ctx.authority.kind, started)
      this.#end(sid, limit)
    }
  }

  /**
   * Slides the expiry of a live session forward to the session's `cookie.expires` (or ttl), keeping the stored
   * data and replacing only its `cookie`. A missing or expired session stays missing, and a touch never
   * shortens a session (a later write may have given it a longer life). With `touchAfter`, a touch of a session
   * saved less than that fraction of its lifetime ago does nothing.
   *
   * A touch is not a data write (promise 8): with the session in memory, its copy there is updated and the
   * touch acknowledged at once; the durable part is coalesced and committed in the background.
   */
  async touch(sid: string, session: SessionObject, budget?: Budget): Promise<void> {
    const ctx = this.#ctx
    ctx.checkOpen()
    if (!isValidSid(sid)) return
    const now = ctx.now()
    const touch = ctx.prepare(() => this.#plan.touch(session, now), 'the session cookie could not be stored')
    if (touch.expiresAt <= now) return this.destroy(sid, budget)
    const started = performance.now()
    const cached = ctx.memory.peek(sid)
    if (cached !== undefined && cached.expiresAt > now && this.#plan.throttled(cached, touch, now))
      return ctx.latency.observe('touch', 'memory', started)
    if (cached !== undefined && this.#touchInMemory(sid, cached, touch, now))
      return ctx.latency.observe('touch', 'memory', started)
    const limit = this.#run(budget)
    try {
      await this.#update(sid, (current) => this.#touched(current, touch, now), limit)
    } catch (error) {
      // NB: a stored copy that does not decode was reported by #update; touching it is no one's loss.
      if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) return
      throw error
    } finally {
      limit?.pause()
      ctx.latency.observe('touch', ctx.authority.kind, started)
    }
  }

  /** The durable touch of `current`: its new cookie and expiry (capped by `maxLifetime`), or undefined. */
  #touched(current: StoredRecord, touch: PreparedTouch, now: number): RecordInput | undefined {
    if (this.#plan.throttled(current, touch, now)) return undefined
    const next = this.#plan.applyTouch(current, touch)
    if (next === undefined || !this.#plan.limitsLifetime) return next
    const capped = this.#plan.withLifetime(next, current.createdAt, now)
    // NB: a touch never shortens a session (a legacy record is converted by it all the same).
    return capped.expiresAt > current.expiresAt || current.legacy !== undefined ? capped : undefined
  }

  /**
   * `maxLifetime`: when the session being set was created — its copy in memory, else on disk (the authority in
   * local mode, the spill cache in shared mode, where Redis keeps the creation time it holds over this one).
   * Undefined for a new session.
   */
  #createdAt(sid: string, now: number): number | undefined {
    const ctx = this.#ctx
    const cached = ctx.memory.peekMeta(sid)
    if (cached !== undefined && cached.expiresAt > now) return cached.createdAt
    const stored = ctx.readDisk(sid)
    return stored !== undefined && stored.expiresAt > now ? stored.createdAt : undefined
  }

  /**
   * A set that only moves the cookie forward (express-session sends the whole session on a rolling or resaved
   * request) is a touch: same data as the copy in memory, same user, a later expiry.
   */
  #setIsTouch(sid: string, record: PreparedWrite, now: number): boolean {
    // NB: a data write under way is not in the memory copy yet: the copy cannot say what this set replaces.
    if (this.#writing.has(sid)) return false
    const cached = this.#ctx.memory.peek(sid)
    if (cached === undefined || cached.userId !== record.userId || cached.expiresAt >= record.expiresAt)
      return false
    // NB: in shared mode only a trusted copy is known to hold what Redis holds.
    const shared = this.#ctx.shared
    if (shared !== null && !shared.coherence.trusted(cached, now)) return false
    const next = splitCookie(record.payload)
    if (next === undefined || splitCookie(cached.payload)?.data !== next.data) return false
    const touch = { cookieText: next.cookie, expiresAt: record.expiresAt, lifetimeMs: 0 }
    return this.#touchInMemory(sid, cached, touch, now)
  }

  /**
   * The touch of a session held in memory: its memory copy gets the new cookie and expiry now, and the authority
   * a deferred touch of that version (dropped there should the session have changed meanwhile). False when the
   * touch needs the durable path: a copy that is not live, an outbox entry, Redis unreachable.
   */
  #touchInMemory(sid: string, cached: StoredRecord, touch: PreparedTouch, now: number): boolean {
    const ctx = this.#ctx
    const shared = ctx.shared
    // NB: a session this close to its expiry is touched durably at once: a deferred touch could land after its
    // old expiry, and meanwhile another instance (or a read from disk after a spill) would find it expired.
    if (cached.expiresAt - now <= 2 * touchWindowMs(touch.expiresAt - now)) return false
    if (shared !== null && (!shared.connection.up || shared.outbox?.has(sid))) return false
    if (this.#plan.limitsLifetime) {
      // NB: a copy written before `maxLifetime` has no creation time: the durable path stamps one.
      if (cached.createdAt === undefined) return false
      const maxMs = this.#plan.maxLifetimeMs(undefined, cached.payload) as number
      return this.#touchCopy(
        sid,
        cached,
        { ...touch, expiresAt: Math.min(touch.expiresAt, cached.createdAt + maxMs) },
        now,
      )
    }
    return this.#touchCopy(sid, cached, touch, now)
  }

  /** The rest of {@link #touchInMemory}, with the touch's expiry capped by `maxLifetime`. */
  #touchCopy(sid: string, cached: StoredRecord, touch: PreparedTouch, now: number): boolean {
    const ctx = this.#ctx
    const shared = ctx.shared
    // NB: never shorter: a later write may have given the session a longer life than this request's cookie.
    // In shared mode only a trusted copy can say so; Redis's own copy may expire sooner.
    if (cached.expiresAt >= touch.expiresAt) return shared === null || shared.coherence.trusted(cached, now)
    let payload: string
    try {
      payload = withCookie(cached.payload, touch.cookieText)
    } catch {
      return false
    }
    const noCacheRow = shared !== null && ctx.memory.peekMeta(sid)?.noCacheRow === true
    const touched = ctx.memory.write(sid, {
      payload,
      expiresAt: touch.expiresAt,
      userId: cached.userId,
      createdAt: cached.createdAt,
      version: cached.version,
    })
    // NB: the same session, rewritten in memory: what was known of the cache's row holds.
    if (noCacheRow) ctx.memory.markNoCacheRow(sid, touched)
    shared?.coherence.carryTrust(cached, touched)
    ctx.counters.writes++
    ctx.authority.touchLater(sid, {
      version: cached.version,
      expiresAt: touch.expiresAt,
      cookieText: touch.cookieText,
      userId: cached.userId,
      windowMs: touchWindowMs(touch.expiresAt - now),
    })
    return true
  }

  /**
   * Removes a session from every tier; resolves once the authority (or, Redis down, the outbox) has it. `reason`
   * goes into the `destroyed` event, emitted when a live session was there.
   */
  async destroy(sid: string, budget?: Budget, reason: DestroyReason = 'destroy'): Promise<void> {
    const ctx = this.#ctx
    ctx.checkOpen()
    if (!isValidSid(sid)) return
    const userId = this.#knownUser(sid)
    // NB: no settle first: a live destroy wins over the outbox entries before it (they are dropped, not replayed).
    // Asked before the destroy reaches Redis: one of them may be replaying from another process on the file.
    const tombstoneUntil = ctx.shared?.outbox?.replayableUntil(sid)
    const limit = this.#begin(sid, budget)
    const started = performance.now()
    try {
      await this.#onAuthority(
        sid,
        () =>
          ctx.authority.delete(sid, {
            tombstoneUntil,
            onCommit: (existed) => {
              this.#destroyed(sid)
              if (existed) ctx.step({ type: 'destroyed', userId: userId ?? null, reason })
            },
            budget: limit,
          }),
        async () => {
          await this.#offline.queue(sid, null)
          // NB: Redis down: destroyed if this instance held a live copy (Redis cannot say).
          if (userId !== undefined) ctx.step({ type: 'destroyed', userId, reason })
        },
        // NB: a tombstone left for the outbox's waiting writes (with none there before) is a write to confirm too.
        (existed) => (existed || tombstoneUntil !== undefined ? null : undefined),
        limit,
      )
    } finally {
      this.#end(sid, limit)
      ctx.latency.observe('destroy', ctx.authority.kind, started)
    }
  }

  /**
   * The user of the live copy of `sid` this instance holds (memory, outbox, the file), or undefined when it holds
   * none: what the `destroyed` event reports (in local mode the file is the authority; in shared mode Redis
   * removes a session without saying whose it was).
   */
  #knownUser(sid: string): string | null | undefined {
    const ctx = this.#ctx
    const now = ctx.now()
    const pending = ctx.shared?.outbox?.get(sid)
    if (pending !== undefined)
      return pending.op === 'set' && pending.record.expiresAt > now ? pending.record.userId : undefined
    const cached = ctx.memory.peekMeta(sid)
    if (cached !== undefined && cached.expiresAt > now) return cached.userId
    try {
      return ctx.disk?.get(sid)?.userId
    } catch {
      // NB: an unreadable copy only means the event cannot name the user; the destroy itself goes on.
      return null
    }
  }

  /** Shared mode: `budget` (or one of its own), running; local mode: none. */
  #run(budget: Budget | undefined): Budget | undefined {
    return (budget ?? this.#ctx.shared?.connection.budget())?.run()
  }

  /** `maxLifetime` of this session in ms, or null without the option. */
  maxLifetimeMs(session: SessionObject): number | null {
    return this.#plan.maxLifetimeMs(session, '')
  }

  /** The lifetime (ms) a write of `session` would get: its cookie's remaining life, or the ttl. */
  lifetimeMs(session: SessionObject): number {
    const now = this.#ctx.now()
    return this.#plan.expiresAt(session, now) - now
  }

  // ---- the steps ------------------------------------------------------------------------------------

  /**
   * Read-modify-write on the latest version, atomically (a transaction in SQLite, a compare-and-set in Redis
   * starting from the memory copy). While Redis is down it applies to the local copy, through the outbox.
   * Resolves to false when the session no longer exists: it is not brought back.
   */
  async #update(sid: string, change: Change, budget: Budget | undefined): Promise<boolean> {
    const ctx = this.#ctx
    const shared = ctx.shared
    if (shared !== null) {
      if (shared.outbox?.has(sid)) await shared.outbox.settle(sid, budget)
      if (!shared.connection.usable || shared.outbox?.has(sid) || isSpent(budget))
        return this.#offline.update(shared, sid, change)
    }
    const tracked = shared?.coherence.beginRead(sid)
    const onCommit = (stored: StoredRecord) => this.#wrote(sid, stored, tracked)
    let result: UpdateResult
    try {
      result = await ctx.authority.update(
        sid,
        change,
        shared === null ? { onCommit } : this.#base(shared, sid, onCommit, budget),
      )
    } catch (error) {
      // NB: Redis down, or the request's budget spent (Redis too slow): the change goes to the outbox.
      if (shared !== null && isOutage(error) && (!shared.connection.up || isSpent(budget)))
        return this.#offline.update(shared, sid, change)
      // NB: refused after its script may have run (an index update refused, say): our copy may be older than
      // Redis's, and no invalidation of our own write will come: it is dropped.
      if (shared !== null) ctx.forget(sid)
      return ctx.fail(error)
    } finally {
      if (tracked !== undefined) shared?.coherence.endRead(sid, tracked)
    }
    if (shared !== null && result.status === 'written')
      await this.#confirm(shared, sid, result.record, budget)
    if (result.status !== 'missing') return true
    // NB: Redis no longer has it: drop our copies (in local mode the disk tier's answer already is the truth).
    if (shared !== null) ctx.forget(sid)
    return false
  }

  /**
   * Shared mode: any live memory copy is the compare-and-set base, trusted or not (a stale one is refused and
   * the current record read), so an update costs no read before the write.
   */
  #base(
    shared: SharedParts,
    sid: string,
    onCommit: (stored: StoredRecord) => void,
    budget: Budget | undefined,
  ): UpdateOptions {
    const cached = this.#ctx.memory.peek(sid)
    // NB: the tier ignores a base that is no longer live.
    if (cached === undefined) return { onCommit, budget }
    const unverifiedBase = !shared.coherence.trusted(cached, this.#ctx.now())
    return { base: cached, unverifiedBase, onCommit, budget }
  }

  /**
   * Runs a write on the authority, tracking invalidations meanwhile (shared mode). While Redis is down — or
   * goes down under the write — the outbox takes it instead (`offline`).
   */
  async #onAuthority<R>(
    sid: string,
    write: (tracked: InflightRead | undefined) => MaybePromise<R>,
    offline: () => Promise<unknown>,
    written: (result: R) => StoredRecord | null | undefined,
    budget: Budget | undefined,
  ): Promise<void> {
    const ctx = this.#ctx
    const shared = ctx.shared
    if (shared !== null && (!shared.connection.usable || isSpent(budget))) {
      await offline()
      return
    }
    const tracked = shared?.coherence.beginRead(sid)
    let result: R
    try {
      result = await write(tracked)
    } catch (error) {
      // NB: Redis down, or the request's budget spent (Redis too slow): the write goes to the outbox.
      if (shared !== null && isOutage(error) && (!shared.connection.up || isSpent(budget))) await offline()
      else {
        // NB: refused after its script may have run: our copy may be older than Redis's (see #update).
        if (shared !== null) ctx.forget(sid)
        ctx.fail(error)
      }
      return
    } finally {
      if (tracked !== undefined) shared?.coherence.endRead(sid, tracked)
    }
    if (shared !== null) await this.#confirm(shared, sid, written(result), budget)
  }

  /**
   * With `redis.waitForReplicas`: a write (or, null, a destroy) that the replicas did not confirm is queued in
   * the outbox too, at its own version, and replayed until they do (a replay of what did arrive changes
   * nothing). Undefined: nothing was written.
   */
  async #confirm(
    shared: SharedParts,
    sid: string,
    written: StoredRecord | null | undefined,
    budget: Budget | undefined,
  ): Promise<void> {
    if (shared.redis.replicas === 0 || written === undefined) return
    let confirmed = false
    try {
      confirmed = await shared.redis.confirm(sid, budget)
    } catch {
      // NB: the write itself was answered; only its replication is unknown, which the outbox covers.
    }
    if (confirmed) return
    // NB: a newer write of the session made meanwhile (acknowledged from the outbox while this one waited for
    // its confirmation) already holds this one's data: queueing this older one now would replace it.
    if (written !== null && this.#offline.knownVersion(sid) > written.version) return
    await this.#offline.queue(sid, written, written?.version, false)
  }

  /**
   * A write the authority acknowledged (called at its commit). In shared mode invalidations were tracked while
   * it was in flight: one for a newer version (another instance wrote after us) means our copy is already
   * stale, so it is dropped, not cached; a channel lost meanwhile leaves it cached but unverified.
   */
  #wrote(sid: string, stored: StoredRecord, tracked: InflightRead | undefined): void {
    const ctx = this.#ctx
    const outbox = ctx.shared?.outbox
    // NB: a write of ours acknowledged from the outbox while this one was in flight (Redis looked down) is newer:
    // its entry must still be replayed and its copy stay; only older entries are superseded.
    if (outbox !== undefined && outbox !== null && outbox.versionOf(sid) > stored.version) {
      ctx.counters.writes++
      return
    }
    outbox?.superseded(sid, stored.version)
    const coherence = ctx.shared?.coherence
    // NB: shared mode: a copy held since a write that dropped the cache's row says none came since (a spilled
    // record leaves memory): no lookup in the file for it on every write.
    const noCacheRow = ctx.memory.peekMeta(sid)?.noCacheRow === true
    let kept: StoredRecord | undefined
    if (tracked === undefined || coherence?.isCurrent(tracked, stored.version)) {
      kept = ctx.remember(sid, stored, ctx.now())
    } else if (coherence?.lostDuring(tracked)) {
      // NB: the channel dropped meanwhile: the copy may be stale, so it is kept unverified (checked against Redis
      // before it is served; during an outage it is the best there is), not dropped.
      kept = ctx.remember(sid, stored)
    } else ctx.memory.delete(sid)
    // NB: only the record just kept is marked (a spill that remember() started may have replaced it already).
    if ((noCacheRow || ctx.dropCacheCopy(sid)) && kept !== undefined) ctx.memory.markNoCacheRow(sid, kept)
    ctx.counters.writes++
  }

  /** A destroy the authority acknowledged (called at its commit). */
  #destroyed(sid: string): void {
    const ctx = this.#ctx
    const shared = ctx.shared
    shared?.outbox?.destroyed(sid, shared.redis.proposedVersion())
    ctx.memory.delete(sid)
    ctx.dropCacheCopy(sid)
    ctx.counters.destroys++
  }
}

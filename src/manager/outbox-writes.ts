// Shared mode's writes that the outbox takes instead of Redis (down, or no time left of the request's command
// timeout): writes and destroys queued as they are, merges and touches applied to the copy held locally.

import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { RecordInput, StoredRecord } from '../tiers/tier.js'
import type { EngineContext } from './context.js'
import type { SharedParts } from './shared-parts.js'

/** A record change for `update`: the replacement of the latest record, or undefined to write nothing. */
export type Change = (current: StoredRecord) => RecordInput | undefined

/** Queues writes in the outbox, in the versions that order them after what this instance knows. */
export class OutboxWrites {
  readonly #ctx: EngineContext
  /** The last outage update queued for each session (see update). */
  readonly #updates = new Map<string, Promise<unknown>>()

  constructor(context: EngineContext) {
    this.#ctx = context
  }

  /**
   * An update while Redis is down: applied to the copy held locally, queued in the outbox. Updates of one
   * session run one after another: each starts from the copy the previous one queued (two requests of a
   * session changing different keys during an outage both keep their change).
   */
  async update(shared: SharedParts, sid: string, change: Change): Promise<boolean> {
    const previous = this.#updates.get(sid)
    const update = (previous ?? Promise.resolve()).then(() => this.#apply(shared, sid, change))
    const tail = update.catch(() => undefined)
    this.#updates.set(sid, tail)
    try {
      return await update
    } finally {
      if (this.#updates.get(sid) === tail) this.#updates.delete(sid)
    }
  }

  async #apply(shared: SharedParts, sid: string, change: Change): Promise<boolean> {
    const ctx = this.#ctx
    const local = this.#localRecord(shared, sid)
    if (local === undefined) {
      if (shared.outbox?.has(sid) !== true) {
        ctx.fail(
          new TieredSessionError(
            ErrorCodes.REDIS_UNAVAILABLE,
            'Redis is down and the session is not held locally',
          ),
        )
      }
      return false
    }
    let next: RecordInput | undefined
    try {
      next = change(local)
    } catch (error) {
      return ctx.fail(error)
    }
    if (next !== undefined) await this.queue(sid, next)
    return true
  }

  /** The session as this instance holds it locally (outbox, memory or disk cache), for writes during an outage. */
  #localRecord(shared: SharedParts, sid: string): StoredRecord | undefined {
    const ctx = this.#ctx
    const now = ctx.now()
    const pending = shared.outbox?.get(sid)
    // NB: an expired copy is no copy: a touch or merge must never bring it back (found by the soak run).
    if (pending !== undefined)
      return pending.op === 'set' && pending.record.expiresAt > now ? pending.record : undefined
    const cached = ctx.memory.peek(sid)
    if (cached !== undefined) return cached.expiresAt > now ? cached : undefined
    return ctx.readDisk(sid)
  }

  /** The newest version this instance knows of `sid` (outbox, memory, disk cache), to order a write after it. */
  knownVersion(sid: string): number {
    const ctx = this.#ctx
    const pending = ctx.shared?.outbox?.versionOf(sid) ?? 0
    const cached = ctx.memory.peekMeta(sid)?.version
    // NB: a copy in memory is at least as new as one on disk (disk copies are spilled from memory).
    if (cached !== undefined || ctx.cache === null) return Math.max(pending, cached ?? 0)
    let onDisk = 0
    try {
      onDisk = ctx.cache.get(sid)?.version ?? 0
    } catch {
      // NB: a corrupt or unreadable cached row only means we do not know its version; Redis orders the rest.
    }
    return Math.max(pending, onDisk)
  }

  /**
   * Queues a write (or, with null, a destroy) in the outbox; acknowledged once the outbox row has committed.
   * `version` keeps a write's own (one Redis has, unconfirmed); `counted` is false for such a second copy.
   */
  async queue(sid: string, record: RecordInput | null, version?: number, counted = true): Promise<void> {
    const ctx = this.#ctx
    const shared = ctx.shared as SharedParts
    if (shared.outbox === null) {
      return ctx.fail(
        new TieredSessionError(
          ErrorCodes.REDIS_UNAVAILABLE,
          'Redis is down and there is no disk outbox (disk: false)',
        ),
      )
    }
    const at = version ?? shared.redis.proposedVersion(this.knownVersion(sid))
    try {
      await shared.outbox.append(sid, record, at, (entry) => {
        if (entry.op === 'delete') {
          ctx.memory.delete(sid)
          if (counted) ctx.counters.destroys++
        } else {
          ctx.remember(sid, entry.record)
          if (counted) ctx.counters.writes++
        }
      })
    } catch (error) {
      ctx.fail(error, ErrorCodes.DISK_IO)
    }
    // NB: with Redis up (a write the replicas did not confirm, a budget spent), no reconnection will start the
    // replay: start it now (it does nothing while Redis is down).
    shared.outbox.replay()
  }
}

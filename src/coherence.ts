// Coherence of shared mode: which local copies may be served without asking Redis, the reads and writes in
// flight that an invalidation overtook, and applying the invalidations other instances publish.

import type { Clock } from './clock.js'
import type { RedisConnection } from './redis/connection.js'
import type { InvalidationMode } from './redis/invalidation-channel.js'
import { InvalidationChannel } from './redis/invalidation-channel.js'
import type { MemoryTier } from './tiers/memory-tier.js'
import { recordIdentity } from './tiers/memory-tier.js'
import type { StoredRecord } from './tiers/tier.js'

/**
 * A read (or write) of Redis in flight. An invalidation for a newer version than its reply (or a lost channel)
 * arriving meanwhile means the reply may be stale: it is served but not cached.
 */
export interface InflightRead {
  /** The highest version an invalidation announced during the read (Infinity: the channel was lost). */
  newest: number
}

/** Options of {@link Coherence}. */
export interface CoherenceOptions {
  readonly connection: RedisConnection
  /** Pub/sub channel of invalidations. */
  readonly channel: string
  /** How invalidations should reach this instance (see InvalidationChannel). */
  readonly mode: InvalidationMode
  /** The session id of a Redis key, or undefined for a key that is no session of ours. */
  readonly sidOf: (key: string) => string | undefined
  /** This instance's id in invalidation messages, so it can skip its own. */
  readonly origin: string
  /** Longest a verified copy is served without asking Redis, in ms. */
  readonly localTtlMs: number
  readonly clock: Clock
  readonly memory: MemoryTier
  /** Drops a copy held below memory (the disk spill cache). */
  readonly dropCopy: (sid: string) => void
  /** An invalidation from another instance was applied. */
  readonly onInvalidation: () => void
  /** The channel went live (true) or was lost (false). */
  readonly onLive: (live: boolean) => void
  /** A message on the channel that is not ours (counted, never acted on). */
  readonly onGarbage: () => void
}

/** Most sessions remembered for a tracked next read (see Coherence.#reuse). */
const REUSE_MAX = 10_000

/** The coherence tracker of one shared-mode store. */
export class Coherence {
  readonly #options: CoherenceOptions
  readonly #channel: InvalidationChannel
  /**
   * When each memory copy was last verified against Redis (ms), keyed by the record's identity (the record the
   * memory tier holds: every copy it hands out of one stored record shares it), so a copy replaced in memory is
   * forgotten with it. Replaced whole when invalidations may have been missed.
   */
  #verified = new WeakMap<object, number>()
  readonly #inflight = new Map<string, Set<InflightRead>>()
  /** Every record once verified (never forgotten with trust: it says the session is in use here). */
  readonly #everVerified = new WeakSet<object>()
  /**
   * Tracking: sessions whose next read asks Redis to track them for this instance, though it holds no verified
   * copy: an invalidation dropped its copy (it was in use here), or a read found the copy it held still current
   * (the session is read here more often than it changes). Consumed by that read. At most {@link REUSE_MAX}, the
   * oldest forgotten first (a read of one forgotten is merely not tracked: its copy is kept unverified).
   */
  readonly #reuse = new Set<string>()

  constructor(options: CoherenceOptions) {
    this.#options = options
    this.#channel = new InvalidationChannel({
      connection: options.connection,
      channel: options.channel,
      origin: options.origin,
      mode: options.mode,
      sidOf: options.sidOf,
      onInvalidate: (sid, version) => this.#apply(sid, version),
      onLost: () => {
        this.#loseTrust()
        options.onLive(false)
      },
      onLive: () => {
        this.#loseTrust()
        options.onLive(true)
      },
      onGarbage: options.onGarbage,
    })
  }

  /** True while invalidations are being delivered. */
  get live(): boolean {
    return this.#channel.live
  }

  /** How invalidations reach this instance now. */
  get mode(): InvalidationMode {
    return this.#channel.mode
  }

  /**
   * Whether a read of `sid` in Redis should be tracked (and the copy it leaves trusted): always with the channel
   * (every write is announced to every instance); with tracking, for a copy in the spill cache (`fromDisk`: it
   * was in use here), when `local` (the memory copy) was once verified, or when `sid` was marked for reuse (see
   * #reuse). Otherwise the read asks Redis not to remember it: one read of a session by an instance, as behind
   * a load balancer without sticky sessions, then costs no tracking entry and no invalidation message at the
   * session's next write.
   */
  tracksRead(sid: string, local: StoredRecord | undefined, fromDisk: boolean): boolean {
    if (this.#channel.mode === 'channel') return true
    if (this.#reuse.delete(sid)) return true
    // NB: a write (or read) of it in flight: an untracked read, sent at once, could overtake that write.
    if (this.#inflight.has(sid)) return true
    if (local === undefined) return false
    return fromDisk || this.#everVerified.has(recordIdentity(local))
  }

  /** An untracked read found the copy held still current: the next read of `sid` is tracked. */
  reused(sid: string): void {
    this.#markReuse(sid)
  }

  #markReuse(sid: string): void {
    // NB: the oldest mark goes first (a Set iterates in insertion order).
    if (this.#reuse.size >= REUSE_MAX) this.#reuse.delete(this.#reuse.values().next().value as string)
    this.#reuse.add(sid)
  }

  /** True for a memory copy that can be served without asking Redis. */
  trusted(record: StoredRecord, now: number): boolean {
    const at = this.#verified.get(recordIdentity(record))
    return at !== undefined && this.#channel.live && now - at < this.#options.localTtlMs
  }

  /** The copy in memory was checked against Redis at `now` (or is what Redis just acknowledged). */
  verified(record: StoredRecord, now: number): void {
    const identity = recordIdentity(record)
    this.#verified.set(identity, now)
    this.#everVerified.add(identity)
  }

  /** `next` replaces `previous` in memory with the same data (a touch): it is as trusted as `previous` was. */
  carryTrust(previous: StoredRecord, next: StoredRecord): void {
    const at = this.#verified.get(recordIdentity(previous))
    if (at !== undefined) this.#verified.set(recordIdentity(next), at)
    if (this.#everVerified.has(recordIdentity(previous))) this.#everVerified.add(recordIdentity(next))
  }

  /** Starts tracking invalidations of `sid` for a read or write about to go to Redis. */
  beginRead(sid: string): InflightRead {
    const read: InflightRead = { newest: this.#channel.live ? 0 : Number.POSITIVE_INFINITY }
    let reads = this.#inflight.get(sid)
    if (reads === undefined) {
      reads = new Set()
      this.#inflight.set(sid, reads)
    }
    reads.add(read)
    return read
  }

  endRead(sid: string, read: InflightRead): void {
    const reads = this.#inflight.get(sid)
    reads?.delete(read)
    if (reads?.size === 0) this.#inflight.delete(sid)
  }

  /**
   * True when the channel was lost during the read (no invalidation is known to have overtaken it, but one may
   * have been missed): its reply may be kept as an unverified copy, checked against Redis before it is served.
   */
  lostDuring(read: InflightRead): boolean {
    return read.newest === Number.POSITIVE_INFINITY
  }

  /** True when no invalidation newer than `version` overtook the read: its reply may be cached. */
  isCurrent(read: InflightRead, version: number): boolean {
    return read.newest <= version
  }

  /** Another instance wrote or destroyed `sid`, making it `version`. */
  #apply(sid: string, version: number): void {
    for (const read of this.#inflight.get(sid) ?? []) read.newest = Math.max(read.newest, version)
    const cached = this.#options.memory.peekMeta(sid)
    // NB: keep our own newer copy (a write of ours that Redis ordered after this one).
    if (cached === undefined || cached.version < version) this.#options.memory.delete(sid)
    this.#options.dropCopy(sid)
    if (this.#channel.mode === 'tracking') this.#markReuse(sid)
    this.#options.onInvalidation()
  }

  /** Invalidations may have been missed (or the channel just came back): nothing cached is trusted as is. */
  #loseTrust(): void {
    this.#verified = new WeakMap()
    for (const reads of this.#inflight.values())
      for (const read of reads) read.newest = Number.POSITIVE_INFINITY
  }

  /** Resolves once every invalidation Redis sent before now has been applied (see InvalidationChannel). */
  delivered(): Promise<void> {
    return this.#channel.delivered()
  }

  /** Unsubscribes and closes the channel's connection. */
  close(): Promise<void> {
    return this.#channel.close()
  }
}

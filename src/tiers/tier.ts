// The record every tier stores, and the Tier contract: exactly what the tier manager calls on a tier (the
// conformance suite in test/conformance/ runs it on every tier and client).

import type { TieredSessionError } from '../errors.js'
import type { Budget } from '../redis/budget.js'
import type { KeepOutcome } from './cache-writes.js'

/** A session as a tier stores it: the serialized payload plus the metadata the manager needs. */
export interface StoredRecord {
  /** Serialized session (JSON text). */
  readonly payload: string
  /** Absolute expiry, milliseconds since the epoch. The record is dead at `now >= expiresAt`. */
  readonly expiresAt: number
  /** Write counter of this session; every write makes it larger. */
  readonly version: number
  /** The user the session belongs to, or null. */
  readonly userId: string | null
  /**
   * When the session was created, ms since the epoch (`maxLifetime`: its expiry never passes creation +
   * maxLifetime). Kept only with `maxLifetime`; undefined for sessions written without it.
   */
  readonly createdAt?: number | undefined
  /** Shared mode, `migrate`: the connect-redis value this record was read from (not converted to ours yet). */
  readonly legacy?: string
}

/** What a caller hands a tier to store. With `version`, the tier stores exactly that version. */
export type RecordInput = Omit<StoredRecord, 'version'> & { readonly version?: number }

/** A record with its session id, as listings return it. */
export interface TierRow extends StoredRecord {
  readonly sid: string
}

/** A value, or a promise of it: memory and disk reads are synchronous, writes may not be. */
export type MaybePromise<T> = T | Promise<T>

/** Hears of a stored record that does not decode (TS_DECODE_FAILED); the listing leaves it out. */
export type OnCorrupt = (error: TieredSessionError) => void

/** Options of {@link Tier.write}. */
export interface WriteOptions {
  /**
   * The newest version the caller knows of this session (another tier's copy, an outbox entry): the stored
   * version is greater than it, as well as greater than the version the tier held. Ignored with `version`.
   */
  readonly after?: number
  /** The user of the copy the caller holds, if any: a hint that lets a tier with a user index skip an update. */
  readonly previousUser?: string | null
  /**
   * A hint: the caller holds no copy, so the session is probably new. The disk tier then inserts at once instead
   * of first trying the UPDATE of an existing row (the same row either way).
   */
  readonly fresh?: boolean
  /** Called once the write is durable, before the returned value settles: keeps caches in step with commits. */
  readonly onCommit?: (stored: StoredRecord) => void
  /**
   * Called before `onCommit` when the write created the session (no live record was there). Only Redis calls
   * it; in local mode the write path tells a created row by its version (1: inserted).
   */
  readonly onCreated?: () => void
  /** Shared mode: what is left of the request's command timeout (other tiers ignore it). */
  readonly budget?: Budget
  /**
   * `maxLifetime` in ms (Redis): a live session keeps its stored creation time over `record.createdAt`, and the
   * expiry is capped at creation + this; the resolved record says what was stored. Other tiers ignore it.
   */
  readonly maxLifetimeMs?: number
}

/** Options of {@link Tier.update}. */
export interface UpdateOptions {
  /**
   * A copy of the session the caller holds, which the tier may start from instead of reading its own (a
   * compare-and-set refuses it when it is stale, and the tier then reads and retries).
   */
  readonly base?: StoredRecord
  /** True when nobody vouches for `base`: a `change` that writes nothing is checked on the tier's own copy. */
  readonly unverifiedBase?: boolean
  /** As for {@link WriteOptions.onCommit}. */
  readonly onCommit?: (stored: StoredRecord) => void
  /** Shared mode: what is left of the request's command timeout (other tiers ignore it). */
  readonly budget?: Budget
}

/** What {@link Tier.update} did. */
export type UpdateResult =
  | { readonly status: 'written'; readonly record: StoredRecord }
  /** `change` returned undefined: nothing to write. */
  | { readonly status: 'unchanged' }
  /** No live record (never stored, destroyed, expired): nothing was written and nothing is created. */
  | { readonly status: 'missing' }

/** Options of {@link Tier.delete}. */
export interface DeleteOptions {
  /** Delete only a record whose version is at most this one (the replay of a destroy made while cut off). */
  readonly upToVersion?: number
  /**
   * Redis: keep a tombstone at least until then (ms), even where it holds nothing of the session: an outbox entry
   * of the session, made before this delete, may be on its way from another process (it must not bring the
   * session back). Other tiers ignore it.
   */
  readonly tombstoneUntil?: number | undefined
  /** Called once the delete is durable, with whether a live record was there. */
  readonly onCommit?: (existed: boolean) => void
  /** Shared mode: what is left of the request's command timeout (other tiers ignore it). */
  readonly budget?: Budget
}

/** Options of {@link Tier.clear}. */
export interface ClearOptions {
  readonly onCommit?: () => void
}

/**
 * A touch of the record at `version`: its new expiry and cookie. Not a data write (promise 8): it never raises
 * the version, never creates or brings back a record, and is dropped when the record changed meanwhile.
 */
export interface TouchInput {
  readonly version: number
  readonly expiresAt: number
  /** The new cookie alone, as JSON text (the disk tier puts it into the row's payload, Redis beside it). */
  readonly cookieText: string
  readonly userId: string | null
  /** How long the touch may wait to be made durable, in ms ({@link touchWindowMs}). */
  readonly windowMs: number
}

/**
 * Whether `next` replaces the touch pending for the same session: never with an earlier expiry of the same
 * version (a copy read back after a spill or an eviction is older than the touch already made).
 */
export function replacesPendingTouch(pending: TouchInput, next: TouchInput): boolean {
  return pending.version !== next.version || pending.expiresAt < next.expiresAt
}

/** The tick of deferred touches, in ms: the shortest wait, and the unit of every wait. */
export const TOUCH_COMMIT_MS = 1000

/** The longest a touch waits to be made durable, in ms. */
export const MAX_TOUCH_WINDOW_MS = 60_000

/**
 * How long a touch that leaves its session `remainingMs` to live may wait to be made durable: a 1,440th of that
 * (a minute a day), from TOUCH_COMMIT_MS to MAX_TOUCH_WINDOW_MS. A touch lost to `kill -9` within it makes the
 * session expire that much earlier, at most a 1,440th of its life; a session touched all the time costs one
 * durable touch per window instead of one per second.
 */
export function touchWindowMs(remainingMs: number): number {
  return Math.min(MAX_TOUCH_WINDOW_MS, Math.max(TOUCH_COMMIT_MS, Math.floor(remainingMs / 1440)))
}

/**
 * The authority's part for touches: coalesced per session (only the latest counts) and made durable in the
 * background once the touch's window is up; `commitTouches` makes the pending ones durable now (flush, close).
 */
export interface DeferredTouches {
  /** Queues a touch; applied only while the stored record is still at `touch.version` and expires earlier. */
  touchLater(sid: string, touch: TouchInput): void
  /** Makes every pending touch durable (or dropped, should the authority be unreachable). */
  commitTouches(): MaybePromise<void>
}

/** The contract of a tier. Reads never return an expired record; ids are compared exactly (case, spaces). */
export interface Tier {
  readonly kind: 'memory' | 'disk' | 'redis'
  /** The live record of `sid`, or undefined (`budget`: shared mode, see WriteOptions). */
  get(sid: string, budget?: Budget): MaybePromise<StoredRecord | undefined>
  /** Stores `record` under `sid`, replacing what was there; resolves to the stored record (with its version). */
  write(sid: string, record: RecordInput, options?: WriteOptions): MaybePromise<StoredRecord>
  /**
   * Atomic read-modify-write of the live record: `change` gets the latest record and returns its replacement
   * (or undefined to write nothing). Nothing written meanwhile by others is undone. A missing session stays
   * missing. An update always raises the version (that of the record `change` returns is ignored). `change`
   * may run more than once (a compare-and-set retry); it must not have side effects.
   */
  update(
    sid: string,
    change: (current: StoredRecord) => RecordInput | undefined,
    options?: UpdateOptions,
  ): MaybePromise<UpdateResult>
  /** Removes `sid`; resolves to whether a live record was there. */
  delete(sid: string, options?: DeleteOptions): MaybePromise<boolean>
  /** Every live record with its id. */
  rows(onCorrupt: OnCorrupt): MaybePromise<TierRow[]>
  /** Ids of every live record. */
  ids(): MaybePromise<string[]>
  /** How many live records there are. */
  countLive(): MaybePromise<number>
  /** The live records of one user. */
  rowsOfUser(userId: string, onCorrupt: OnCorrupt): MaybePromise<TierRow[]>
  /** Removes at most `limit` records expired at `now`; resolves to how many (a tier that expires its own: 0). */
  sweep(now: number, limit: number): MaybePromise<number>
  /** Removes every record; `onCommit` runs once that is durable, before the returned value settles. */
  clear(options?: ClearOptions): MaybePromise<void>
  /** Commits what is queued and releases resources; the tier is unusable afterwards. Idempotent. */
  close(): MaybePromise<void>
}

/**
 * The disk tier's part as the spill cache of shared mode: synchronous upkeep of copies that left memory, so a
 * spill never leaves a session absent from every tier, and a copy that is no longer current is gone at once.
 */
export interface SpillCache {
  /** Stores spilled records now, in one transaction, with their versions. */
  keepNow(rows: ReadonlyArray<readonly [string, StoredRecord]>): void
  /** Stores spilled records in the background (or now, when nothing runs in the background); `outcome` hears how. */
  keepLater(rows: ReadonlyArray<readonly [string, StoredRecord]>, outcome: KeepOutcome): void
  /**
   * Drops the copy of `sid` now, if there is one. True when the file holds no row of it now; false when a copy
   * still on its way was given a delete that follows it (done by the worker, later).
   */
  dropNow(sid: string): boolean
  /** Drops every copy now. */
  clearNow(): void
}

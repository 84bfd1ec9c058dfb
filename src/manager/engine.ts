// What the store adapter and the middleware ask of the engine, and the shapes they exchange with it.

import type { PatchInput, SessionObject } from '../codec.js'
import type { TieredSessionError } from '../errors.js'
import type { StoreHealth } from '../health.js'
import type { LatencyHistograms } from '../histogram.js'
import type { DestroyReason, LifecycleStep } from '../lifecycle.js'
import type { Budget } from '../redis/budget.js'
import type { SpillResult } from '../spiller.js'
import type { StoreStats } from '../stats.js'
import type { Inventory } from '../tiers/inventory.js'
import type { BackupProgress } from '../tiers/sqlite-backup.js'
import type { RekeyCounts } from './rekey.js'

/** A session of one user, as listByUser returns it. */
export interface UserSession<S = SessionObject> {
  /**
   * An opaque name of the session, stable for its life and safe to show in a page (it cannot be used as a
   * cookie): what `destroyByUser(userId, { only })` takes.
   */
  readonly handle: string
  /** The session id; only with `hashIds: false` (with hashed ids the store does not know it). */
  readonly sid?: string
  /** The decoded session. */
  readonly session: S
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
  /** `maxLifetime`: when the session was created (ms since the epoch), if the store knows. */
  readonly createdAt?: number | undefined
}

/** A live session and its absolute expiry. */
export interface SessionEntry {
  readonly session: SessionObject
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  /** The stored version this session was read at (see {@link SessionPatch.whole}). */
  readonly version: number
  /** `maxLifetime`: when the session was created (ms since the epoch), if the store knows. */
  readonly createdAt?: number | undefined
}

/** The changes one request made to a session, as `merge` applies them. */
export interface SessionPatch extends PatchInput {
  /**
   * Optional, with `cookie`: the whole session as the request leaves it, its JSON text, and the version it was
   * read at. While that is still the latest version, the changes applied to it give exactly this session, so
   * it is stored as is instead of decoding, patching and re-encoding the stored copy.
   */
  readonly whole?: { readonly version: number; readonly payload: string; readonly session: SessionObject }
}

/**
 * A session as `export` and `import` move it, under its stored key: the stored key, not a session id (with
 * hashed ids, the hash; an import stores it as it is, without hashing it again).
 */
export interface ExportedRow {
  /** The key the store keeps the session under: the stored key, not a session id. */
  readonly key: string
  readonly session: SessionObject
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
  /** The user the exporting store's `userId` option gave the session, or null. */
  readonly userId: string | null
  /** `maxLifetime`: when the session was created (ms since the epoch), if the store knows. */
  readonly createdAt?: number | undefined
}

/** Which sessions of a user {@link SessionEngine.destroyByUser} destroys. */
export interface DestroyByUserFilter {
  /** Session ids (raw, as the cookie carries them) to keep. */
  readonly except?: readonly string[]
  /** Handles (from listByUser) of the only sessions to destroy. */
  readonly only?: readonly string[]
}

/** Where the engine reports what happens; the store turns these into events. */
export interface ManagerEvents {
  spill(result: SpillResult): void
  promote(info: { readonly bytes: number }): void
  error(error: TieredSessionError): void
  connect?(): void
  disconnect?(): void
  /** An invalidation from another instance was applied (shared mode). */
  invalidation?(): void
  /** The invalidation channel went live (true) or was lost (false) (shared mode). */
  coherence?(live: boolean): void
  /** A session was created, destroyed or found expired by this instance (once per step). */
  lifecycle?(step: LifecycleStep): void
}

/** What the store and the middleware ask of the engine, in either mode. */
export interface SessionEngine {
  /** `budget` (shared mode): what one request may still wait for Redis, shared by its calls (see `budget()`). */
  getEntry(sid: string, budget?: Budget): SessionEntry | undefined | Promise<SessionEntry | undefined>
  get(sid: string): SessionObject | undefined | Promise<SessionObject | undefined>
  set(sid: string, session: SessionObject, budget?: Budget): Promise<void>
  merge(sid: string, patch: SessionPatch, budget?: Budget): Promise<boolean>
  touch(sid: string, session: SessionObject, budget?: Budget): Promise<void>
  /** `reason` (default 'destroy') goes into the `destroyed` event. */
  destroy(sid: string, budget?: Budget, reason?: DestroyReason): Promise<void>
  /** Shared mode: one command timeout for all the store calls of one request; local mode: undefined. */
  budget(): Budget | undefined
  all(): Record<string, SessionObject> | Promise<Record<string, SessionObject>>
  ids(): string[] | Promise<string[]>
  length(): number | Promise<number>
  clear(): Promise<void>
  listByUser(userId: unknown): UserSession[] | Promise<UserSession[]>
  destroyByUser(userId: unknown, filter?: DestroyByUserFilter): Promise<number>
  /** The handle of the session with this id. */
  handleOf(sid: string): string
  /** Destroys the session with this handle; resolves to whether there was one (scans: for tools). */
  destroyByHandle(handle: string): Promise<boolean>
  flush(): Promise<SpillResult>
  ready(): Promise<void>
  /** Deletes expired sessions now, in batches; `onBatch` hears how many each removed. */
  sweep(onBatch?: (removed: number) => void): Promise<number>
  stats(): StoreStats
  /** The health view (see `TieredStore.health()`). */
  health(): StoreHealth
  /** The latency histograms `metrics()` exposes. */
  readonly latency: LatencyHistograms
  close(): Promise<void>
  /** An online, consistent copy of the SQLite file (TS_NO_DISK_TIER without one, TS_BACKUP_FAILED). */
  backup(path: string, onProgress: (progress: BackupProgress) => void): Promise<BackupProgress>
  /** What the authority holds, for an operator, with the `top` users by session count. */
  inventory(top: number): Promise<Inventory>
  /**
   * Every live session under its stored key (stored key, not a session id), for `export`, in pages handed to
   * `onPage` (awaited before the next is read); resolves to how many.
   */
  exportRows(onPage: (rows: ExportedRow[]) => Promise<void>): Promise<number>
  /**
   * Stores `row` under `row.key` as it is (stored key, not a session id: never hashed again), keeping its expiry;
   * resolves to false for a row already expired (nothing is written).
   */
  importRow(row: ExportedRow): Promise<boolean>
  /** Rewrites every stored session so it is sealed with the first encryption key; `onBatch` hears progress. */
  rekey(onBatch: (handled: number) => void): Promise<RekeyCounts>
  now(): number
  lifetimeMs(session: SessionObject): number
  /** `maxLifetime` of this session in ms, or null without the option. */
  maxLifetimeMs(session: SessionObject): number | null
}

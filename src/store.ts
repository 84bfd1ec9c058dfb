// TieredStore: the express-session Store adapter over the tier manager. Thin: it validates options,
// maps methods to the manager, offers callbacks or Promises, and turns manager reports into events.

import type { EventEmitter } from 'node:events'
import session from 'express-session'
import type { Callback } from './callback.js'
import { withCallback } from './callback.js'
import type { SessionObject } from './codec.js'
import type { TieredSessionError } from './errors.js'
import type { StoreHealth } from './health.js'
import type { LifecycleStep } from './lifecycle.js'
import type { SessionEngine, SessionPatch, UserSession } from './manager/engine.js'
import { TierManager } from './manager/tier-manager.js'
import type { TieredStoreOptions } from './options.js'
import { resolveOptions } from './options.js'
import type { StoredSession } from './session-data.js'
import type { SpillResult } from './spiller.js'
import type { StoreStats } from './stats.js'
import { toPrometheus } from './stats.js'
import type { BackupProgress } from './tiers/sqlite-backup.js'

/** Internal: how the middleware (and tests) reach the store's engine. Not exported from the package. */
export const managerOf: (store: TieredStore) => SessionEngine = (store) => store[kManager]
const kManager = Symbol('tiered-session.manager')

/** What `set` and `touch` accept: a session from express-session or tieredSession(), or any plain JSON-serializable object. */
export type StorableSession = StoredSession | object

/**
 * The part of express-session's `Store` that TieredStore inherits, declared here so that our types do not
 * depend on `@types/express-session` (whose global `req.session` would clash with tieredSession()'s).
 */
interface ExpressSessionStore extends EventEmitter {
  // biome-ignore lint/suspicious/noExplicitAny: mirrors express-session's signature (Express's Request).
  regenerate(req: any, callback: (err?: any) => any): void
  // biome-ignore lint/suspicious/noExplicitAny: mirrors express-session's signature.
  load(sid: string, callback: (err: any, session?: any) => any): void
  // biome-ignore lint/suspicious/noExplicitAny: mirrors express-session's signature (returns its Session).
  createSession(req: any, session: any): any
  /** Set by express-session on its store: gives `req` a new session id and Session. */
  // biome-ignore lint/suspicious/noExplicitAny: mirrors express-session's signature (Express's Request).
  generate?: (req: any) => void
}

/** express-session's Store class (the runtime base of TieredStore). */
const ExpressSessionStoreBase = session.Store as unknown as new () => ExpressSessionStore

/** Options of {@link TieredStore.destroyByUser}. */
export interface DestroyByUserOptions {
  /** Session ids to keep (e.g. the current one, `req.sessionID`, for "log out everywhere else"). */
  except?: string | readonly string[]
  /** Handles (from {@link TieredStore.listByUser}) of the only sessions to destroy ("log out this device"). */
  only?: string | readonly string[]
}

/**
 * A session store for express-session: a byte-budgeted memory tier over a SQLite disk tier.
 *
 * Events: `spill` ({@link SpillResult}), `promote` (`{ bytes }`), `error` ({@link TieredSessionError});
 * lifecycle events `created` (`{ userId }`), `destroyed` (`{ userId, reason: 'destroy' | 'logout' |
 * 'regenerate' }`) and `expired` (`{ userId, reason: 'read' | 'sweep' }`), once per step, by the instance that
 * made it — never a session id or data.
 * Every method takes an optional callback, called exactly once; without one it returns a Promise.
 */
export class TieredStore extends ExpressSessionStoreBase {
  readonly #manager: SessionEngine
  readonly #warned = new Set<string>()

  /** @internal */
  get [kManager](): SessionEngine {
    return this.#manager
  }

  /** Throws TS_INVALID_OPTION naming a bad option, or TS_DISK_OPEN_FAILED naming the path. */
  constructor(options: TieredStoreOptions = {}) {
    super()
    const resolved = resolveOptions(options)
    const events = {
      spill: (result: SpillResult) => this.#emitSafely('spill', result),
      promote: (info: { bytes: number }) => this.#emitSafely('promote', info),
      error: (error: TieredSessionError) => this.#emitError(error),
      // express-session listens for these to stop (and resume) using the store.
      connect: () => this.#emitSafely('connect', undefined),
      disconnect: () => this.#emitSafely('disconnect', undefined),
      invalidation: () => this.#emitSafely('invalidation', undefined),
      coherence: (live: boolean) => this.#emitSafely('coherence', { live }),
      lifecycle: (step: LifecycleStep) => {
        // NB: a new object per event, without `type`: listeners get `{ userId, reason }` at most.
        if (this.listenerCount(step.type) === 0) return
        this.#emitSafely(
          step.type,
          step.type === 'created' ? { userId: step.userId } : { userId: step.userId, reason: step.reason },
        )
      },
    }
    this.#manager = new TierManager(resolved, events)
  }

  /**
   * Emits an event from inside the engine. A listener that throws must not leave the engine half-way
   * through a commit or a spill: its error is rethrown on its own, as any uncaught listener error would be.
   */
  #emitSafely(event: string, arg: unknown): void {
    try {
      this.emit(event, arg)
    } catch (error) {
      queueMicrotask(() => {
        throw error
      })
    }
  }

  /** Emits `error`; with no listener, prints one warning per code instead of crashing the app. */
  #emitError(error: TieredSessionError): void {
    if (this.listenerCount('error') > 0) {
      this.#emitSafely('error', error)
      return
    }
    if (this.#warned.has(error.code)) return
    this.#warned.add(error.code)
    process.emitWarning(error.message, { type: 'TieredSessionWarning', code: error.code })
  }

  /** The session, or undefined for a miss (expired, unknown, or undecodable). */
  get(sid: string): Promise<StoredSession | undefined>
  get(sid: string, callback: (err: unknown, session?: StoredSession | null) => void): void
  get(
    sid: string,
    callback?: Callback<StoredSession | undefined>,
  ): Promise<StoredSession | undefined> | void {
    return withCallback(() => this.#manager.get(sid) as Promise<StoredSession | undefined>, callback)
  }

  /** Stores the session; resolves once it is durable. Expiry: `cookie.expires`, else `ttl`. */
  set(sid: string, session: StorableSession): Promise<void>
  set(sid: string, session: StorableSession, callback: (err?: unknown) => void): void
  set(sid: string, session: StorableSession, callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.set(sid, session as unknown as SessionObject), callback)
  }

  /**
   * express-session's regenerate (`req.session.regenerate()`): destroys the old session (its `destroyed` event
   * says 'regenerate') and gives `req` a new one.
   */
  // biome-ignore lint/suspicious/noExplicitAny: mirrors express-session's signature (Express's Request).
  override regenerate(req: any, callback: (err?: any) => any): void {
    this.#manager.destroy(req.sessionID, undefined, 'regenerate').then(
      () => {
        this.generate?.(req)
        callback()
      },
      (error: unknown) => {
        // NB: as express-session's own Store.regenerate: a new session all the same, and the error.
        this.generate?.(req)
        callback(error)
      },
    )
  }

  /** Removes the session from every tier. */
  destroy(sid: string): Promise<void>
  destroy(sid: string, callback: (err?: unknown) => void): void
  destroy(sid: string, callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.destroy(sid), callback)
  }

  /** Slides the expiry to the session's `cookie.expires` and stores that cookie, keeping the data. */
  touch(sid: string, session: StorableSession): Promise<void>
  touch(sid: string, session: StorableSession, callback: (err?: unknown) => void): void
  touch(sid: string, session: StorableSession, callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.touch(sid, session as unknown as SessionObject), callback)
  }

  /**
   * Applies one request's changes (keys set, keys deleted, the cookie) onto the latest stored version of
   * the session, atomically; resolves to false when the session no longer exists (it is not recreated).
   * This is how `tieredSession()` avoids lost updates between parallel requests.
   */
  merge(sid: string, patch: SessionPatch): Promise<boolean>
  merge(sid: string, patch: SessionPatch, callback: (err: unknown, applied?: boolean) => void): void
  merge(sid: string, patch: SessionPatch, callback?: Callback<boolean>): Promise<boolean> | void {
    return withCallback(() => this.#manager.merge(sid, patch), callback)
  }

  /** Every live session, as `{ [sid]: session }`. */
  all(): Promise<Record<string, StoredSession>>
  all(callback: (err: unknown, obj?: Record<string, StoredSession> | null) => void): void
  all(callback?: Callback<Record<string, StoredSession>>): Promise<Record<string, StoredSession>> | void {
    return withCallback(() => this.#manager.all() as unknown as Record<string, StoredSession>, callback)
  }

  /** Ids of every live session. */
  ids(): Promise<string[]>
  ids(callback: (err: unknown, ids?: string[]) => void): void
  ids(callback?: Callback<string[]>): Promise<string[]> | void {
    return withCallback(() => this.#manager.ids(), callback)
  }

  /** Number of live sessions. */
  length(): Promise<number>
  length(callback: (err: unknown, length?: number) => void): void
  length(callback?: Callback<number>): Promise<number> | void {
    return withCallback(() => this.#manager.length(), callback)
  }

  /** Removes every session. */
  clear(): Promise<void>
  clear(callback: (err?: unknown) => void): void
  clear(callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.clear(), callback)
  }

  /** The live sessions of a user (see the `userId` option). */
  listByUser(userId: unknown): Promise<UserSession<StoredSession>[]>
  listByUser(userId: unknown, callback: (err: unknown, sessions?: UserSession<StoredSession>[]) => void): void
  listByUser(
    userId: unknown,
    callback?: Callback<UserSession<StoredSession>[]>,
  ): Promise<UserSession<StoredSession>[]> | void {
    return withCallback(
      () => this.#manager.listByUser(userId) as unknown as UserSession<StoredSession>[],
      callback,
    )
  }

  /**
   * The handle of the session with this id: what {@link TieredStore.listByUser} entries carry and
   * `destroyByUser(userId, { only })` takes (e.g. to mark "this browser" in a list of sessions).
   */
  handleOf(sid: string): string {
    return this.#manager.handleOf(sid)
  }

  /**
   * Destroys every session of a user but those whose id is in `except` ("log out everywhere else"), or with
   * `only`, just those whose handle is in it ("log out this device"); resolves to how many.
   */
  destroyByUser(userId: unknown, options?: DestroyByUserOptions): Promise<number>
  destroyByUser(
    userId: unknown,
    options: DestroyByUserOptions,
    callback: (err: unknown, count?: number) => void,
  ): void
  destroyByUser(userId: unknown, callback: (err: unknown, count?: number) => void): void
  destroyByUser(
    userId: unknown,
    optionsOrCallback?: DestroyByUserOptions | Callback<number>,
    callback?: Callback<number>,
  ): Promise<number> | void {
    const cb = typeof optionsOrCallback === 'function' ? optionsOrCallback : callback
    const options = typeof optionsOrCallback === 'function' ? {} : (optionsOrCallback ?? {})
    const except = options.except === undefined ? undefined : ([] as string[]).concat(options.except)
    const only = options.only === undefined ? undefined : ([] as string[]).concat(options.only)
    return withCallback(
      () => this.#manager.destroyByUser(userId, { ...(except && { except }), ...(only && { only }) }),
      cb,
    )
  }

  /**
   * Resolves once every configured tier is usable (in shared mode: Redis is connected); rejects with
   * TS_REDIS_UNAVAILABLE after `redis.connectTimeout`. Optional: until then commands wait for the connection.
   */
  ready(): Promise<void>
  ready(callback: (err: unknown) => void): void
  ready(callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.ready(), callback)
  }

  /** Commits queued writes and runs the spiller now; resolves to what the spill cycle moved. */
  flush(): Promise<SpillResult>
  flush(callback: (err: unknown, result?: SpillResult) => void): void
  flush(callback?: Callback<SpillResult>): Promise<SpillResult> | void {
    return withCallback(() => this.#manager.flush(), callback)
  }

  /** Deletes expired sessions now (the background sweep, on demand); resolves to how many. */
  sweep(): Promise<number>
  sweep(callback: (err: unknown, removed?: number) => void): void
  sweep(callback?: Callback<number>): Promise<number> | void {
    return withCallback(() => this.#manager.sweep(), callback)
  }

  /**
   * Copies the SQLite file to `path` online (writes go on meanwhile) as one consistent state holding every write
   * acknowledged before the call; the copy is 0600, its directory created 0700 if missing. Emits `backup`
   * (`{ totalPages, remainingPages }`) after each step; resolves to the last. Rejects with TS_NO_DISK_TIER
   * (`disk: false`) or TS_BACKUP_FAILED (the copy cannot be written).
   */
  backup(path: string): Promise<BackupProgress>
  backup(path: string, callback: (err: unknown, progress?: BackupProgress) => void): void
  backup(path: string, callback?: Callback<BackupProgress>): Promise<BackupProgress> | void {
    return withCallback(
      () => this.#manager.backup(path, (progress) => this.#emitSafely('backup', progress)),
      callback,
    )
  }

  /** Commits everything, stops the timers and closes the database. Idempotent. */
  close(): Promise<void>
  close(callback: (err?: unknown) => void): void
  close(callback?: Callback<void>): Promise<void> | void {
    return withCallback(() => this.#manager.close(), callback)
  }

  /** A snapshot of sizes and counters per tier. No session data or ids. */
  stats(): StoreStats {
    return this.#manager.stats()
  }

  /** The stats and the latency histograms as Prometheus text exposition. */
  metrics(): string {
    return toPrometheus(this.stats(), 'tiered_session', this.#manager.latency)
  }

  /**
   * Synchronous health view for a readiness probe: `ok` is false when the store is closed, the disk is failing,
   * or Redis is down while writes wait in the outbox (or, with `disk: false`, cannot go anywhere).
   */
  health(): StoreHealth {
    return this.#manager.health()
  }
}

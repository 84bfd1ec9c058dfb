// What both engines (local mode and shared mode) share: the memory tier and its spiller, counters and error
// reporting, session encoding and validation on the write path, and merge/touch of a stored payload.

import type { RecordRules, SessionObject } from './codec.js'
import { copyJson, decodeSession, encodeSession, patchRecord, payloadBytes, touchRecord } from './codec.js'
import type { ErrorCode } from './errors.js'
import { ErrorCodes, TieredSessionError, wrapError } from './errors.js'
import type { ResolvedOptions } from './options.js'
import { assertValidSid, expiresAtOf, isValidSid, userIdOf } from './session-fields.js'
import type { SpillResult } from './spiller.js'
import { Spiller } from './spiller.js'
import type { StoreStats } from './stats.js'
import { Counters } from './stats.js'
import type { DiskTier } from './tiers/disk-tier.js'
import type { MemoryRecord } from './tiers/memory-tier.js'
import { MemoryTier } from './tiers/memory-tier.js'
import type { RecordInput, StoredRecord } from './tiers/tier.js'

/** A session of one user, as listByUser returns it. */
export interface UserSession<S = SessionObject> {
  /** The session id. */
  readonly sid: string
  /** The decoded session. */
  readonly session: S
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
}

/** A live session and its absolute expiry. */
export interface SessionEntry {
  readonly session: SessionObject
  /** Milliseconds since the epoch. */
  readonly expiresAt: number
  /** The stored version this session was read at (see {@link SessionPatch.whole}). */
  readonly version: number
}

/** The changes one request made to a session, as `merge` applies them. */
export interface SessionPatch {
  /** Top-level keys set, each as its JSON text. */
  readonly set: Readonly<Record<string, string>>
  /** Top-level keys deleted. */
  readonly unset: readonly string[]
  /** The session's cookie to store (its `expires` sets the expiry), or undefined to keep the stored one. */
  readonly cookie?: unknown
  /**
   * Optional, with `cookie`: the whole session as the request leaves it, its JSON text, and the version it was
   * read at. While that is still the latest version, the changes applied to it give exactly this session, so
   * it is stored as is instead of decoding, patching and re-encoding the stored copy.
   */
  readonly whole?: { readonly version: number; readonly payload: string; readonly session: SessionObject }
}

/** A patch as `applyPatch` takes it: the whole-session shortcut with its expiry and user read at the call. */
export interface PreparedPatch {
  readonly patch: SessionPatch
  readonly whole:
    | {
        readonly version: number
        readonly payload: string
        readonly expiresAt: number
        readonly userId: string | null
      }
    | undefined
}

/** Where an engine reports what happens; the store turns these into events. */
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
}

/** What the store and the middleware ask of an engine, in either mode. */
export interface SessionEngine {
  getEntry(sid: string): SessionEntry | undefined | Promise<SessionEntry | undefined>
  get(sid: string): SessionObject | undefined | Promise<SessionObject | undefined>
  set(sid: string, session: SessionObject): Promise<void>
  merge(sid: string, patch: SessionPatch): Promise<boolean>
  touch(sid: string, session: SessionObject): Promise<void>
  destroy(sid: string): Promise<void>
  all(): Record<string, SessionObject> | Promise<Record<string, SessionObject>>
  ids(): string[] | Promise<string[]>
  length(): number | Promise<number>
  clear(): Promise<void>
  listByUser(userId: unknown): UserSession[] | Promise<UserSession[]>
  destroyByUser(userId: unknown, except?: readonly string[]): Promise<number>
  flush(): Promise<SpillResult>
  sweep(): Promise<number>
  stats(): StoreStats
  close(): Promise<void>
  now(): number
  lifetimeMs(session: SessionObject): number
}

/** A write prepared from a session: its payload, expiry and user, all validated. */
export interface PreparedWrite {
  readonly payload: string
  readonly expiresAt: number
  readonly userId: string | null
}

/** The memory tier, spiller, counters and error plumbing, shared by both engines. */
export abstract class EngineCore {
  readonly memory: MemoryTier
  readonly counters = new Counters()
  protected readonly options: ResolvedOptions
  protected readonly events: ManagerEvents
  protected readonly spiller: Spiller
  protected closed = false

  constructor(
    options: ResolvedOptions,
    events: ManagerEvents,
    moveDown?: (records: ReadonlyArray<readonly [string, MemoryRecord]>) => void,
  ) {
    this.options = options
    this.events = events
    this.memory = new MemoryTier({ maxBytes: options.memory.maxBytes, clock: options.clock })
    this.spiller = new Spiller({
      memory: this.memory,
      highWatermark: options.memory.highWatermark,
      lowWatermark: options.memory.lowWatermark,
      intervalMs: options.spillIntervalMs,
      ...(moveDown === undefined ? {} : { moveDown }),
      onSpill: (result) => {
        this.counters.spills += result.sessions
        this.events.spill(result)
      },
      onError: (error) => this.report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error)),
    })
  }

  protected checkOpen(): void {
    if (this.closed) throw new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store is closed')
  }

  /** Counts an error by code and hands it to the error event. */
  protected report(error: TieredSessionError): void {
    this.counters.countError(error.code)
    this.events.error(error)
  }

  /** Counts an error, emits it as an `error` event, and throws it to the caller. */
  protected fail(
    error: unknown,
    code: ErrorCode = ErrorCodes.DISK_IO,
    message = 'a session store operation failed',
  ): never {
    const wrapped = wrapError(code, message, error)
    this.report(wrapped)
    throw wrapped
  }

  /** Runs a spill cycle right away when memory crossed the high watermark. */
  protected afterMemoryGrew(): void {
    if (!this.spiller.overHighWatermark) return
    try {
      this.spiller.cycle()
    } catch (error) {
      this.report(wrapError(ErrorCodes.DISK_IO, 'a spill cycle failed', error))
    }
  }

  /** Decodes a stored payload; a corrupt one is reported and becomes undefined (a miss). */
  protected decode(record: StoredRecord): SessionObject | undefined {
    try {
      return decodeSession(record.payload)
    } catch (error) {
      this.report(error as TieredSessionError)
      return undefined
    }
  }

  /** The store's rules for the codec's record transforms. */
  protected readonly rules: RecordRules = {
    checkSize: (bytes) => this.checkSize(bytes),
    expiresAt: (session, now) => expiresAtOf(session, now, this.options),
    userId: (session) => userIdOf(session, this.options),
  }

  protected checkSize(bytes: number): void {
    if (bytes > this.options.maxSessionBytes) {
      throw new TieredSessionError(
        ErrorCodes.SESSION_TOO_LARGE,
        `the session is ${bytes} bytes serialized, over maxSessionBytes (${this.options.maxSessionBytes})`,
      )
    }
  }

  /** Validates and encodes a session for `set`; failures are counted, emitted and thrown. */
  protected prepareWrite(sid: string, session: SessionObject, now: number): PreparedWrite {
    try {
      assertValidSid(sid)
      const { payload, bytes } = encodeSession(session)
      this.checkSize(bytes)
      return {
        payload,
        expiresAt: expiresAtOf(session, now, this.options),
        userId: userIdOf(session, this.options),
      }
    } catch (error) {
      return this.fail(error, ErrorCodes.ENCODE_FAILED, 'the session could not be stored')
    }
  }

  /**
   * The common start of `touch`: an invalid id or a cookie already expired ends it here (the latter as a
   * destroy, via `destroy`); otherwise the cookie copy and new expiry to apply.
   */
  protected async planTouch(
    sid: string,
    session: SessionObject,
    destroy: (sid: string) => Promise<void>,
  ): Promise<{ cookie: unknown; expiresAt: number } | undefined> {
    this.checkOpen()
    if (!isValidSid(sid)) return undefined
    const now = this.now()
    const plan = this.prepareTouch(session, now)
    if (plan.expiresAt > now) return plan
    await destroy(sid)
    return undefined
  }

  /** A JSON copy of a session's cookie and the expiry it gives, for `touch`. */
  protected prepareTouch(session: SessionObject, now: number): { cookie: unknown; expiresAt: number } {
    try {
      // NB: copy the cookie now; the caller may change its object before the write runs.
      const cookie = session.cookie === undefined ? undefined : copyJson(session.cookie)
      return { cookie, expiresAt: expiresAtOf({ ...session, cookie }, now, this.options) }
    } catch (error) {
      return this.fail(error, ErrorCodes.ENCODE_FAILED, 'the session cookie could not be stored')
    }
  }

  /**
   * Reads the whole-session shortcut's expiry and user now, at the call: the caller's session object may change
   * again before the write runs (after an await, inside a group commit), and the payload text is already fixed.
   */
  protected preparePatch(patch: SessionPatch, now: number): PreparedPatch {
    const whole = patch.whole
    if (whole === undefined || patch.cookie === undefined) return { patch, whole: undefined }
    try {
      return {
        patch,
        whole: {
          version: whole.version,
          payload: whole.payload,
          expiresAt: expiresAtOf(whole.session, now, this.options),
          userId: userIdOf(whole.session, this.options),
        },
      }
    } catch (error) {
      return this.fail(error, ErrorCodes.ENCODE_FAILED, 'the session could not be stored')
    }
  }

  /** `current` with a request's changes applied (throws TS_DECODE_FAILED / TS_SESSION_TOO_LARGE). */
  protected applyPatch(current: StoredRecord, prepared: PreparedPatch, now: number): RecordInput {
    const { patch, whole } = prepared
    if (whole !== undefined && whole.version === current.version) {
      this.checkSize(payloadBytes(whole.payload))
      return { payload: whole.payload, expiresAt: whole.expiresAt, userId: whole.userId }
    }
    return patchRecord(current, patch, this.rules, now)
  }

  /** `current` with its cookie replaced, or undefined when the touch would not extend its life. */
  protected applyTouch(current: StoredRecord, cookie: unknown, expiresAt: number): RecordInput | undefined {
    return touchRecord(current, cookie, expiresAt)
  }

  /** Decoded sessions by id (rows that do not decode are reported and left out). */
  protected sessionsById(
    rows: ReadonlyArray<StoredRecord & { readonly sid: string }>,
  ): Record<string, SessionObject> {
    const out: Record<string, SessionObject> = {}
    for (const row of rows) {
      const session = this.decode(row)
      // NB: defineProperty, so a sid such as "__proto__" is a key like any other.
      if (session !== undefined) {
        Object.defineProperty(out, row.sid, {
          value: session,
          enumerable: true,
          writable: true,
          configurable: true,
        })
      }
    }
    return out
  }

  /** Decoded sessions with their ids and expiry (rows that do not decode are reported and left out). */
  protected userSessions(rows: ReadonlyArray<StoredRecord & { readonly sid: string }>): UserSession[] {
    const out: UserSession[] = []
    for (const row of rows) {
      const session = this.decode(row)
      if (session !== undefined) out.push({ sid: row.sid, session, expiresAt: row.expiresAt })
    }
    return out
  }

  #diskEntries = 0

  /** The stats snapshot; `disk.count()` is refreshed unless closed (its last value is kept on a failure). */
  protected snapshot(disk: DiskTier | null, redis: StoreStats['redis'], outbox: number): StoreStats {
    const c = this.counters
    if (!this.closed && disk !== null) {
      try {
        this.#diskEntries = disk.count()
      } catch (error) {
        this.report(wrapError(ErrorCodes.DISK_IO, 'counting rows failed', error))
      }
    }
    return {
      memory: { entries: this.memory.entries, bytes: this.memory.bytes, maxBytes: this.memory.maxBytes },
      disk:
        disk === null
          ? null
          : {
              entries: this.#diskEntries,
              pendingWrites: disk.pendingWrites,
              transactions: disk.transactions,
            },
      redis,
      spills: c.spills,
      promotions: c.promotions,
      hits: { ...c.hits },
      misses: c.misses,
      writes: c.writes,
      destroys: c.destroys,
      outbox,
      expired: c.expired,
      invalidations: c.invalidations,
      errors: c.errorsByCode(),
    }
  }

  /** The current time of the store's clock, in ms. */
  now(): number {
    return this.options.clock.now()
  }

  /** The lifetime (ms) a write of `session` would get: its cookie's remaining life, or the ttl. */
  lifetimeMs(session: SessionObject): number {
    const now = this.now()
    return expiresAtOf(session, now, this.options) - now
  }

  /** The session of a live entry, or undefined. */
  async get(sid: string): Promise<SessionObject | undefined> {
    return (await (this as unknown as SessionEngine).getEntry(sid))?.session
  }
}

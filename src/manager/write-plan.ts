// The validation of every write before it reaches a tier: the id, the size, the expiry and the user of a
// session, the cookie and expiry of a touch, and the whole-session shortcut of a merge. Throws typed errors;
// the manager counts and reports them.

import type { RecordRules, SessionObject } from '../codec.js'
import {
  decodeSession,
  encodeSession,
  jsonText,
  patchRecord,
  payloadBytes,
  touchRecord,
  withCookie,
} from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { ResolvedOptions } from '../options.js'
import { assertValidSid, expiresAtOf, userIdOf } from '../session-fields.js'
import type { RecordInput, StoredRecord } from '../tiers/tier.js'
import type { SessionPatch } from './engine.js'

/** A write prepared from a session: its payload, expiry and user, all validated. */
export interface PreparedWrite {
  readonly payload: string
  readonly expiresAt: number
  readonly userId: string | null
  /** `maxLifetime`: when the session was created (ms); its expiry is capped by it already. */
  readonly createdAt?: number
  /** `maxLifetime` in ms: Redis caps the expiry again by the creation time it holds (see WriteOptions). */
  readonly maxLifetimeMs?: number
}

/** A touch prepared from a session: its cookie as JSON text, the expiry and the lifetime it gives. */
export interface PreparedTouch {
  readonly cookieText: string
  readonly expiresAt: number
  /** The session's whole lifetime (ms): its cookie's `originalMaxAge`, or the ttl. */
  readonly lifetimeMs: number
}

/** A patch with the whole-session shortcut's expiry and user read at the call. */
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

/** The store's rules for sessions, applied to every write. */
export class WritePlan implements RecordRules {
  readonly #options: ResolvedOptions

  constructor(options: ResolvedOptions) {
    this.#options = options
  }

  /** Throws TS_SESSION_TOO_LARGE for a payload over `maxSessionBytes`. */
  checkSize(bytes: number): void {
    if (bytes > this.#options.maxSessionBytes) {
      throw new TieredSessionError(
        ErrorCodes.SESSION_TOO_LARGE,
        `the session is ${bytes} bytes serialized, over maxSessionBytes (${this.#options.maxSessionBytes})`,
      )
    }
  }

  expiresAt(session: SessionObject, now: number): number {
    return expiresAtOf(session, now, this.#options)
  }

  userId(session: SessionObject): string | null {
    return userIdOf(session, this.#options)
  }

  /** True with `maxLifetime`: every write is stamped with its session's creation time and capped by it. */
  get limitsLifetime(): boolean {
    return this.#options.atRest.maxLifetimeSeconds !== null
  }

  /**
   * `maxLifetime` in ms for a session (a function of it gets the whole session: `session` when the caller has
   * it, else the payload decoded), or null without the option. Throws TS_INVALID_OPTION for a bad answer.
   */
  maxLifetimeMs(session: SessionObject | undefined, payload: string): number | null {
    const option = this.#options.atRest.maxLifetimeSeconds
    if (option === null) return null
    let seconds: unknown = option
    if (typeof option === 'function') {
      try {
        seconds = option(session ?? decodeSession(payload))
      } catch (cause) {
        throw new TieredSessionError(ErrorCodes.INVALID_OPTION, 'option "maxLifetime" threw', { cause })
      }
    }
    if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds <= 0) {
      throw new TieredSessionError(
        ErrorCodes.INVALID_OPTION,
        'option "maxLifetime" must return a number of seconds > 0',
      )
    }
    return Math.round(seconds * 1000)
  }

  /**
   * With `maxLifetime`: `record` stamped with its session's creation time (`createdAt`, the stored copy's, or
   * now for a new session or one written before the option) and its expiry capped at creation + maxLifetime.
   * Without it: `record` as it is.
   */
  withLifetime<R extends RecordInput>(
    record: R,
    createdAt: number | undefined,
    now: number,
    session?: SessionObject,
  ): R {
    const maxMs = this.maxLifetimeMs(session, record.payload)
    return maxMs === null ? record : this.capped(record, createdAt, now, maxMs)
  }

  /** {@link withLifetime} with the session's `maxLifetime` already known (`maxMs`). */
  capped<R extends RecordInput>(record: R, createdAt: number | undefined, now: number, maxMs: number): R {
    const created = createdAt ?? now
    return { ...record, createdAt: created, expiresAt: Math.min(record.expiresAt, created + maxMs) }
  }

  /** Validates and encodes a session for `set` (TS_INVALID_SID, TS_ENCODE_FAILED, TS_SESSION_TOO_LARGE, ...). */
  write(sid: string, session: SessionObject, now: number): PreparedWrite {
    assertValidSid(sid)
    const { payload, bytes } = encodeSession(session)
    this.checkSize(bytes)
    return { payload, expiresAt: this.expiresAt(session, now), userId: this.userId(session) }
  }

  /** A session's cookie as JSON text (taken now: the caller may change it later) and its expiry, for `touch`. */
  touch(session: SessionObject, now: number): PreparedTouch {
    const cookieText = jsonText(session.cookie ?? null)
    if (cookieText === undefined) {
      throw new TieredSessionError(ErrorCodes.ENCODE_FAILED, 'the session cookie could not be stored')
    }
    const expiresAt = this.expiresAt(session, now)
    const maxAge = (session.cookie as { originalMaxAge?: unknown } | null | undefined)?.originalMaxAge
    const lifetimeMs = typeof maxAge === 'number' && maxAge > 0 ? maxAge : expiresAt - now
    return { cookieText, expiresAt, lifetimeMs }
  }

  /**
   * True when a touch is throttled by `touchAfter`: the copy was saved (its expiry set) less than that fraction
   * of the session's lifetime ago, so the touch does nothing.
   */
  throttled(current: StoredRecord, touch: PreparedTouch, now: number): boolean {
    const touchAfter = this.#options.touchAfter
    if (touchAfter === 0) return false
    const sinceSaved = touch.lifetimeMs - (current.expiresAt - now)
    return sinceSaved < touchAfter * touch.lifetimeMs
  }

  /**
   * Reads the whole-session shortcut's expiry and user now, at the call: the caller's session object may change
   * again before the write runs (after an await, inside a group commit), and the payload text is already fixed.
   */
  patch(patch: SessionPatch, now: number): PreparedPatch {
    const whole = patch.whole
    if (whole === undefined || patch.cookie === undefined) return { patch, whole: undefined }
    return {
      patch,
      whole: {
        version: whole.version,
        payload: whole.payload,
        expiresAt: this.expiresAt(whole.session, now),
        userId: this.userId(whole.session),
      },
    }
  }

  /** `current` with a request's changes applied (throws TS_DECODE_FAILED / TS_SESSION_TOO_LARGE). */
  applyPatch(current: StoredRecord, prepared: PreparedPatch, now: number): RecordInput {
    const { whole } = prepared
    // NB: a legacy record (migrate) has no version of its own: only the patch says what this request changed.
    if (whole !== undefined && whole.version === current.version && current.legacy === undefined) {
      this.checkSize(payloadBytes(whole.payload))
      return { payload: whole.payload, expiresAt: whole.expiresAt, userId: whole.userId }
    }
    return patchRecord(current, prepared.patch, this, now)
  }

  /** `current` with the touch's cookie, or undefined when the touch would not extend its life. */
  applyTouch(current: StoredRecord, touch: PreparedTouch): RecordInput | undefined {
    // NB: a legacy record (migrate) is converted by its first touch, even one that would not extend its life
    // (the conversion keeps the later expiry: see RedisTier's #convert).
    if (current.legacy !== undefined)
      return {
        payload: withCookie(current.payload, touch.cookieText),
        expiresAt: touch.expiresAt,
        userId: current.userId,
      }
    return touchRecord(current, touch.cookieText, touch.expiresAt)
  }
}

// One request's session: loading it from the store, tracking what the request changed, and writing
// exactly that (a merge, a full write for a new session, or a throttled touch) before the response.

import type { IncomingMessage } from 'node:http'
import type { SessionObject } from '../codec.js'
import { copyJson, jsonText, snapshotKeys, wholeText } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { SessionEngine } from '../manager/engine.js'
import type { Budget } from '../redis/budget.js'
import type { SessionData, StoredCookie } from '../session-data.js'
import { isValidSid } from '../session-fields.js'
import type { TieredStore } from '../store.js'
import { diff, isEmpty } from './change-tracker.js'
import type { ResolvedSessionOptions } from './options.js'
import type { SessionController } from './session.js'
import { Session } from './session.js'
import { SessionCookie } from './session-cookie.js'

/** The request fields tieredSession() sets. */
export interface SessionRequestFields {
  session: Session & Partial<SessionData>
  sessionID: string
  sessionStore: TieredStore
}

type SessionRequest = IncomingMessage & Partial<SessionRequestFields>

/** What the end-of-request commit decided about the cookie. */
export interface CommitResult {
  /** Send a Set-Cookie for `sid`. */
  readonly setCookie: boolean
  readonly sid: string
  readonly cookie: SessionCookie | undefined
}

/** The cookie's attributes other than its moving expiry, as text, to see whether the request changed them. */
function cookieSettings(cookie: SessionCookie): string {
  const { expires: _expires, ...rest } = cookie.toJSON()
  return jsonText(rest) as string
}

/** Per-request session controller; `req.session` delegates its methods here. */
export class SessionContext implements SessionController {
  readonly #req: SessionRequest
  readonly #manager: SessionEngine
  readonly #options: ResolvedSessionOptions
  /** The id the request's cookie carried (verified), if any. */
  readonly cookieSid: string | undefined
  /** Which secret verified the cookie: > 0 means it must be re-issued with the first. */
  readonly secretIndex: number
  #session!: Session
  #isNew = true
  #destroyed = false
  /** Set when a merge found the session gone (destroyed elsewhere): it is not recreated. */
  #gone = false
  #forceTouch = false
  #modified = false
  #baseline = new Map<string, string | undefined>()
  #baselineCookie = ''
  #storedExpiresAt: number | undefined
  /**
   * Shared mode: one command timeout for every store call of this request together (only their own time
   * counts, not the app's between them); local mode: undefined.
   */
  readonly #budget: Budget | undefined
  /** The stored version the session was loaded at; undefined once this request wrote it (or it is new). */
  #loadedVersion: number | undefined
  /** `maxLifetime`: when the loaded session was created (ms), if the store knows. */
  #createdAt: number | undefined
  /** False when the stored data had keys `req.session` cannot hold (reserved names): never store it whole. */
  #holdsAll = true

  private constructor(
    req: SessionRequest,
    manager: SessionEngine,
    options: ResolvedSessionOptions,
    cookieSid: string | undefined,
    secretIndex: number,
  ) {
    this.#req = req
    this.#manager = manager
    this.#budget = manager.budget()
    this.#options = options
    this.cookieSid = cookieSid
    this.secretIndex = secretIndex
  }

  /** Loads the session named by the cookie (or starts a new one) and attaches it to `req`. */
  static async open(
    req: SessionRequest,
    store: TieredStore,
    manager: SessionEngine,
    options: ResolvedSessionOptions,
    cookieSid: string | undefined,
    secretIndex: number,
  ): Promise<SessionContext> {
    const context = new SessionContext(req, manager, options, cookieSid, secretIndex)
    req.sessionStore = store
    const entry = cookieSid === undefined ? undefined : await manager.getEntry(cookieSid, context.#budget)
    if (cookieSid !== undefined && entry !== undefined) {
      context.#attach(cookieSid, entry.session, false)
      context.#storedExpiresAt = entry.expiresAt
      context.#loadedVersion = entry.version
      context.#createdAt = entry.createdAt
    } else {
      context.#attachNew({})
    }
    return context
  }

  #now = (): number => this.#manager.now()

  #attach(sid: string, data: Record<string, unknown>, isNew: boolean): void {
    const stored = data.cookie as StoredCookie | undefined
    const cookie =
      stored !== null && typeof stored === 'object'
        ? new SessionCookie(stored, this.#now)
        : new SessionCookie(this.#options.cookie, this.#now)
    this.#session = new Session(sid, cookie, data, this)
    this.#isNew = isNew
    this.#destroyed = false
    this.#gone = false
    this.#baseline = isNew ? new Map() : snapshotKeys(this.#session)
    this.#holdsAll =
      isNew || this.#baseline.size === Object.keys(data).length - (Object.hasOwn(data, 'cookie') ? 1 : 0)
    this.#baselineCookie = cookieSettings(cookie)
    this.#req.session = this.#session
    this.#req.sessionID = sid
  }

  #attachNew(data: Record<string, unknown>): void {
    const sid = this.#options.genid(this.#req)
    if (!isValidSid(sid)) {
      throw new TieredSessionError(ErrorCodes.INVALID_OPTION, 'option "genid" returned an invalid session id')
    }
    const { cookie: _ignored, ...rest } = data
    this.#attach(sid, rest, true)
    this.#storedExpiresAt = undefined
    this.#loadedVersion = undefined
    this.#createdAt = undefined
  }

  /**
   * `maxLifetime`: a cookie with an expiry never outlives the session (creation + maxLifetime; a new session is
   * created now). A browser-session cookie is left as it is: the store expires the session on its own.
   */
  #capCookie(): void {
    const cookie = this.#session.cookie
    if (cookie.expires === null) return
    const maxMs = this.#manager.maxLifetimeMs(this.#session as unknown as SessionObject)
    if (maxMs === null) return
    const deadline = (this.#createdAt ?? this.#now()) + maxMs
    if (cookie.expires.getTime() > deadline) cookie.expires = new Date(deadline)
  }

  async regenerate(keep: readonly string[]): Promise<void> {
    const old = this.#session
    const kept: Record<string, unknown> = {}
    for (const key of keep) {
      if (Object.hasOwn(old, key)) {
        const copy = copyJson((old as unknown as Record<string, unknown>)[key])
        if (copy !== undefined) kept[key] = copy
      }
    }
    if (!this.#isNew) await this.#manager.destroy(old.id, this.#budget, 'regenerate')
    this.#attachNew(kept)
  }

  async destroy(): Promise<void> {
    const sid = this.#session.id
    if (!this.#isNew) await this.#manager.destroy(sid, this.#budget)
    this.#destroyed = true
    // express-session removes req.session after destroy; so do we.
    if (this.#req.session === this.#session) this.#req.session = undefined
  }

  async reload(): Promise<void> {
    const sid = this.#session.id
    const entry = await this.#manager.getEntry(sid, this.#budget)
    if (entry === undefined)
      throw new TieredSessionError(
        ErrorCodes.SESSION_NOT_FOUND,
        'failed to load session: it no longer exists',
      )
    this.#attach(sid, entry.session, false)
    this.#storedExpiresAt = entry.expiresAt
    this.#loadedVersion = entry.version
    this.#createdAt = entry.createdAt
  }

  async save(): Promise<void> {
    await this.#write(true)
  }

  touch(): void {
    this.#session.cookie.resetMaxAge()
    this.#forceTouch = true
  }

  /** True when the unmodified session's last save is more than `touchAfter` of its lifetime ago. */
  #touchDue(): boolean {
    if (this.#forceTouch || this.#options.touchAfter === 0 || this.#storedExpiresAt === undefined) return true
    const cookie = this.#session.cookie
    const lifetime = cookie.originalMaxAge ?? this.#manager.lifetimeMs({ cookie: cookie.toJSON() })
    const elapsed = lifetime - (this.#storedExpiresAt - this.#now())
    return elapsed > this.#options.touchAfter * lifetime
  }

  /**
   * Writes what the request changed. `explicit` (session.save()) writes even an unmodified session.
   * A new session is written whole; a loaded one as a merge of the changed keys onto the latest version.
   */
  async #write(explicit: boolean): Promise<void> {
    const session = this.#session
    if (this.#destroyed || this.#gone) return
    const after = snapshotKeys(session)
    const changes = diff(this.#baseline, after)
    const settings = cookieSettings(session.cookie)
    const modified = !isEmpty(changes) || settings !== this.#baselineCookie
    if (this.#isNew) {
      if (!explicit && !modified && !this.#options.saveUninitialized) return
      session.cookie.resetMaxAge()
      this.#capCookie()
      await this.#manager.set(session.id, session as unknown as Record<string, unknown>, this.#budget)
      this.#isNew = false
    } else if (modified || explicit) {
      session.cookie.resetMaxAge()
      this.#capCookie()
      const cookie = session.cookie.toJSON()
      const version = this.#holdsAll ? this.#loadedVersion : undefined
      const patch = {
        ...changes,
        cookie,
        // NB: the whole session too: if nobody wrote it since we loaded it, it is stored as is (no re-parse).
        ...(version === undefined
          ? {}
          : {
              whole: {
                version,
                payload: wholeText(after, cookie),
                session: session as unknown as SessionObject,
              },
            }),
      }
      const applied = await this.#manager.merge(session.id, patch, this.#budget)
      if (!applied) {
        this.#gone = true
        return
      }
    } else if (this.#touchDue()) {
      session.cookie.resetMaxAge()
      this.#capCookie()
      await this.#manager.touch(session.id, { cookie: session.cookie.toJSON() }, this.#budget)
    } else {
      return
    }
    this.#modified ||= modified
    this.#forceTouch = false
    this.#loadedVersion = undefined
    this.#baseline = after
    this.#baselineCookie = settings
    this.#storedExpiresAt = session.cookie.expires?.getTime() ?? this.#now() + this.#manager.lifetimeMs({})
  }

  /** The end-of-request commit: writes what is due and says whether to send the cookie. */
  async commit(): Promise<CommitResult> {
    const current = this.#req.session
    const sid = this.#session.id
    if (current !== this.#session) {
      // `req.session = null` or `delete req.session` (not through destroy()).
      if (!this.#destroyed && !this.#isNew && this.#options.unset === 'destroy')
        await this.#manager.destroy(sid, this.#budget)
      return { setCookie: false, sid, cookie: undefined }
    }
    await this.#write(false)
    if (this.#destroyed || this.#gone || this.#isNew) return { setCookie: false, sid, cookie: undefined }
    const cookie = this.#session.cookie
    const setCookie =
      sid !== this.cookieSid ||
      this.#options.rolling ||
      this.secretIndex > 0 ||
      (this.#modified && cookie.expires !== null)
    return { setCookie, sid, cookie }
  }
}

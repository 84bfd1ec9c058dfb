// The session's cookie settings (`req.session.cookie`), stored with the session in express-session's
// shape, so sessions move between express-session and tieredSession() in both directions.

import type { SerializeOptions } from 'cookie'
import type { StoredCookie } from '../session-data.js'

/** Cookie attributes, as options and as stored with each session. */
export interface CookieOptions {
  /** Lifetime in **milliseconds** from now; null/undefined for a browser-session cookie. */
  maxAge?: number | null
  /** Absolute expiry; `maxAge` wins when both are given. */
  expires?: Date | null
  /** @default true */
  httpOnly?: boolean
  /** `true`, `false`, or `'auto'` (secure when the request is). @default false */
  secure?: boolean | 'auto'
  /** @default 'lax' */
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  domain?: string
  /** @default '/' */
  path?: string
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

/** `req.session.cookie`. `now` is the store's clock, so expiry and the store agree. */
export class SessionCookie {
  path = '/'
  httpOnly = true
  secure: boolean | 'auto' | undefined
  sameSite: boolean | 'lax' | 'strict' | 'none' | undefined
  domain: string | undefined
  partitioned: boolean | undefined
  priority: 'low' | 'medium' | 'high' | undefined
  originalMaxAge: number | null = null
  #expires: Date | null = null
  readonly #now: () => number

  constructor(options: CookieOptions | StoredCookie, now: () => number) {
    this.#now = now
    const o = options as CookieOptions & Partial<StoredCookie>
    if (o.path !== undefined) this.path = o.path
    if (o.httpOnly !== undefined) this.httpOnly = o.httpOnly
    this.secure = o.secure
    this.sameSite = o.sameSite
    this.domain = o.domain
    this.partitioned = o.partitioned
    this.priority = o.priority
    if (o.expires !== undefined && o.expires !== null) {
      const at = new Date(o.expires)
      this.#expires = Number.isFinite(at.getTime()) ? at : null
    }
    if (typeof o.maxAge === 'number') this.maxAge = o.maxAge
    else if (typeof o.originalMaxAge === 'number') this.originalMaxAge = o.originalMaxAge
    else if (this.#expires !== null) this.originalMaxAge = this.#expires.getTime() - now()
  }

  /** Absolute expiry, or null for a browser-session cookie. */
  get expires(): Date | null {
    return this.#expires
  }

  set expires(date: Date | null) {
    this.#expires = date
    this.originalMaxAge = date === null ? null : this.maxAge
  }

  /** Milliseconds left, or null. Setting it moves `expires` to now + value. */
  get maxAge(): number | null {
    return this.#expires === null ? null : this.#expires.getTime() - this.#now()
  }

  set maxAge(ms: number | null) {
    if (ms === null || ms === undefined) {
      this.#expires = null
      this.originalMaxAge = null
      return
    }
    this.#expires = new Date(this.#now() + ms)
    this.originalMaxAge = ms
  }

  /** Restarts the lifetime: expires = now + originalMaxAge. */
  resetMaxAge(): void {
    if (this.originalMaxAge !== null) this.#expires = new Date(this.#now() + this.originalMaxAge)
  }

  /** The stored shape, as express-session stores it. */
  toJSON(): StoredCookie {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this.#expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    }
  }

  /** Options for `cookie.serialize`, with `secure` resolved for this request. */
  serializeOptions(secure: boolean): SerializeOptions {
    return {
      path: this.path,
      httpOnly: this.httpOnly,
      secure,
      ...(this.#expires !== null ? { expires: this.#expires } : {}),
      ...(this.domain !== undefined ? { domain: this.domain } : {}),
      ...(this.sameSite !== undefined ? { sameSite: this.sameSite } : {}),
      ...(this.partitioned !== undefined ? { partitioned: this.partitioned } : {}),
      ...(this.priority !== undefined ? { priority: this.priority } : {}),
    }
  }
}

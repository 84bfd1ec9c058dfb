// Options of tieredSession(), their defaults, and their validation at registration time.

import { randomBytes } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { boolean, checkKeys, invalid, lifetimeFraction, oneOf } from '../option-checks.js'
import type { TieredStoreOptions } from '../options.js'
import type { TieredStore } from '../store.js'
import type { CookieOptions } from './session-cookie.js'

/** Options of {@link tieredSession}. */
export interface TieredSessionOptions {
  /**
   * Secret(s) that sign the session cookie. With a list, the first signs and all verify; a cookie
   * verified by a later one is re-issued signed with the first (rotation). Required.
   */
  secret: string | readonly string[]
  /** A {@link TieredStore}, or options to create one. @default local mode with defaults */
  store?: TieredStore | TieredStoreOptions
  /** Cookie name. @default 'connect.sid' */
  name?: string
  /** Cookie attributes; `maxAge` is in **milliseconds**. @default { path: '/', httpOnly: true, sameSite: 'lax' } */
  cookie?: CookieOptions
  /** Generates a new session id. @default 24 random bytes, base64url (32 characters) */
  genid?: (req: IncomingMessage) => string
  /** Send the cookie on every response, not only when the session changed. @default false */
  rolling?: boolean
  /** Store a new session even when the request put nothing in it. @default false */
  saveUninitialized?: boolean
  /** What `req.session = null` (or `delete req.session`) does: keep the stored session, or destroy it. @default 'keep' */
  unset?: 'keep' | 'destroy'
  /**
   * Trust `X-Forwarded-Proto` for `secure: 'auto'`: true trusts it, false ignores it, undefined follows
   * Express's `trust proxy` setting (`req.secure`). @default undefined
   */
  proxy?: boolean
  /**
   * Fraction of a session's lifetime that must pass since it was last saved before an unmodified request
   * writes its new expiry (a touch). 0 touches on every request. @default 0.5
   */
  touchAfter?: number
  /**
   * Accepted (and ignored) so that express-session options work unchanged: an unmodified session is never
   * rewritten, only touched (see `touchAfter`).
   */
  resave?: boolean
}

/** Options with defaults applied. */
export interface ResolvedSessionOptions {
  readonly secrets: readonly string[]
  readonly name: string
  readonly cookie: CookieOptions
  readonly genid: (req: IncomingMessage) => string
  readonly rolling: boolean
  readonly saveUninitialized: boolean
  readonly unset: 'keep' | 'destroy'
  readonly proxy: boolean | undefined
  readonly touchAfter: number
}

/** 24 random bytes as base64url, like express-session's uid-safe ids. */
export function defaultGenid(): string {
  return randomBytes(24).toString('base64url')
}

const KNOWN = [
  'secret',
  'store',
  'name',
  'cookie',
  'genid',
  'rolling',
  'saveUninitialized',
  'unset',
  'proxy',
  'touchAfter',
  'resave',
]
const COOKIE_KNOWN = [
  'maxAge',
  'expires',
  'httpOnly',
  'secure',
  'sameSite',
  'domain',
  'path',
  'partitioned',
  'priority',
]

/** Validates and fills in defaults. Throws TS_INVALID_OPTION naming the bad option. */
export function resolveSessionOptions(options: TieredSessionOptions): ResolvedSessionOptions {
  if (options === null || typeof options !== 'object') throw invalid('options', 'an object with a secret')
  checkKeys(options, KNOWN)
  const secrets = typeof options.secret === 'string' ? [options.secret] : options.secret
  if (
    !Array.isArray(secrets) ||
    secrets.length === 0 ||
    !secrets.every((s) => typeof s === 'string' && s !== '')
  ) {
    throw invalid('secret', 'a non-empty string or a non-empty list of non-empty strings')
  }
  const name = options.name ?? 'connect.sid'
  if (typeof name !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) {
    throw invalid('name', 'a cookie name (an HTTP token)')
  }
  const cookie = options.cookie ?? {}
  if (cookie === null || typeof cookie !== 'object') throw invalid('cookie', 'an object')
  checkKeys(cookie, COOKIE_KNOWN, 'cookie')
  if (cookie.maxAge !== undefined && cookie.maxAge !== null) {
    if (typeof cookie.maxAge !== 'number' || !Number.isFinite(cookie.maxAge) || cookie.maxAge <= 0) {
      throw invalid('cookie.maxAge', 'a number of milliseconds > 0')
    }
  }
  if (cookie.expires !== undefined && cookie.expires !== null && !(cookie.expires instanceof Date)) {
    throw invalid('cookie.expires', 'a Date')
  }
  oneOf(cookie.secure, 'cookie.secure', [true, false, 'auto'], undefined, "true, false or 'auto'")
  oneOf(
    cookie.sameSite,
    'cookie.sameSite',
    [true, false, 'lax', 'strict', 'none'],
    undefined,
    "true, false, 'lax', 'strict' or 'none'",
  )
  oneOf(cookie.priority, 'cookie.priority', ['low', 'medium', 'high'], undefined, "'low', 'medium' or 'high'")
  const genid = options.genid ?? defaultGenid
  if (typeof genid !== 'function') throw invalid('genid', 'a function (req) => string')
  boolean(options.resave, 'resave', false)
  const unset = oneOf<'keep' | 'destroy'>(
    options.unset,
    'unset',
    ['keep', 'destroy'],
    'keep',
    "'keep' or 'destroy'",
  )
  if (options.proxy !== undefined) boolean(options.proxy, 'proxy', false)
  const touchAfter = lifetimeFraction(options.touchAfter, 'touchAfter', 0.5)
  return {
    secrets,
    name,
    cookie: { sameSite: 'lax', ...cookie },
    genid,
    rolling: boolean(options.rolling, 'rolling', false),
    saveUninitialized: boolean(options.saveUninitialized, 'saveUninitialized', false),
    unset,
    proxy: options.proxy,
    touchAfter,
  }
}

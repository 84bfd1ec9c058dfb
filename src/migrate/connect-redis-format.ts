// connect-redis's format, read and written: key `${prefix}${sid}`, value the JSON text of the session (its
// `cookie.expires` an ISO string), set with `SET … EX ttl` where ttl is the seconds until `cookie.expires`
// (rounded up), else 86,400. connect-redis 8 (over ioredis) and 9 (over node-redis) write the same.

import type { SessionObject } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { StoredRecord } from '../tiers/tier.js'

/** connect-redis's ttl for a session whose cookie has no `expires`, in seconds. */
export const LEGACY_DEFAULT_TTL_S = 86_400

/** A session read from a connect-redis key: our record, with the text it was read from. */
export interface LegacyRecord extends StoredRecord {
  readonly legacy: string
}

function notASession(what: string): TieredSessionError {
  return new TieredSessionError(
    ErrorCodes.DECODE_FAILED,
    `a connect-redis session key holds ${what}, not a session`,
  )
}

/** The session in a connect-redis value; throws TS_DECODE_FAILED for anything that is not a session. */
export function parseLegacy(text: string): SessionObject {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw notASession('text that is not JSON')
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw notASession('JSON')
  const cookie = (value as SessionObject).cookie
  if (cookie === null || typeof cookie !== 'object' || Array.isArray(cookie))
    throw notASession('an object without a cookie')
  return value as SessionObject
}

/**
 * A connect-redis value as our record (version 0: never written by us). Its expiry is the key's own (`pttlMs`,
 * Redis's PTTL, which connect-redis's touch moves without rewriting the JSON), else its cookie's `expires` (a
 * key without TTL), else connect-redis's default ttl from `now`.
 */
export function fromLegacy(
  text: string,
  pttlMs: number,
  now: number,
  userIdOf: (session: SessionObject) => string | null,
): LegacyRecord {
  const session = parseLegacy(text)
  const expires = (session.cookie as { expires?: unknown }).expires
  let expiresAt = pttlMs > 0 ? now + pttlMs : typeof expires === 'string' ? Date.parse(expires) : Number.NaN
  if (!Number.isFinite(expiresAt)) expiresAt = now + LEGACY_DEFAULT_TTL_S * 1000
  let userId: string | null = null
  try {
    userId = userIdOf(session)
  } catch {
    // NB: a user id option that throws on an old session only leaves it out of its user's index.
  }
  return { payload: text, expiresAt, userId, version: 0, legacy: text }
}

/** A session of ours in connect-redis's format: the value, and its ttl in seconds as connect-redis rounds it. */
export function toLegacy(
  payload: string,
  expiresAt: number,
  now: number,
): { text: string; ttlSeconds: number } {
  return { text: payload, ttlSeconds: Math.max(1, Math.ceil((expiresAt - now) / 1000)) }
}

// What the manager reads out of a session object: its expiry, its user, and whether a session id is acceptable.

import type { SessionObject } from './codec.js'
import { ErrorCodes, TieredSessionError } from './errors.js'
import type { ResolvedOptions } from './options.js'

/** Longest session id accepted, in characters. */
export const MAX_SID_LENGTH = 256

const SID_PATTERN = /^[\x21-\x7e]+$/

/** True for a non-empty string of visible ASCII of at most {@link MAX_SID_LENGTH} characters. */
export function isValidSid(sid: unknown): sid is string {
  return typeof sid === 'string' && sid.length > 0 && sid.length <= MAX_SID_LENGTH && SID_PATTERN.test(sid)
}

/** Throws TS_INVALID_SID unless {@link isValidSid}. */
export function assertValidSid(sid: unknown): asserts sid is string {
  if (!isValidSid(sid)) {
    throw new TieredSessionError(
      ErrorCodes.INVALID_SID,
      `a session id must be 1 to ${MAX_SID_LENGTH} visible ASCII characters`,
    )
  }
}

/**
 * Absolute expiry in ms: `cookie.expires` to the millisecond when the session has one, else now + ttl.
 */
export function expiresAtOf(session: SessionObject, now: number, options: ResolvedOptions): number {
  const cookie = session.cookie as { expires?: unknown } | null | undefined
  const expires = cookie !== null && typeof cookie === 'object' ? cookie.expires : undefined
  if (expires instanceof Date || typeof expires === 'string' || typeof expires === 'number') {
    const at = new Date(expires).getTime()
    if (Number.isFinite(at)) return at
  }
  let seconds: unknown
  try {
    seconds = options.ttlSeconds(session)
  } catch (cause) {
    throw new TieredSessionError(ErrorCodes.INVALID_OPTION, 'option "ttl" threw', { cause })
  }
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) {
    throw new TieredSessionError(
      ErrorCodes.INVALID_OPTION,
      'option "ttl" must return a finite number of seconds',
    )
  }
  return now + Math.round(seconds * 1000)
}

/** The session's user as a string, or null when it has none. */
export function userIdOf(session: SessionObject, options: ResolvedOptions): string | null {
  let id: unknown
  try {
    id = options.userId(session)
  } catch (cause) {
    throw new TieredSessionError(ErrorCodes.INVALID_OPTION, 'option "userId" threw', { cause })
  }
  return normalizeUserId(id)
}

/**
 * A user id as the index keys it: a non-empty string, a finite number or a bigint as text, or an object's
 * `id` (Passport apps often serialize the user as `{ id, ... }`); anything else is no user.
 */
export function normalizeUserId(userId: unknown): string | null {
  if (userId !== null && typeof userId === 'object' && 'id' in userId) {
    const id = (userId as { id: unknown }).id
    return typeof id === 'object' ? null : normalizeUserId(id)
  }
  if (typeof userId === 'string') return userId.length > 0 ? userId : null
  if (typeof userId === 'number' && Number.isFinite(userId)) return String(userId)
  if (typeof userId === 'bigint') return userId.toString()
  return null
}

// A session in Redis is a hash: p = payload, v = version, e = expiresAt (ms), u = userId ('' for none),
// d = 1 for a tombstone, after a touch c = the newer cookie with t = its version, and with `maxLifetime`
// a = when the session was created (see scripts.ts). This file reads it back.

import { withCookie } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { StoredRecord } from '../tiers/tier.js'

/** The fields a session read fetches (HMGET), in the order {@link fromHash} reads them. */
export const SESSION_FIELDS = ['p', 'v', 'e', 'u', 'd', 'c', 't', 'a'] as const

/**
 * Turns HMGET p v e u d c t into a record (a tombstone is no record), its payload opened by `open` (at-rest
 * encryption) and the cookie of a touch of this very version spliced in; throws TS_DECODE_FAILED for a value
 * that is not ours or does not open.
 */
export function fromHash(
  values: Array<string | null>,
  open: (stored: string) => string,
): StoredRecord | undefined {
  const [stored, version, expiresAt, userId, dead, cookie, touched, created] = values
  if (dead === '1' || (stored === null && version === null)) return undefined
  const v = Number(version)
  const e = Number(expiresAt)
  if (typeof stored !== 'string' || !Number.isFinite(v) || !Number.isFinite(e)) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a session in Redis has fields of the wrong type')
  }
  const opened = open(stored)
  const payload = typeof cookie === 'string' && touched === version ? withCookie(opened, cookie) : opened
  return {
    payload,
    version: v,
    expiresAt: e,
    userId: userId === null || userId === undefined || userId === '' ? null : userId,
    createdAt: typeof created === 'string' && created !== '' ? Number(created) : undefined,
  }
}

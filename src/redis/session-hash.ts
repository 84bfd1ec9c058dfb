// A session in Redis is a hash: p = payload, v = version, e = expiresAt (ms), u = userId ('' for none), and
// d = 1 for a tombstone (see scripts.ts). This file reads it back.

import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { StoredRecord } from '../tiers/tier.js'

/** The fields a session read fetches (HMGET), in the order {@link fromHash} reads them. */
export const SESSION_FIELDS = ['p', 'v', 'e', 'u', 'd'] as const

/** Turns HMGET p v e u d into a record (a tombstone is no record); throws TS_DECODE_FAILED for a value that is not ours. */
export function fromHash(values: Array<string | null>): StoredRecord | undefined {
  const [payload, version, expiresAt, userId, dead] = values
  if (dead === '1' || (payload === null && version === null)) return undefined
  const v = Number(version)
  const e = Number(expiresAt)
  if (typeof payload !== 'string' || !Number.isFinite(v) || !Number.isFinite(e)) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a session in Redis has fields of the wrong type')
  }
  return {
    payload,
    version: v,
    expiresAt: e,
    userId: userId === null || userId === undefined || userId === '' ? null : userId,
  }
}

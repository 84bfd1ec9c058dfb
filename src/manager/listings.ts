// Listings built from tier rows: decoded sessions by id (what `all()` returns) and a user's sessions (what
// `listByUser()` returns). A row that does not decode is reported by `decode` and left out.

import { handleOf } from '../at-rest/session-key.js'
import type { SessionObject } from '../codec.js'
import type { TierRow } from '../tiers/tier.js'
import type { UserSession } from './engine.js'

/** Decodes a row's payload, or undefined (reported) when it does not decode. */
type Decode = (row: TierRow) => SessionObject | undefined

/** Decoded sessions by id. */
export function sessionsById(rows: readonly TierRow[], decode: Decode): Record<string, SessionObject> {
  const out: Record<string, SessionObject> = {}
  for (const row of rows) {
    const session = decode(row)
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

/** Decoded sessions with their handles and expiry, and their ids when `withIds` (the ids are not hashed). */
export function userSessions(rows: readonly TierRow[], decode: Decode, withIds: boolean): UserSession[] {
  const out: UserSession[] = []
  for (const row of rows) {
    const session = decode(row)
    if (session === undefined) continue
    const handle = handleOf(row.sid)
    // NB: the creation time is known only for sessions written with `maxLifetime`.
    const created = row.createdAt === undefined ? {} : { createdAt: row.createdAt }
    out.push(
      withIds
        ? { handle, sid: row.sid, session, expiresAt: row.expiresAt, ...created }
        : { handle, session, expiresAt: row.expiresAt, ...created },
    )
  }
  return out
}

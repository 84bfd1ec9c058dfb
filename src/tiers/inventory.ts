// What a store holds, counted for an operator (`tiered-session stats`): live sessions and their bytes, expired
// rows the sweep has not removed yet, the users with the most sessions, the outbox's depth. By SQL on the SQLite
// file, or over rows already read (Redis).

import type Database from 'better-sqlite3'

/** Sessions of one user. */
export interface UserCount {
  readonly userId: string
  readonly sessions: number
}

/** What a store holds, for an operator. No session data and no session ids. */
export interface Inventory {
  /** Live sessions. */
  readonly sessions: number
  /** Bytes of their serialized payloads (UTF-8). */
  readonly bytes: number
  /** Rows past their expiry not removed yet; null where the authority expires its own (Redis). */
  readonly expiredNotSwept: number | null
  /** The users with the most live sessions, most first (ties by user id). */
  readonly topUsers: readonly UserCount[]
  /** Sessions with a user. */
  readonly withUser: number
  /** Writes waiting for Redis in this file's outbox (shared mode); null without a file. */
  readonly outboxDepth: number | null
}

/** Counts what the database of `db` holds at `now` (ms), with the `top` users by session count. */
export function diskInventory(db: Database.Database, now: number, top: number): Inventory {
  const live = db
    .prepare<[number], { n: number; bytes: number; withUser: number }>(
      `SELECT count(*) AS n, coalesce(sum(length(CAST(payload AS BLOB))), 0) AS bytes,
              count(userId) AS withUser
       FROM sessions WHERE expiresAt > ?`,
    )
    .get(now) as { n: number; bytes: number; withUser: number }
  const expired = db
    .prepare<[number], { n: number }>('SELECT count(*) AS n FROM sessions WHERE expiresAt <= ?')
    .get(now) as { n: number }
  const topUsers = db
    .prepare<[number, number], { userId: string; sessions: number }>(
      `SELECT userId, count(*) AS sessions FROM sessions
       WHERE userId IS NOT NULL AND expiresAt > ?
       GROUP BY userId ORDER BY sessions DESC, userId LIMIT ?`,
    )
    .all(now, top)
  const outbox = db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox').get() as { n: number }
  return {
    sessions: live.n,
    bytes: live.bytes,
    expiredNotSwept: expired.n,
    topUsers,
    withUser: live.withUser,
    outboxDepth: outbox.n,
  }
}

/** The same counts over rows already read (an authority with no SQL: Redis). */
export function rowsInventory(
  rows: ReadonlyArray<{ readonly payload: string; readonly userId: string | null }>,
  top: number,
): Omit<Inventory, 'expiredNotSwept' | 'outboxDepth'> {
  let bytes = 0
  const byUser = new Map<string, number>()
  for (const row of rows) {
    bytes += Buffer.byteLength(row.payload, 'utf8')
    if (row.userId !== null) byUser.set(row.userId, (byUser.get(row.userId) ?? 0) + 1)
  }
  const topUsers = [...byUser]
    .map(([userId, sessions]) => ({ userId, sessions }))
    .sort((a, b) => b.sessions - a.sessions || (a.userId < b.userId ? -1 : a.userId > b.userId ? 1 : 0))
    .slice(0, top)
  let withUser = 0
  for (const n of byUser.values()) withUser += n
  return { sessions: rows.length, bytes, topUsers, withUser }
}

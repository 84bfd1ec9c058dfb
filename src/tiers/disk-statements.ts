// The prepared SQL of the disk tier (parameterized only) and the check that turns a raw row into a record.

import type Database from 'better-sqlite3'
import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { StoredRecord } from './tier.js'

/** A row as SQLite hands it back: nothing about its column types is trusted. */
export interface RawRow {
  sid: unknown
  payload: unknown
  expiresAt: unknown
  version: unknown
  userId: unknown
  createdAt?: unknown
}

/**
 * Turns a raw row into a record (its payload opened by `sealer`), or throws TS_DECODE_FAILED when a column has
 * the wrong type or the payload does not open. `lazy`: an encrypted payload is opened when first read, and a
 * failure to open is thrown then (a merge whose whole-session shortcut applies never reads it).
 */
export function toRecord(row: RawRow, sealer: PayloadSealer, lazy = false): StoredRecord {
  const { payload: stored, expiresAt, version, userId } = row
  if (
    typeof stored !== 'string' ||
    typeof expiresAt !== 'number' ||
    typeof version !== 'number' ||
    (userId !== null && typeof userId !== 'string')
  ) {
    throw new TieredSessionError(
      ErrorCodes.DECODE_FAILED,
      'a session row on disk has columns of the wrong type',
    )
  }
  const createdAt = typeof row.createdAt === 'number' ? row.createdAt : undefined
  if (!lazy || !sealer.encrypting)
    return { payload: sealer.open(String(row.sid), stored), expiresAt, version, userId, createdAt }
  const sid = String(row.sid)
  let opened: string | undefined
  return {
    get payload() {
      opened ??= sealer.open(sid, stored)
      return opened
    },
    expiresAt,
    version,
    userId,
    createdAt,
  }
}

const COLUMNS = 'sid, payload, expiresAt, version, userId, createdAt'

/**
 * Upserts a session row: with @version the row gets exactly it; without (null), one more than the old one.
 * Also run by the file's worker thread (src/tiers/file-worker.ts), for the spill cache.
 */
export const PUT_SQL = `INSERT INTO sessions (sid, payload, expiresAt, version, userId, createdAt)
       VALUES (@sid, @payload, @expiresAt, COALESCE(@version, 1), @userId, @createdAt)
       ON CONFLICT (sid) DO UPDATE SET
         payload = excluded.payload,
         expiresAt = excluded.expiresAt,
         userId = excluded.userId,
         createdAt = excluded.createdAt,
         version = COALESCE(@version, sessions.version + 1)
       RETURNING version`

/**
 * {@link PUT_SQL} of a row that exists with the same userId and createdAt, as an UPDATE that leaves the user index
 * alone; no row returned otherwise (then the upsert runs). Also run by the file's worker thread.
 */
export const REPLACE_SQL = `UPDATE sessions SET payload = @payload, expiresAt = @expiresAt, version = COALESCE(@version, version + 1)
       WHERE sid = @sid AND userId IS @userId AND createdAt IS @createdAt
       RETURNING version`

/** Deletes the row of one session id (also run by the file's worker thread). */
export const DELETE_SQL = 'DELETE FROM sessions WHERE sid = ?'

type Statement<P extends unknown[] | object, R = unknown> = Database.Statement<P, R>

/** Every statement the disk tier runs. */
export interface DiskStatements {
  /** Seals payloads before they are stored and opens them when read (`encryption`; else the identity). */
  readonly sealer: PayloadSealer
  readonly get: Statement<[string], RawRow>
  readonly exists: Statement<[string], { one: number }>
  readonly any: Statement<[], { one: number }>
  readonly put: Statement<Record<string, unknown>, { version: number }>
  readonly putAfter: Statement<Record<string, unknown>, { version: number }>
  /** {@link put} of a row that exists with the same userId and createdAt; no row returned otherwise. */
  readonly replace: Statement<Record<string, unknown>, { version: number }>
  /** {@link putAfter} of a row that exists with the same userId and createdAt; no row returned otherwise. */
  readonly replaceAfter: Statement<Record<string, unknown>, { version: number }>
  readonly touch: Statement<Record<string, unknown>>
  readonly delete: Statement<[string]>
  readonly deleteUpTo: Statement<[string, number]>
  readonly clear: Statement<[]>
  readonly count: Statement<[], { n: number }>
  readonly countLive: Statement<[number], { n: number }>
  readonly ids: Statement<[number], { sid: string }>
  readonly all: Statement<[number], RawRow>
  readonly byUser: Statement<[string, number], RawRow>
  readonly expired: Statement<[number, number], { sid: string; userId: string | null }>
  readonly outboxInsert: Statement<Record<string, unknown>>
  readonly outboxAll: Statement<[], RawRow & { seq: number; op: string }>
  readonly outboxRemove: Statement<[number]>
  readonly outboxHas: Statement<[number], { seq: number }>
  readonly outboxRemoveSession: Statement<[string, number]>
  readonly outboxHasSession: Statement<[string, number], { seq: number }>
  readonly outboxLatestExpiry: Statement<[string], { e: number | null }>
  readonly outboxRemoveAll: Statement<[]>
  readonly outboxCount: Statement<[], { n: number }>
}

/** Prepares every statement the disk tier runs, once per open database. */
export function prepareStatements(db: Database.Database, sealer: PayloadSealer): DiskStatements {
  return {
    sealer,
    get: db.prepare<[string], RawRow>(`SELECT ${COLUMNS} FROM sessions WHERE sid = ?`),
    exists: db.prepare<[string], { one: number }>('SELECT 1 AS one FROM sessions WHERE sid = ?'),
    any: db.prepare<[], { one: number }>('SELECT 1 AS one FROM sessions LIMIT 1'),
    put: db.prepare<Record<string, unknown>, { version: number }>(PUT_SQL),
    // NB: a touch changes only the cookie and expiry of the very version it was made on, and only forward.
    touch: db.prepare<Record<string, unknown>>(
      `UPDATE sessions SET payload = @payload, expiresAt = @expiresAt
       WHERE sid = @sid AND version = @version AND expiresAt < @expiresAt`,
    ),
    // NB: one more than both the old version and @after (a version the caller knows of elsewhere).
    putAfter: db.prepare<Record<string, unknown>, { version: number }>(
      `INSERT INTO sessions (sid, payload, expiresAt, version, userId, createdAt)
       VALUES (@sid, @payload, @expiresAt, @after + 1, @userId, @createdAt)
       ON CONFLICT (sid) DO UPDATE SET
         payload = excluded.payload,
         expiresAt = excluded.expiresAt,
         userId = excluded.userId,
         createdAt = excluded.createdAt,
         version = MAX(sessions.version, @after) + 1
       RETURNING version`,
    ),
    // NB: the common write replaces a session's data and expiry and keeps its user and creation time. An UPDATE
    // that does not name userId leaves the user index alone, where the upsert rewrites its entry: 27 against 43
    // µs per row at 50,000 rows (a random index page less per row in the write-ahead log).
    replace: db.prepare<Record<string, unknown>, { version: number }>(REPLACE_SQL),
    replaceAfter: db.prepare<Record<string, unknown>, { version: number }>(
      `UPDATE sessions SET payload = @payload, expiresAt = @expiresAt, version = MAX(version, @after) + 1
       WHERE sid = @sid AND userId IS @userId AND createdAt IS @createdAt
       RETURNING version`,
    ),
    delete: db.prepare<[string]>(DELETE_SQL),
    deleteUpTo: db.prepare<[string, number]>('DELETE FROM sessions WHERE sid = ? AND version <= ?'),
    clear: db.prepare<[]>('DELETE FROM sessions'),
    count: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM sessions'),
    countLive: db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM sessions WHERE expiresAt > ?'),
    ids: db.prepare<[number], { sid: string }>('SELECT sid FROM sessions WHERE expiresAt > ?'),
    all: db.prepare<[number], RawRow>(`SELECT ${COLUMNS} FROM sessions WHERE expiresAt > ?`),
    byUser: db.prepare<[string, number], RawRow>(
      `SELECT ${COLUMNS} FROM sessions WHERE userId = ? AND expiresAt > ?`,
    ),
    expired: db.prepare<[number, number], { sid: string; userId: string | null }>(
      'SELECT sid, userId FROM sessions WHERE expiresAt <= ? LIMIT ?',
    ),
    outboxInsert: db.prepare<Record<string, unknown>>(
      `INSERT INTO outbox (sid, op, payload, expiresAt, version, userId, createdAt)
       VALUES (@sid, @op, @payload, @expiresAt, @version, @userId, @createdAt)`,
    ),
    outboxAll: db.prepare<[], RawRow & { seq: number; op: string }>(
      `SELECT seq, ${COLUMNS}, op FROM outbox ORDER BY seq`,
    ),
    outboxRemove: db.prepare<[number]>('DELETE FROM outbox WHERE seq = ?'),
    outboxHas: db.prepare<[number], { seq: number }>('SELECT seq FROM outbox WHERE seq = ?'),
    outboxRemoveSession: db.prepare<[string, number]>('DELETE FROM outbox WHERE sid = ? AND version <= ?'),
    outboxHasSession: db.prepare<[string, number], { seq: number }>(
      'SELECT seq FROM outbox WHERE sid = ? AND version <= ? LIMIT 1',
    ),
    outboxLatestExpiry: db.prepare<[string], { e: number | null }>(
      "SELECT max(expiresAt) AS e FROM outbox WHERE sid = ? AND op = 'set'",
    ),
    outboxRemoveAll: db.prepare<[]>('DELETE FROM outbox'),
    outboxCount: db.prepare<[], { n: number }>('SELECT count(*) AS n FROM outbox'),
  }
}

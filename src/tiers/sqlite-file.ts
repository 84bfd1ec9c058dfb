// The SQLite file of the disk tier: created 0600 in a 0700 directory, opened in WAL mode with the schema
// migrated, and restored from the open copy when it was removed underneath a running store.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { hashSid } from '../at-rest/session-key.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'

/** How the file is opened. */
export interface SqliteFileOptions {
  readonly synchronous: 'normal' | 'full'
  /** Largest the database file may grow, in bytes (SQLite `max_page_count`); undefined: no limit. */
  readonly maxBytes?: number | undefined
  /** Sessions are kept under SHA-256 of their ids (see {@link useIdKeys}). */
  readonly hashIds?: boolean | undefined
}

/** 3: the `meta` table (how ids are keyed) and `createdAt` columns (`maxLifetime`). */
const SCHEMA_VERSION = 3

/**
 * Creates the directory (0700) when it does not exist, and the file; the file and its -wal/-shm companions
 * are made 0600 whether they are new or not. An existing directory's mode is left as its owner set it.
 */
function prepareFile(path: string): void {
  const dir = dirname(path)
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
  // NB: create the file ourselves so it is 0600 from its first byte; SQLite gives -wal and -shm the same mode.
  closeSync(openSync(path, 'a', 0o600))
  for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600)
}

/**
 * A live destroy or write looks up its session's outbox entries (every call, in an outage too, when the log may
 * hold a great many): an index rather than a scan. Added to files of any schema (older versions keep it up).
 * Best effort: a file at `disk.maxBytes` or on a full disk has no room to build it, and must still open (its
 * lookups then scan the log).
 */
function addOutboxIndex(db: Database.Database): void {
  try {
    db.exec('CREATE INDEX IF NOT EXISTS outbox_by_sid ON outbox (sid)')
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (code !== 'SQLITE_FULL' && code !== 'SQLITE_READONLY') throw error
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version > SCHEMA_VERSION) {
    throw new Error(`schema version ${version} is newer than this package understands (${SCHEMA_VERSION})`)
  }
  db.exec(`
    CREATE TABLE IF NOT EXISTS sessions (
      sid TEXT PRIMARY KEY NOT NULL,
      payload TEXT NOT NULL,
      expiresAt INTEGER NOT NULL,
      version INTEGER NOT NULL,
      userId TEXT
    );
    CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expiresAt);
    CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (userId) WHERE userId IS NOT NULL;
    CREATE TABLE IF NOT EXISTS outbox (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      sid TEXT NOT NULL,
      op TEXT NOT NULL,
      payload TEXT,
      expiresAt INTEGER NOT NULL,
      version INTEGER NOT NULL,
      userId TEXT
    );
    CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
  `)
  addOutboxIndex(db)
  // NB: schema 3: when each session was created (`maxLifetime`); null for rows written without it.
  for (const table of ['sessions', 'outbox']) {
    const columns = db.prepare<[], { name: string }>(`PRAGMA table_info(${table})`).all()
    if (!columns.some((column) => column.name === 'createdAt'))
      db.exec(`ALTER TABLE ${table} ADD COLUMN createdAt INTEGER`)
  }
  db.pragma(`user_version = ${SCHEMA_VERSION}`)
}

/**
 * How the file keys its sessions, recorded in `meta` ('sha256' or 'plain'; a file without the entry was
 * written by 0.1.0: plain). With `hashIds`, rows under plain ids (the sessions table and the outbox) are moved
 * to their hashed keys in one transaction, with `secure_delete` so the plain ids do not linger in free pages,
 * and the WAL is truncated after. A file of hashed keys cannot be used without `hashIds`.
 */
function useIdKeys(db: Database.Database, hashIds: boolean): void {
  const row = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE name = 'ids'").get()
  const mode = row?.value ?? 'plain'
  const want = hashIds ? 'sha256' : 'plain'
  if (mode === want && row !== undefined) return
  if (mode === 'sha256') {
    throw new TieredSessionError(
      ErrorCodes.INVALID_OPTION,
      'option "hashIds" must be true for this session database: its session ids are hashed',
    )
  }
  db.function('ts_hash_sid', { deterministic: true }, (sid: unknown) => hashSid(String(sid)))
  db.pragma('secure_delete = ON')
  db.transaction(() => {
    if (hashIds) {
      db.exec('UPDATE sessions SET sid = ts_hash_sid(sid); UPDATE outbox SET sid = ts_hash_sid(sid);')
    }
    db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('ids', ?)").run(want)
  })()
  db.pragma('secure_delete = OFF')
  if (hashIds) db.pragma('wal_checkpoint(TRUNCATE)')
}

/**
 * How an existing session database keys its sessions, read without changing it: 'sha256' (hashed ids),
 * 'plain', or undefined when there is no such file (or it holds no sessions table yet). Tools that open an
 * app's file (the CLI) use it so as to keep the app's `hashIds`.
 */
export function storedIdMode(path: string): 'sha256' | 'plain' | undefined {
  if (!existsSync(path)) return undefined
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const tables = db
      .prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'")
      .all()
      .map((row) => row.name)
    if (!tables.includes('sessions')) return undefined
    if (!tables.includes('meta')) return 'plain'
    const row = db.prepare<[], { value: string }>("SELECT value FROM meta WHERE name = 'ids'").get()
    return row?.value === 'sha256' ? 'sha256' : 'plain'
  } finally {
    db.close()
  }
}

/** An open database and the inode of the file it was opened from. */
export interface OpenedFile {
  readonly db: Database.Database
  readonly inode: number
}

/** Opens (creating if needed) the database at `path`; throws TS_DISK_OPEN_FAILED naming the path. */
export function openSqliteFile(path: string, options: SqliteFileOptions): OpenedFile {
  let db: Database.Database
  let inode: number
  try {
    prepareFile(path)
    db = new Database(path, { fileMustExist: true })
    inode = statSync(path).ino
  } catch (cause) {
    throw new TieredSessionError(
      ErrorCodes.DISK_OPEN_FAILED,
      `cannot create or open the session database at ${path}: ${(cause as Error).message}`,
      { cause },
    )
  }
  try {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
    db.pragma('busy_timeout = 5000')
    if (options.maxBytes !== undefined) {
      const pageSize = db.pragma('page_size', { simple: true }) as number
      db.pragma(`max_page_count = ${Math.max(1, Math.floor(options.maxBytes / pageSize))}`)
    }
    migrate(db)
    useIdKeys(db, options.hashIds ?? false)
  } catch (cause) {
    db.close()
    if (cause instanceof TieredSessionError && cause.code === ErrorCodes.INVALID_OPTION) throw cause
    throw new TieredSessionError(
      ErrorCodes.DISK_OPEN_FAILED,
      `cannot use the session database at ${path}: ${(cause as Error).message}`,
      { cause },
    )
  }
  return { db, inode }
}

/**
 * If the file at `path` is no longer the one `opened` came from because it was removed, writes would go on
 * into a file that no longer has a name and be lost at the next start: this restores it from the open copy
 * (VACUUM INTO) and returns true (the caller reopens it). A different file put in its place is TS_DISK_IO.
 */
export function restoreIfRemoved(opened: OpenedFile, path: string, beforeClose?: () => void): boolean {
  let inode: number | undefined
  try {
    inode = statSync(path).ino
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
  }
  if (inode === opened.inode) return false
  if (inode !== undefined) {
    throw new TieredSessionError(
      ErrorCodes.DISK_IO,
      `the session database at ${path} was replaced by another file`,
    )
  }
  const dir = dirname(path)
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
  opened.db.prepare('VACUUM INTO ?').run(path)
  chmodSync(path, 0o600)
  beforeClose?.()
  opened.db.close()
  return true
}

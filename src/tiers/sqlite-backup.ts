// The online backup of the SQLite file: SQLite's backup API (through better-sqlite3) into a file created 0600 in
// a directory created 0700, in steps that let the app's writes go on between them.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync, rmSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type Database from 'better-sqlite3'
import { ErrorCodes, TieredSessionError } from '../errors.js'

/** How far a backup has come, in database pages. */
export interface BackupProgress {
  /** Pages in the database when this step ran. */
  readonly totalPages: number
  /** Pages still to copy. */
  readonly remainingPages: number
}

/** Pages copied per step; between steps the event loop (and the app's writes) run. */
const PAGES_PER_STEP = 256

/** Every page left, in one step (better-sqlite3's largest step). */
const ALL_PAGES = 0x7fffffff

/**
 * Copies the database `db` is connected to into `target`, online: the app goes on reading and writing on `db`
 * meanwhile (SQLite brings the copy up to date with writes made on the same connection, and starts over after
 * a write by another one), and the copy is one consistent state of the database. `onProgress` hears each step.
 * Throws TS_BACKUP_FAILED naming the target when it cannot be created or written.
 */
export async function backupSqlite(
  db: Database.Database,
  target: string,
  onProgress: (progress: BackupProgress) => void,
): Promise<BackupProgress> {
  const path = resolve(target)
  // NB: the copy's file is truncated first: a target that is the database (or its WAL) by any name would wipe it.
  if (isDatabaseFile(path, db.name))
    throw new TieredSessionError(
      ErrorCodes.BACKUP_FAILED,
      `cannot write the backup to ${path}: it is the database itself`,
    )
  try {
    const dir = dirname(path)
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
    // NB: the copy holds every session: 0600 from its first byte, and whatever was at the path is replaced.
    closeSync(openSync(path, 'w', 0o600))
    chmodSync(path, 0o600)
    for (const stale of [`${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(stale, { force: true })
  } catch (cause) {
    throw failed(path, cause)
  }
  try {
    let left = Number.POSITIVE_INFINITY
    let step = PAGES_PER_STEP
    const done = await db.backup(path, {
      progress: ({ totalPages, remainingPages }) => {
        // NB: a commit by another connection (another process) starts the copy over; one that keeps writing
        // would keep it from ever ending, so after a restart the rest is copied in one step (one read snapshot).
        if (remainingPages > left) step = ALL_PAGES
        left = remainingPages
        onProgress({ totalPages, remainingPages })
        return step
      },
    })
    const last = { totalPages: done.totalPages, remainingPages: done.remainingPages }
    onProgress(last)
    return last
  } catch (cause) {
    throw failed(path, cause)
  }
}

/** True when `target` is the database at `dbPath` or its WAL or shared memory, by any name (path, hard link). */
export function isDatabaseFile(target: string, dbPath: string): boolean {
  return [dbPath, `${dbPath}-wal`, `${dbPath}-shm`].some((file) => sameFile(target, file))
}

/** True when `a` and `b` name the same file (same device and inode; a path that does not exist is no file). */
function sameFile(a: string, b: string): boolean {
  if (resolve(a) === resolve(b)) return true
  try {
    const [sa, sb] = [statSync(a), statSync(b)]
    return sa.ino === sb.ino && sa.dev === sb.dev
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw failed(a, error)
  }
}

function failed(path: string, cause: unknown): TieredSessionError {
  const reason = String((cause as Error)?.message ?? cause).split('\n')[0]
  return new TieredSessionError(ErrorCodes.BACKUP_FAILED, `cannot write the backup to ${path}: ${reason}`, {
    cause,
  })
}

// The disk tier: one SQLite file (WAL) of sessions with indexes on expiry and user. Reads are synchronous
// point look-ups; writes go through group commit and are acknowledged after their transaction commits.

import { chmodSync, closeSync, existsSync, mkdirSync, openSync, statSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import type { Clock } from '../clock.js'
import { ErrorCodes, TieredSessionError, wrapError } from '../errors.js'
import { GroupCommit } from './group-commit.js'
import type { RecordInput, StoredRecord, Tier } from './tier.js'

/** Options of {@link DiskTier}. */
export interface DiskTierOptions {
  readonly path: string
  readonly synchronous: 'normal' | 'full'
  readonly maxBatchSize: number
  /** Largest the database file may grow, in bytes (SQLite `max_page_count`); undefined: no limit. */
  readonly maxBytes?: number | undefined
  readonly clock: Clock
  /** Hears of problems the tier handled on its own (a database file removed underneath and restored). */
  readonly onError?: (error: TieredSessionError) => void
}

/** A session row with its id. */
export interface DiskRow extends StoredRecord {
  readonly sid: string
}

/** One write in a group-committed transaction. */
export type DiskOp =
  | { readonly type: 'put'; readonly sid: string; readonly record: RecordInput }
  | { readonly type: 'delete'; readonly sid: string }
  | {
      readonly type: 'patch'
      readonly sid: string
      /** Given the live record inside the transaction, returns its replacement, or undefined to leave it. */
      readonly patch: (current: StoredRecord) => RecordInput | undefined
    }
  | { readonly type: 'clear' }
  /** Shared mode, Redis down: queue a write for replay and keep the local copy. Resolves to its seq. */
  | { readonly type: 'outbox-set'; readonly sid: string; readonly record: StoredRecord }
  /** Shared mode, Redis down: queue a destroy for replay and drop the local copy. Resolves to its seq. */
  | { readonly type: 'outbox-delete'; readonly sid: string; readonly version: number }

/** What a {@link DiskOp} resolves to: the stored record, whether a delete found a row, or rows cleared. */
export type DiskResult = StoredRecord | boolean | number | undefined

/** A write waiting for Redis (shared mode). */
export interface OutboxEntry {
  readonly seq: number
  readonly sid: string
  readonly op: 'set' | 'delete'
  /** For 'set': the record to write. For 'delete': only `version` matters. */
  readonly record: StoredRecord
}

interface RawRow {
  sid: unknown
  payload: unknown
  expiresAt: unknown
  version: unknown
  userId: unknown
}

const SCHEMA_VERSION = 2

/** Turns a raw row into a record, or throws TS_DECODE_FAILED when a column has the wrong type. */
function toRecord(row: RawRow): StoredRecord {
  const { payload, expiresAt, version, userId } = row
  if (
    typeof payload !== 'string' ||
    typeof expiresAt !== 'number' ||
    typeof version !== 'number' ||
    (userId !== null && typeof userId !== 'string')
  ) {
    throw new TieredSessionError(
      ErrorCodes.DECODE_FAILED,
      'a session row on disk has columns of the wrong type',
    )
  }
  return { payload, expiresAt, version, userId }
}

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

/** SQLite-backed tier. One instance owns one connection to one file. */
export class DiskTier implements Tier {
  readonly kind = 'disk' as const
  readonly path: string
  readonly #clock: Clock
  readonly #options: DiskTierOptions
  #db!: Database.Database
  /** The inode of the file we opened: a different one (or none) at `path` means it was removed underneath. */
  #inode = 0
  #transaction!: (ops: readonly DiskOp[]) => Array<DiskResult | Error>
  readonly #writes: GroupCommit<DiskOp, DiskResult>
  #stmt!: {
    get: Database.Statement<[string], RawRow>
    exists: Database.Statement<[string], { one: number }>
    any: Database.Statement<[], { one: number }>
    put: Database.Statement<Record<string, unknown>, { version: number }>
    delete: Database.Statement<[string]>
    clear: Database.Statement<[]>
    count: Database.Statement<[], { n: number }>
    countLive: Database.Statement<[number], { n: number }>
    ids: Database.Statement<[number], { sid: string }>
    all: Database.Statement<[number], RawRow>
    byUser: Database.Statement<[string, number], RawRow>
    expired: Database.Statement<[number, number], { sid: string }>
    outboxInsert: Database.Statement<Record<string, unknown>>
    outboxAll: Database.Statement<[], RawRow & { seq: number; op: string }>
    outboxRemove: Database.Statement<[number]>
    outboxCount: Database.Statement<[], { n: number }>
  }
  #closed = false
  /** False only while the sessions table is known to be empty (nothing spilled yet): lookups can skip it. */
  #mayHoldSessions = true

  /** Opens (creating if needed) the database. Throws TS_DISK_OPEN_FAILED naming the path. */
  constructor(options: DiskTierOptions) {
    this.path = resolve(options.path)
    this.#clock = options.clock
    this.#options = options
    this.#open()
    this.#writes = new GroupCommit<DiskOp, DiskResult>({
      maxBatchSize: options.maxBatchSize,
      commit: (ops) => {
        try {
          this.#checkFile()
          return this.#transaction(ops)
        } catch (cause) {
          throw wrapError(ErrorCodes.DISK_IO, 'a write transaction on the session database failed', cause)
        }
      },
    })
  }

  /** Opens the file at `path` and prepares everything; throws TS_DISK_OPEN_FAILED naming the path. */
  #open(): void {
    try {
      prepareFile(this.path)
      this.#db = new Database(this.path, { fileMustExist: true })
      this.#inode = statSync(this.path).ino
    } catch (cause) {
      throw new TieredSessionError(
        ErrorCodes.DISK_OPEN_FAILED,
        `cannot create or open the session database at ${this.path}: ${(cause as Error).message}`,
        { cause },
      )
    }
    try {
      this.#db.pragma('journal_mode = WAL')
      this.#db.pragma(`synchronous = ${this.#options.synchronous === 'full' ? 'FULL' : 'NORMAL'}`)
      this.#db.pragma('busy_timeout = 5000')
      if (this.#options.maxBytes !== undefined) {
        const pageSize = this.#db.pragma('page_size', { simple: true }) as number
        this.#db.pragma(`max_page_count = ${Math.max(1, Math.floor(this.#options.maxBytes / pageSize))}`)
      }
      this.#migrate()
      this.#stmt = {
        get: this.#db.prepare('SELECT sid, payload, expiresAt, version, userId FROM sessions WHERE sid = ?'),
        exists: this.#db.prepare('SELECT 1 AS one FROM sessions WHERE sid = ?'),
        any: this.#db.prepare('SELECT 1 AS one FROM sessions LIMIT 1'),
        put: this.#db.prepare(
          `INSERT INTO sessions (sid, payload, expiresAt, version, userId)
           VALUES (@sid, @payload, @expiresAt, COALESCE(@version, 1), @userId)
           ON CONFLICT (sid) DO UPDATE SET
             payload = excluded.payload,
             expiresAt = excluded.expiresAt,
             userId = excluded.userId,
             version = COALESCE(@version, sessions.version + 1)
           RETURNING version`,
        ),
        delete: this.#db.prepare('DELETE FROM sessions WHERE sid = ?'),
        clear: this.#db.prepare('DELETE FROM sessions'),
        count: this.#db.prepare('SELECT count(*) AS n FROM sessions'),
        countLive: this.#db.prepare('SELECT count(*) AS n FROM sessions WHERE expiresAt > ?'),
        ids: this.#db.prepare('SELECT sid FROM sessions WHERE expiresAt > ?'),
        all: this.#db.prepare(
          'SELECT sid, payload, expiresAt, version, userId FROM sessions WHERE expiresAt > ?',
        ),
        byUser: this.#db.prepare(
          'SELECT sid, payload, expiresAt, version, userId FROM sessions WHERE userId = ? AND expiresAt > ?',
        ),
        expired: this.#db.prepare('SELECT sid FROM sessions WHERE expiresAt <= ? LIMIT ?'),
        outboxInsert: this.#db.prepare(
          `INSERT INTO outbox (sid, op, payload, expiresAt, version, userId)
           VALUES (@sid, @op, @payload, @expiresAt, @version, @userId)`,
        ),
        outboxAll: this.#db.prepare(
          'SELECT seq, sid, op, payload, expiresAt, version, userId FROM outbox ORDER BY seq',
        ),
        outboxRemove: this.#db.prepare('DELETE FROM outbox WHERE seq = ?'),
        outboxCount: this.#db.prepare('SELECT count(*) AS n FROM outbox'),
      }
      this.#mayHoldSessions = this.#stmt.any.get() !== undefined
    } catch (cause) {
      this.#db.close()
      throw new TieredSessionError(
        ErrorCodes.DISK_OPEN_FAILED,
        `cannot use the session database at ${this.path}: ${(cause as Error).message}`,
        { cause },
      )
    }
    this.#transaction = this.#db.transaction((ops: readonly DiskOp[]) => ops.map((op) => this.#apply(op)))
  }

  /**
   * If the file was removed underneath us, writes would go on into a file that no longer has a name and
   * be lost at the next start. Restore it from the copy we still have open (VACUUM INTO) and reopen it.
   */
  #checkFile(): void {
    let inode: number | undefined
    try {
      inode = statSync(this.path).ino
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (inode === this.#inode) return
    if (inode !== undefined) {
      throw new TieredSessionError(
        ErrorCodes.DISK_IO,
        `the session database at ${this.path} was replaced by another file`,
      )
    }
    const dir = dirname(this.path)
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 })
    this.#db.prepare('VACUUM INTO ?').run(this.path)
    chmodSync(this.path, 0o600)
    this.#db.close()
    this.#open()
    this.#options.onError?.(
      new TieredSessionError(
        ErrorCodes.DISK_IO,
        `the session database at ${this.path} was removed while open; it was restored from the open copy`,
      ),
    )
  }

  #migrate(): void {
    const version = this.#db.pragma('user_version', { simple: true }) as number
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version ${version} is newer than this package understands (${SCHEMA_VERSION})`)
    }
    this.#db.exec(`
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
      PRAGMA user_version = ${SCHEMA_VERSION};
    `)
  }

  /** Runs inside the write transaction. SQLite errors throw (failing the batch); logic errors are results. */
  #apply(op: DiskOp): DiskResult | Error {
    switch (op.type) {
      case 'put':
        return this.#put(op.sid, op.record)
      case 'delete':
        return this.#stmt.delete.run(op.sid).changes > 0
      case 'clear':
        return this.#stmt.clear.run().changes
      case 'outbox-set':
        this.#put(op.sid, op.record)
        return Number(this.#stmt.outboxInsert.run({ sid: op.sid, op: 'set', ...op.record }).lastInsertRowid)
      case 'outbox-delete':
        this.#stmt.delete.run(op.sid)
        return Number(
          this.#stmt.outboxInsert.run({
            sid: op.sid,
            op: 'delete',
            payload: null,
            expiresAt: 0,
            version: op.version,
            userId: null,
          }).lastInsertRowid,
        )
      case 'patch': {
        const raw = this.#stmt.get.get(op.sid)
        if (raw === undefined) return undefined
        let current: StoredRecord
        try {
          current = toRecord(raw)
        } catch (error) {
          return error as Error
        }
        if (current.expiresAt <= this.#clock.now()) return undefined
        let next: RecordInput | undefined
        try {
          next = op.patch(current)
        } catch (error) {
          return error as Error
        }
        return next === undefined ? undefined : this.#put(op.sid, next)
      }
    }
  }

  #put(sid: string, record: RecordInput): StoredRecord {
    this.#mayHoldSessions = true
    const row = this.#stmt.put.get({
      sid,
      payload: record.payload,
      expiresAt: record.expiresAt,
      version: record.version ?? null,
      userId: record.userId,
    }) as { version: number }
    return {
      payload: record.payload,
      expiresAt: record.expiresAt,
      version: row.version,
      userId: record.userId,
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the disk tier is closed')
  }

  /** Runs a read, wrapping SQLite failures as TS_DISK_IO. */
  #read<T>(what: string, fn: () => T): T {
    this.#checkOpen()
    try {
      return fn()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, `reading ${what} from the session database failed`, cause)
    }
  }

  /** Runs one synchronous change outside the group commit (cache upkeep, outbox removal); TS_DISK_IO on failure. */
  #change<T>(what: string, fn: () => T): T {
    this.#checkOpen()
    try {
      return fn()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, `changing ${what} in the session database failed`, cause)
    }
  }

  /** The live record of `sid`; throws TS_DECODE_FAILED for a corrupt row, TS_DISK_IO for an I/O failure. */
  get(sid: string): StoredRecord | undefined {
    this.#checkOpen()
    // NB: most sessions are never spilled: while nothing was ever put, there is nothing to look up.
    if (!this.#mayHoldSessions) return undefined
    const raw = this.#read('a session', () => this.#stmt.get.get(sid))
    if (raw === undefined) return undefined
    const record = toRecord(raw)
    return record.expiresAt > this.#clock.now() ? record : undefined
  }

  /** Queues an upsert; resolves to the stored record (with its new version) once committed. */
  set(sid: string, record: RecordInput, onCommit?: (stored: StoredRecord) => void): Promise<StoredRecord> {
    return this.write(
      { type: 'put', sid, record },
      onCommit as (r: DiskResult) => void,
    ) as Promise<StoredRecord>
  }

  /** Queues a delete; resolves to whether a row was there once committed. */
  delete(sid: string, onCommit?: (existed: boolean) => void): Promise<boolean> {
    return this.write({ type: 'delete', sid }, onCommit as (r: DiskResult) => void) as Promise<boolean>
  }

  /** Queues the removal of every row. */
  async clear(onCommit?: () => void): Promise<void> {
    await this.write({ type: 'clear' }, onCommit)
  }

  /** Queues any write; see {@link DiskOp}. */
  write(op: DiskOp, onCommit?: (result: DiskResult) => void): Promise<DiskResult> {
    try {
      this.#checkOpen()
    } catch (error) {
      return Promise.reject(error)
    }
    return this.#writes.enqueue(op, onCommit)
  }

  /** Commits every queued write now. */
  commitNow(): void {
    this.#writes.commitNow()
  }

  /** Writes queued and not yet committed. */
  get pendingWrites(): number {
    return this.#writes.pending
  }

  /** Write transactions run so far. */
  get transactions(): number {
    return this.#writes.batches
  }

  /** Rows in the file, expired or not. */
  count(): number {
    return this.#read('the row count', () => (this.#stmt.count.get() as { n: number }).n)
  }

  /** Live sessions. */
  countLive(): number {
    return this.#read('the row count', () => (this.#stmt.countLive.get(this.#clock.now()) as { n: number }).n)
  }

  /** Ids of live sessions. */
  ids(): string[] {
    return this.#read('session ids', () => this.#stmt.ids.all(this.#clock.now()).map((r) => r.sid))
  }

  /** Every live row; a row with columns of the wrong type is passed to `onCorrupt` and skipped. */
  rows(onCorrupt: (error: TieredSessionError) => void): DiskRow[] {
    return this.#collect(() => this.#stmt.all.all(this.#clock.now()), onCorrupt)
  }

  /** Live rows of one user. */
  rowsOfUser(userId: string, onCorrupt: (error: TieredSessionError) => void): DiskRow[] {
    return this.#collect(() => this.#stmt.byUser.all(userId, this.#clock.now()), onCorrupt)
  }

  #collect(query: () => RawRow[], onCorrupt: (error: TieredSessionError) => void): DiskRow[] {
    const out: DiskRow[] = []
    for (const raw of this.#read('sessions', query)) {
      try {
        out.push({ sid: String(raw.sid), ...toRecord(raw) })
      } catch (error) {
        onCorrupt(error as TieredSessionError)
      }
    }
    return out
  }

  /** Every write waiting for Redis, oldest first; a row that does not decode goes to `onCorrupt` and is dropped. */
  outbox(onCorrupt: (error: TieredSessionError) => void): OutboxEntry[] {
    const out: OutboxEntry[] = []
    for (const raw of this.#read('the outbox', () => this.#stmt.outboxAll.all())) {
      try {
        const op = raw.op === 'delete' ? 'delete' : 'set'
        const record =
          op === 'delete'
            ? { payload: '', expiresAt: 0, version: Number(raw.version), userId: null }
            : toRecord(raw)
        out.push({ seq: raw.seq, sid: String(raw.sid), op, record })
      } catch (error) {
        onCorrupt(error as TieredSessionError)
        this.removeFromOutbox(raw.seq)
      }
    }
    return out
  }

  /** Removes one replayed outbox entry. */
  removeFromOutbox(seq: number): void {
    this.#change('the outbox', () => this.#stmt.outboxRemove.run(seq))
  }

  /** Writes waiting for Redis. */
  outboxCount(): number {
    return this.#read('the outbox', () => (this.#stmt.outboxCount.get() as { n: number }).n)
  }

  /** Upserts rows now, in one transaction (the spiller's move down, which must be synchronous). */
  putNow(rows: ReadonlyArray<readonly [string, StoredRecord]>): void {
    this.#checkOpen()
    try {
      this.#db.transaction(() => {
        for (const [sid, record] of rows) this.#put(sid, record)
      })()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, 'writing spilled sessions failed', cause)
    }
  }

  /** Deletes one row now (dropping a cached copy that is no longer current). */
  deleteNow(sid: string): void {
    // NB: look first: a DELETE that finds nothing still costs a write transaction, and most sessions
    // (never spilled) have no row here; while nothing was ever put, not even the look is needed.
    if (!this.#mayHoldSessions) return
    this.#change('a session', () => {
      if (this.#stmt.exists.get(sid) !== undefined) this.#stmt.delete.run(sid)
    })
  }

  /** Deletes every session row now (the outbox is kept). */
  clearNow(): void {
    this.#change('sessions', () => this.#stmt.clear.run())
    this.#mayHoldSessions = false
  }

  /** Deletes at most `limit` rows expired at `now` in one transaction; returns how many. */
  deleteExpired(now: number, limit: number): number {
    this.#checkOpen()
    try {
      return this.#db.transaction(() => {
        const sids = this.#stmt.expired.all(now, limit)
        for (const { sid } of sids) this.#stmt.delete.run(sid)
        return sids.length
      })()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, 'sweeping expired sessions failed', cause)
    }
  }

  /** Commits what is queued and closes the file. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#writes.commitNow()
    this.#closed = true
    this.#db.close()
  }
}

// The disk tier: one SQLite file (WAL) of sessions with indexes on expiry and user. Reads are synchronous
// point look-ups; writes go through group commit and are acknowledged after their transaction commits.
// In shared mode it is also the spill cache (synchronous upkeep) and holds the outbox log
// (src/tiers/disk-outbox-log.ts).

import { resolve } from 'node:path'
import type Database from 'better-sqlite3'
import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import { plainPayloads } from '../at-rest/payload-sealer.js'
import type { Clock } from '../clock.js'
import { ErrorCodes, TieredSessionError, wrapError } from '../errors.js'
import type { KeepOutcome } from './cache-writes.js'
import { CacheWrites } from './cache-writes.js'
import { DiskOutboxLog } from './disk-outbox-log.js'
import type { DiskStatements, RawRow } from './disk-statements.js'
import { prepareStatements, toRecord } from './disk-statements.js'
import { DiskTouches } from './disk-touches.js'
import type { DiskOp, DiskResult } from './disk-writes.js'
import { applyOp, mayPut, putRow } from './disk-writes.js'
import { GroupCommit } from './group-commit.js'
import type { Inventory } from './inventory.js'
import { diskInventory } from './inventory.js'
import type { OutboxLog } from './outbox-log.js'
import type { BackupProgress } from './sqlite-backup.js'
import { backupSqlite } from './sqlite-backup.js'
import type { OpenedFile } from './sqlite-file.js'
import { openSqliteFile, restoreIfRemoved } from './sqlite-file.js'
import type {
  ClearOptions,
  DeferredTouches,
  DeleteOptions,
  OnCorrupt,
  RecordInput,
  SpillCache,
  StoredRecord,
  Tier,
  TierRow,
  TouchInput,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
} from './tier.js'
import { WalCheckpointer } from './wal-checkpointer.js'

/**
 * Rows up to which `count()` counts on the event loop: SQLite's count(*) reads a whole index (~10 ms for a
 * million rows on this kind of machine, ~0.5 ms for this many).
 */
const SYNC_COUNT_ROWS = 50_000

/** Options of {@link DiskTier}. */
export interface DiskTierOptions {
  readonly path: string
  readonly synchronous: 'normal' | 'full'
  readonly maxBatchSize: number
  /** Largest the database file may grow, in bytes (SQLite `max_page_count`); undefined: no limit. */
  readonly maxBytes?: number | undefined
  readonly clock: Clock
  /**
   * Sessions are kept under SHA-256 of their ids (`hashIds`): a file whose rows still have plain ids is moved
   * to hashed keys when opened; a file of hashed keys opened without it is TS_INVALID_OPTION.
   * @default false
   */
  readonly hashIds?: boolean
  /** Seals payloads at rest (`encryption`). @default no encryption */
  readonly sealer?: PayloadSealer
  /** Hears of problems the tier handled on its own (a database file removed underneath and restored). */
  readonly onError?: (error: TieredSessionError) => void
  /**
   * Shared mode: the spill cache's rows are written by the file's worker thread ({@link DiskTier.keepLater}), with
   * at most this many payload bytes waiting for it. Undefined: spills write on this connection.
   */
  readonly cacheBacklogBytes?: number | undefined
  /**
   * Up to this many rows, {@link DiskTier.count} counts them on the event loop (exact); above, the worker thread
   * does and `count()` answers with the last count (internal; tests lower it). @default SYNC_COUNT_ROWS
   */
  readonly syncCountRows?: number
}

/** SQLite-backed tier. One instance owns one connection to one file. */
export class DiskTier implements Tier, DeferredTouches, SpillCache {
  readonly kind = 'disk' as const
  readonly path: string
  /** The outbox's log in this file (shared mode). */
  readonly outboxLog: OutboxLog = new DiskOutboxLog({
    statements: () => this.#stmt,
    read: (what, fn) => this.#read(what, fn),
    change: (what, fn) => this.#change(what, fn),
    enqueue: (op, onCommit) => this.#enqueue(op, onCommit),
  })
  readonly #clock: Clock
  readonly #options: DiskTierOptions
  #file!: OpenedFile
  /** Checkpoints the file's log in a worker thread (replaced with the file when it is restored). */
  #checkpoints!: WalCheckpointer
  /** Checkpoints of the files this tier had open before the current one (a restored file starts a new count). */
  #checkpointsBefore = 0
  #stmt!: DiskStatements
  #transaction!: (ops: readonly DiskOp[]) => Array<DiskResult | Error>
  readonly #writes: GroupCommit<DiskOp, DiskResult>
  /** Spill-cache rows on their way to the worker's connection (shared mode). */
  readonly #cacheWrites: CacheWrites | undefined
  #closed = false
  /** False only while the sessions table is known to be empty (nothing spilled yet): lookups can skip it. */
  #mayHoldSessions = true
  /** Touches collected and not yet committed (promise 8). */
  readonly #touches: DiskTouches
  /** The file's rows when last counted (undefined: never), and whether the worker is counting them now. */
  #rowCount: number | undefined
  #counting = false
  /** SQLite's `data_version` of this connection when last looked at (it moves when another connection commits). */
  #dataVersion = 0
  /** The statement of {@link DiskTier.rowsAfter}, prepared on first use (on the connection opened last). */
  #pageQuery: Database.Statement<[string, number, number], RawRow> | undefined
  /** The statement of {@link DiskTier.stampsOf}, prepared on first use (on the connection opened last). */
  #stampsQuery: Database.Statement<[string], { sid: string; version: number; expiresAt: number }> | undefined

  /** Opens (creating if needed) the database. Throws TS_DISK_OPEN_FAILED naming the path. */
  constructor(options: DiskTierOptions) {
    this.path = resolve(options.path)
    this.#clock = options.clock
    this.#options = options
    this.#cacheWrites =
      options.cacheBacklogBytes === undefined
        ? undefined
        : new CacheWrites({
            worker: () => this.#checkpoints,
            sealer: options.sealer ?? plainPayloads,
            maxBacklogBytes: options.cacheBacklogBytes,
          })
    this.#open()
    this.#writes = new GroupCommit<DiskOp, DiskResult>({
      maxBatchSize: options.maxBatchSize,
      commit: (ops) => {
        try {
          this.#checkFile()
          const results = this.#transaction(ops)
          this.#checkpoints.wrote(ops.length)
          return results
        } catch (cause) {
          throw wrapError(ErrorCodes.DISK_IO, 'a write transaction on the session database failed', cause)
        }
      },
    })
    this.#touches = new DiskTouches({ writes: this.#writes, onError: options.onError })
  }

  #open(): void {
    this.#file = openSqliteFile(this.path, this.#options)
    const db = this.#file.db
    try {
      this.#stmt = prepareStatements(db, this.#options.sealer ?? plainPayloads)
    } catch (cause) {
      db.close()
      throw new TieredSessionError(
        ErrorCodes.DISK_OPEN_FAILED,
        `cannot use the session database at ${this.path}: ${(cause as Error).message}`,
        { cause },
      )
    }
    this.#mayHoldSessions = this.#stmt.any.get() !== undefined
    this.#dataVersion = this.#readDataVersion()
    this.#stampsQuery = undefined
    this.#pageQuery = undefined
    this.#transaction = db.transaction((ops: readonly DiskOp[]) => {
      if (ops.some(mayPut)) this.#mayHoldSessions = true
      const now = this.#clock.now()
      return ops.map((op) => {
        if (op.type === 'touch') this.#touches.committing(op)
        return applyOp(this.#stmt, op, now)
      })
    })
    this.#checkpoints = new WalCheckpointer({
      db,
      path: this.path,
      synchronous: this.#options.synchronous,
      holdWrites: (held) => this.#writes.hold(held),
      onError: (error) => this.#options.onError?.(error),
      maxPageCount:
        this.#options.maxBytes === undefined
          ? undefined
          : (db.pragma('max_page_count', { simple: true }) as number),
      onCacheReply: (reply) => this.#cacheWrites?.onReply(reply),
      // NB: a count or cache batch asked of a worker that no longer serves the file will not be answered.
      onCacheLost: () => {
        this.#cacheWrites?.lost()
        this.#counting = false
      },
      onCount: (rows) => {
        this.#counting = false
        if (rows >= 0) this.#rowCount = rows
      },
    })
  }

  /** A file removed underneath is restored from the open copy, reopened, and reported. */
  #checkFile(): void {
    // NB: the worker lets go of the old file first, so that closing ours removes that file's log.
    if (!restoreIfRemoved(this.#file, this.path, () => this.#checkpoints.close())) return
    this.#checkpointsBefore += this.#checkpoints.count
    this.#open()
    this.#options.onError?.(
      new TieredSessionError(
        ErrorCodes.DISK_IO,
        `the session database at ${this.path} was removed while open; it was restored from the open copy`,
      ),
    )
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

  /**
   * Runs one synchronous change outside the group commit (cache upkeep, outbox removal); `fn` returns
   * the rows it changed, and only a change that wrote something counts towards the next checkpoint.
   * TS_DISK_IO on failure.
   */
  #change(what: string, fn: () => number): void {
    this.#checkOpen()
    let changed: number
    try {
      changed = fn()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, `changing ${what} in the session database failed`, cause)
    }
    if (changed > 0) this.#checkpoints.wrote(changed)
  }

  /** Queues a write for the next group commit. */
  #enqueue(op: DiskOp, onCommit?: (result: DiskResult) => void): Promise<DiskResult> {
    try {
      this.#checkOpen()
    } catch (error) {
      return Promise.reject(error)
    }
    const dropped = this.#touches.beforeWrite(op)
    const done = this.#writes.enqueue(op, onCommit)
    if (dropped !== undefined) this.#touches.guardUntil(dropped, done)
    return done
  }

  // ---- the Tier contract ----------------------------------------------------------------------------

  /** The live record of `sid`; throws TS_DECODE_FAILED for a corrupt row, TS_DISK_IO for an I/O failure. */
  get(sid: string): StoredRecord | undefined {
    this.#checkOpen()
    // NB: a spilled row still on its way to the file (shared mode) is served from there.
    const pending = this.#cacheWrites?.peek(sid)
    if (pending !== undefined)
      return pending !== null && pending.expiresAt > this.#clock.now() ? pending : undefined
    // NB: most sessions are never spilled (shared mode): while nothing was ever put, there is nothing to look up.
    if (!this.#mayHoldSessions) return undefined
    const raw = this.#read('a session', () => this.#stmt.get.get(sid))
    if (raw === undefined) return undefined
    const record = toRecord(raw, this.#stmt.sealer)
    return record.expiresAt > this.#clock.now() ? record : undefined
  }

  /** Queues an upsert; resolves to the stored record (with its new version) once committed. */
  write(sid: string, record: RecordInput, options: WriteOptions = {}): Promise<StoredRecord> {
    const op: DiskOp = { type: 'put', sid, record, after: options.after ?? 0, fresh: options.fresh === true }
    return this.#enqueue(op, options.onCommit as (r: DiskResult) => void) as Promise<StoredRecord>
  }

  /** Runs `change` on the latest row inside the write transaction, so it never undoes a write queued before it. */
  update(
    sid: string,
    change: (current: StoredRecord) => RecordInput | undefined,
    options: UpdateOptions = {},
  ): Promise<UpdateResult> {
    const onCommit = options.onCommit
    return this.#enqueue(
      { type: 'update', sid, change },
      onCommit === undefined
        ? undefined
        : (result) => {
            const done = result as UpdateResult
            if (done.status === 'written') onCommit(done.record)
          },
    ) as Promise<UpdateResult>
  }

  /**
   * Queues a touch, acknowledged at once (promise 8); a touch of a session already queued replaces it. A touch
   * joins the group commit once its window is up (TouchInput.windowMs, counted from the session's first queued
   * touch), so the touches of a busy session cost one row update per window. The row's payload gets the new
   * cookie then. A failed transaction is reported (the touch is lost: the session may expire earlier).
   */
  touchLater(sid: string, touch: TouchInput): void {
    this.#checkOpen()
    this.#touches.add(sid, touch)
  }

  /** Commits the queued touches (with every other queued write) now. */
  commitTouches(): void {
    this.#touches.queueAll()
    this.#writes.commitNow()
  }

  /** Queues a delete; resolves to whether a row was there once committed. */
  delete(sid: string, options: DeleteOptions = {}): Promise<boolean> {
    const op: DiskOp = { type: 'delete', sid, upToVersion: options.upToVersion }
    return this.#enqueue(op, options.onCommit as (r: DiskResult) => void) as Promise<boolean>
  }

  /** Every live row; a row with columns of the wrong type is passed to `onCorrupt` and skipped. */
  rows(onCorrupt: OnCorrupt): TierRow[] {
    return this.#collect(() => this.#stmt.all.all(this.#clock.now()), onCorrupt)
  }

  /** Ids of live sessions. */
  ids(): string[] {
    return this.#read('session ids', () => this.#stmt.ids.all(this.#clock.now()).map((r) => r.sid))
  }

  /** Live sessions. */
  countLive(): number {
    return this.#read('the row count', () => (this.#stmt.countLive.get(this.#clock.now()) as { n: number }).n)
  }

  /** Live rows of one user. */
  rowsOfUser(userId: string, onCorrupt: OnCorrupt): TierRow[] {
    return this.#collect(() => this.#stmt.byUser.all(userId, this.#clock.now()), onCorrupt)
  }

  /**
   * At most `limit` live rows whose keys sort after `afterKey`, in key order (paging through the file, for an
   * export), and the key of the last row read (a corrupt one included: the next page starts after it).
   */
  rowsAfter(afterKey: string, limit: number, onCorrupt: OnCorrupt): { rows: TierRow[]; last?: string } {
    let last: string | undefined
    const rows = this.#collect(() => {
      // NB: every column, as the other listings read them (`toRecord` checks each one's type).
      this.#pageQuery ??= this.#file.db.prepare<[string, number, number], RawRow>(
        'SELECT * FROM sessions WHERE sid > ? AND expiresAt > ? ORDER BY sid LIMIT ?',
      )
      const raw = this.#pageQuery.all(afterKey, this.#clock.now(), limit)
      last = raw.length < limit ? undefined : String(raw.at(-1)?.sid)
      return raw
    }, onCorrupt)
    return last === undefined ? { rows } : { rows, last }
  }

  #collect(query: () => RawRow[], onCorrupt: OnCorrupt): TierRow[] {
    const out: TierRow[] = []
    for (const raw of this.#read('sessions', query)) {
      try {
        out.push({ sid: String(raw.sid), ...toRecord(raw, this.#stmt.sealer) })
      } catch (error) {
        onCorrupt(error as TieredSessionError)
      }
    }
    return out
  }

  /**
   * Deletes at most `limit` rows expired at `now` in one transaction; returns how many. `onRemoved` hears the
   * user of each row removed, once the transaction committed.
   */
  sweep(now: number, limit: number, onRemoved?: (userId: string | null) => void): number {
    this.#checkOpen()
    let removed: Array<{ sid: string; userId: string | null }>
    try {
      removed = this.#file.db.transaction(() => {
        // NB: a row with a touch pending is left to it (a later sweep takes it should the touch not apply), rather
        // than committing every pending touch first: up to a minute's worth, at once, on the event loop.
        const sids = this.#stmt.expired.all(now, limit).filter(({ sid }) => !this.#touches.has(sid))
        for (const { sid } of sids) this.#stmt.delete.run(sid)
        return sids
      })()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, 'sweeping expired sessions failed', cause)
    }
    if (removed.length > 0) this.#checkpoints.wrote(removed.length)
    if (onRemoved !== undefined) for (const row of removed) onRemoved(row.userId)
    return removed.length
  }

  /** Queues the removal of every session row (the outbox is kept). */
  async clear(options: ClearOptions = {}): Promise<void> {
    await this.#enqueue({ type: 'clear' }, options.onCommit)
  }

  /** Commits what is queued and closes the file. Idempotent. */
  close(): void {
    if (this.#closed) return
    this.#touches.queueAll()
    this.#writes.commitNow()
    this.#closed = true
    this.#checkpoints.close()
    this.#file.db.close()
  }

  // ---- group commit and sizes -----------------------------------------------------------------------

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

  /** Whether the log is checkpointed by the worker thread (else by SQLite on this connection), and how often it was. */
  get checkpoints(): { background: boolean; count: number } {
    return {
      background: this.#checkpoints.background,
      count: this.#checkpointsBefore + this.#checkpoints.count,
    }
  }

  /**
   * Rows in the file, expired or not. Exact while there are at most `syncCountRows` (50,000); with more, the
   * count is made by the worker thread, and this answers with the last one and asks for the next (so a large
   * file's count never blocks the event loop; it lags by one call).
   */
  count(): number {
    const known = this.#rowCount
    if (known !== undefined && known > (this.#options.syncCountRows ?? SYNC_COUNT_ROWS)) {
      if (!this.#counting) this.#counting = this.#checkpoints.requestCount()
      if (this.#counting) return known
    }
    const rows = this.#read('the row count', () => (this.#stmt.count.get() as { n: number }).n)
    this.#rowCount = rows
    return rows
  }

  // ---- the file as a whole ------------------------------------------------------------------------

  /**
   * An online, consistent copy of the file at `target` (0600, its directory made 0700 if missing), taken while
   * writes go on; queued writes and touches are committed first, so every write acknowledged before the call is
   * in it. Throws TS_BACKUP_FAILED naming the target when it cannot be written.
   */
  backup(target: string, onProgress: (progress: BackupProgress) => void): Promise<BackupProgress> {
    try {
      this.#checkOpen()
      this.commitTouches()
    } catch (error) {
      return Promise.reject(error)
    }
    return backupSqlite(this.#file.db, target, onProgress)
  }

  /**
   * True when another connection (another process, the command line tool) committed to the file since the last
   * call. Its rows may then be anything, so lookups stop assuming an empty table. Throws TS_DISK_IO.
   */
  changedElsewhere(): boolean {
    const now = this.#read('the data version', () => this.#readDataVersion())
    if (now === this.#dataVersion) return false
    this.#dataVersion = now
    this.#mayHoldSessions = true
    return true
  }

  /** What the file holds at `now` (ms), with the `top` users by session count. Throws TS_DISK_IO. */
  inventory(now: number, top: number): Inventory {
    return this.#read('the inventory', () => diskInventory(this.#file.db, now, top))
  }

  /**
   * The version and expiry of the rows of `keys` (stored keys), in one query; a key without a row is absent.
   * What tells a memory copy from a row another connection changed, without reading payloads. Throws TS_DISK_IO.
   */
  stampsOf(keys: readonly string[]): Map<string, { version: number; expiresAt: number }> {
    return this.#read('session versions', () => {
      this.#stampsQuery ??= this.#file.db.prepare<
        [string],
        { sid: string; version: number; expiresAt: number }
      >('SELECT sid, version, expiresAt FROM sessions WHERE sid IN (SELECT value FROM json_each(?))')
      const out = new Map<string, { version: number; expiresAt: number }>()
      for (const row of this.#stampsQuery.all(JSON.stringify(keys)))
        out.set(row.sid, { version: row.version, expiresAt: row.expiresAt })
      return out
    })
  }

  #readDataVersion(): number {
    return this.#file.db.pragma('data_version', { simple: true }) as number
  }

  // ---- the spill cache (shared mode) ----------------------------------------------------------------

  /** Upserts rows now, in one transaction (the spiller's move down, which must be synchronous). */
  keepNow(rows: ReadonlyArray<readonly [string, StoredRecord]>): void {
    this.#checkOpen()
    this.#mayHoldSessions = true
    try {
      this.#file.db.transaction(() => {
        for (const [sid, record] of rows) putRow(this.#stmt, sid, record, 0)
      })()
    } catch (cause) {
      throw wrapError(ErrorCodes.DISK_IO, 'writing spilled sessions failed', cause)
    }
    this.#checkpoints.wrote(rows.length)
  }

  /**
   * Spilled rows, written by the file's worker thread when it serves the file (shared mode), else now on this
   * connection. `outcome` hears whether they were written; rows beyond the worker's backlog are not cached.
   */
  keepLater(rows: ReadonlyArray<readonly [string, StoredRecord]>, outcome: KeepOutcome): void {
    this.#checkOpen()
    const cache = this.#cacheWrites
    if (cache === undefined || !this.#checkpoints.background) {
      this.keepNow(rows)
      outcome.written()
      return
    }
    this.#mayHoldSessions = true
    const sent = cache.keep(rows, {
      written: () => {
        this.#checkpoints.wrote(sent)
        outcome.written()
      },
      failed: outcome.failed,
    })
  }

  /** Resolves once the spill cache's rows handed to the worker so far were written (or failed). */
  cacheSettled(): Promise<void> {
    return this.#cacheWrites?.settled() ?? Promise.resolve()
  }

  /**
   * Deletes one row now (dropping a cached copy that is no longer current). True when the file holds no row of
   * `sid` now; false when a row still on its way got a delete after it (the worker's, later).
   */
  dropNow(sid: string): boolean {
    // NB: a row still on its way to the file is deleted after it, by the worker, in order.
    if (this.#cacheWrites?.drop(sid)) return false
    // NB: look first: a DELETE that finds nothing still costs a write transaction, and most sessions
    // (never spilled) have no row here; while nothing was ever put, not even the look is needed.
    if (!this.#mayHoldSessions) return true
    this.#change('a session', () =>
      this.#stmt.exists.get(sid) === undefined ? 0 : this.#stmt.delete.run(sid).changes,
    )
    return true
  }

  /** Deletes every session row now (the outbox is kept). */
  clearNow(): void {
    this.#cacheWrites?.waitSync()
    this.#change('sessions', () => this.#stmt.clear.run().changes)
    this.#mayHoldSessions = false
  }
}

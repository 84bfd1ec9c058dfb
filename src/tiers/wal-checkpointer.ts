// Checkpoints of one SQLite file's write-ahead log, run by a worker thread instead of inside a commit on the
// event loop. SQLite's own automatic checkpoint copies ~4 MB of log into the database and syncs it, inside the
// commit that crossed 1,000 pages: 10–20 ms during which no request is served. Here the connection of the app
// has `wal_autocheckpoint = 0`; the worker's connection (src/tiers/file-worker.ts) runs a PASSIVE
// checkpoint once about as many pages were written, or a second after the last write. The same connection
// writes the spill cache's batches in shared mode ({@link WalCheckpointer.sendCache}; src/tiers/cache-writes.ts).
//
// Writes go on while a checkpoint runs. But a checkpoint copies only what was in the log when it began, and the
// log starts over from its beginning only once all of it was copied: under a steady load, writes committed
// during every checkpoint would keep it growing. So once a checkpoint finds the log longer than HOLD_AT_FRAMES,
// the next one holds the group commit's batches back while it runs (reads and everything else go on).
// If the worker cannot run (it failed to start, died, or a checkpoint failed), the file goes back to SQLite's
// automatic checkpoints on the app's connection, and the failure is reported once.

import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type Database from 'better-sqlite3'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import { DELETE_SQL, PUT_SQL, REPLACE_SQL } from './disk-statements.js'
import { FILE_WORKER_SOURCE } from './file-worker.js'

/** About as many log pages as SQLite's own automatic checkpoint waits for (its default, 1,000 pages). */
const PAGES_PER_CHECKPOINT = 1_000
/** A transaction writes at least a few pages (the row's leaf, the indexes, the schema's header)... */
const PAGES_PER_TRANSACTION = 3
/** ...and rows of ~1 KiB share leaves: ~0.4 page per row in a large batch. */
const PAGES_PER_ROW = 0.4
/** A log with anything in it is checkpointed at the latest this long after the write that started it (ms). */
const IDLE_CHECKPOINT_MS = 1_000
/** A log this long (frames of a page each: ~16 MB) did not start over: the next checkpoint holds writes back. */
const HOLD_AT_FRAMES = 4 * PAGES_PER_CHECKPOINT
/** Writes are held back at most this long for a checkpoint that does not answer (ms). */
const MAX_HOLD_MS = 250
/** How long `close()` waits for the worker to let go of the file (ms). */
const CLOSE_WAIT_MS = 5_000
/** SQLite's default `wal_autocheckpoint`, restored when the worker cannot serve. */
const SQLITE_AUTOCHECKPOINT = 1_000

/** Options of {@link WalCheckpointer}. */
export interface WalCheckpointerOptions {
  /** The app's connection (its automatic checkpoints are turned off while the worker serves). */
  readonly db: Database.Database
  readonly path: string
  readonly synchronous: 'normal' | 'full'
  /** Holds the group commit's batches back (true) or lets them go (false). */
  readonly holdWrites: (held: boolean) => void
  /** Hears the one failure that sent the file back to checkpoints on the app's connection. */
  readonly onError: (error: TieredSessionError) => void
  /** Hears each checkpoint the worker completed: frames in the log, and how many of them are in the database. */
  readonly onCheckpoint?: (result: { log: number; checkpointed: number }) => void
  /** Where better-sqlite3 is for the worker. @default resolved from this package */
  readonly sqliteModule?: string
  /** SQLite `max_page_count` of the file (`disk.maxBytes`), which the worker's connection must respect too. */
  readonly maxPageCount?: number | undefined
  /** Hears the outcome of each batch of spill-cache writes (see {@link WalCheckpointer.sendCache}). */
  readonly onCacheReply?: (reply: CacheReply) => void
  /** Hears that the worker no longer serves the file: cache batches sent and not yet answered never will be. */
  readonly onCacheLost?: () => void
  /** Hears the rows the worker counted in the file ({@link WalCheckpointer.requestCount}); -1 when it could not. */
  readonly onCount?: (rows: number) => void
}

/** The outcome of one batch of spill-cache writes in the worker. */
export interface CacheReply {
  readonly seq: number
  /** Undefined when the batch committed; else why its transaction failed (nothing in it was written). */
  readonly failure?: string
}

/** The columns of a spill-cache row but its payload. */
interface CacheRowStamps {
  expiresAt: number
  version: number
  userId: string | null
  createdAt: number | null
}

/**
 * One spill-cache write for the worker: the row to upsert, with its payload as (sealed) text or as `length` UTF-8
 * bytes at `at` in the batch's payload buffer; or null to delete it.
 */
export type CacheOp = readonly [
  sid: string,
  row: ((CacheRowStamps & { payload: string }) | (CacheRowStamps & { at: number; length: number })) | null,
]

interface WorkerReply {
  readonly type: 'done' | 'failed' | 'cached' | 'cache-failed' | 'counted'
  readonly id: number
  readonly message?: string
  readonly log?: number
  readonly checkpointed?: number
  readonly seq?: number
  readonly rows?: number
}

/** The process's checkpoint worker (one per better-sqlite3 module path), shared by every file. */
class CheckpointWorker {
  readonly #worker: Worker
  readonly #files = new Map<number, WalCheckpointer>()
  #alive = true

  constructor(
    readonly sqliteModule: string,
    onGone: () => void,
  ) {
    this.#worker = new Worker(FILE_WORKER_SOURCE, { eval: true, workerData: { sqlite: sqliteModule } })
    this.#worker.on('message', (reply: WorkerReply) => this.#files.get(reply.id)?.onReply(reply))
    const gone = (reason: string) => {
      if (!this.#alive) return
      this.#alive = false
      onGone()
      for (const file of [...this.#files.values()]) file.fallBack(reason)
      this.#files.clear()
    }
    this.#worker.on('error', (error) => gone(error.message))
    this.#worker.on('exit', (code) => gone(`the file worker exited (code ${code})`))
    // NB: after the listeners: adding a 'message' listener refs the worker again.
    this.#worker.unref()
  }

  get alive(): boolean {
    return this.#alive
  }

  attach(
    id: number,
    file: WalCheckpointer,
    open: {
      path: string
      synchronous: string
      maxPageCount: number | undefined
      progress: SharedArrayBuffer
    },
  ): void {
    this.#files.set(id, file)
    this.#worker.postMessage({
      type: 'open',
      id,
      ...open,
      putSql: PUT_SQL,
      replaceSql: REPLACE_SQL,
      deleteSql: DELETE_SQL,
    })
  }

  checkpoint(id: number): void {
    this.#worker.postMessage({ type: 'checkpoint', id })
  }

  count(id: number): void {
    this.#worker.postMessage({ type: 'count', id })
  }

  cache(id: number, seq: number, ops: readonly CacheOp[], payloads: Buffer | undefined): void {
    this.#worker.postMessage({ type: 'cache', id, seq, ops, payloads })
  }

  /** Closes the worker's connection to the file, and waits until it did. */
  detach(id: number): void {
    if (!this.#files.delete(id) || !this.#alive) return
    const signal = new SharedArrayBuffer(4)
    this.#worker.postMessage({ type: 'close', id, signal })
    Atomics.wait(new Int32Array(signal), 0, 0, CLOSE_WAIT_MS)
  }
}

const workers = new Map<string, CheckpointWorker>()
let nextId = 1

function workerFor(sqliteModule: string): CheckpointWorker {
  let worker = workers.get(sqliteModule)
  if (worker === undefined || !worker.alive) {
    worker = new CheckpointWorker(sqliteModule, () => {
      if (workers.get(sqliteModule) === worker) workers.delete(sqliteModule)
    })
    workers.set(sqliteModule, worker)
  }
  return worker
}

let defaultModule: string | undefined

/** Checkpoints of one file's log, in the background. */
export class WalCheckpointer {
  readonly #options: WalCheckpointerOptions
  readonly #id = nextId++
  #worker: CheckpointWorker | undefined
  /** Log pages written since the last checkpoint began (an estimate). */
  #pages = 0
  #inFlight = false
  /** The last checkpoint found a log that had not started over for a while: the next one holds writes back. */
  #holdNext = false
  #idleTimer: NodeJS.Timeout | undefined
  #holdTimer: NodeJS.Timeout | undefined
  #count = 0
  /** [0]: the seq of the last spill-cache batch the worker finished (written by the worker); [1]: 1 once closing. */
  readonly #cacheProgress = new Int32Array(new SharedArrayBuffer(8))

  constructor(options: WalCheckpointerOptions) {
    this.#options = options
    try {
      defaultModule ??= createRequire(import.meta.url).resolve('better-sqlite3')
      this.#worker = workerFor(options.sqliteModule ?? defaultModule)
      options.db.pragma('wal_autocheckpoint = 0')
      this.#worker.attach(this.#id, this, {
        path: options.path,
        synchronous: options.synchronous.toUpperCase(),
        maxPageCount: options.maxPageCount,
        progress: this.#cacheProgress.buffer as SharedArrayBuffer,
      })
    } catch (error) {
      this.fallBack((error as Error).message)
    }
  }

  /**
   * Sends a batch of spill-cache writes (seq: 1, 2, ... in order) to be written by the worker's connection, in one
   * transaction, after every batch sent before it; its outcome comes to `onCacheReply`. False when no worker
   * serves the file (the caller writes on the app's connection instead).
   */
  sendCache(seq: number, ops: readonly CacheOp[], payloads?: Buffer | undefined): boolean {
    if (this.#worker === undefined) return false
    this.#worker.cache(this.#id, seq, ops, payloads)
    return true
  }

  /** Asks the worker to count the file's rows (the answer goes to `onCount`); false when no worker serves the file. */
  requestCount(): boolean {
    if (this.#worker === undefined) return false
    this.#worker.count(this.#id)
    return true
  }

  /** Blocks until the worker finished the cache batch `seq` (true), or `timeoutMs` passed or no worker serves (false). */
  waitCache(seq: number, timeoutMs: number): boolean {
    const deadline = performance.now() + timeoutMs
    for (;;) {
      const done = Atomics.load(this.#cacheProgress, 0)
      if (done >= seq) return true
      const left = deadline - performance.now()
      if (this.#worker === undefined || left <= 0) return false
      Atomics.wait(this.#cacheProgress, 0, done, left)
    }
  }

  /** True while the worker checkpoints this file; false after a fall back to SQLite's automatic checkpoints. */
  get background(): boolean {
    return this.#worker !== undefined
  }

  /** Checkpoints the worker completed for this file. */
  get count(): number {
    return this.#count
  }

  /** After a committed transaction of `rows` rows on the app's connection. */
  wrote(rows: number): void {
    if (this.#worker === undefined) return
    this.#pages += PAGES_PER_TRANSACTION + rows * PAGES_PER_ROW
    if (this.#inFlight) return
    if (this.#pages >= PAGES_PER_CHECKPOINT) this.#request()
    else this.#idleTimer ??= setTimeout(() => this.#request(), IDLE_CHECKPOINT_MS).unref()
  }

  #request(): void {
    if (this.#worker === undefined || this.#inFlight) return
    this.#clearIdle()
    this.#inFlight = true
    this.#pages = 0
    if (this.#holdNext) {
      this.#options.holdWrites(true)
      // NB: not unref'd: writes held back are promises only, and nothing else would keep the process alive.
      this.#holdTimer = setTimeout(() => this.#release(), MAX_HOLD_MS)
    }
    this.#worker.checkpoint(this.#id)
  }

  #release(): void {
    if (this.#holdTimer === undefined) return
    clearTimeout(this.#holdTimer)
    this.#holdTimer = undefined
    this.#options.holdWrites(false)
  }

  #clearIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer)
    this.#idleTimer = undefined
  }

  /** A reply of the worker about this file. */
  onReply(reply: WorkerReply): void {
    if (reply.type === 'counted') {
      this.#options.onCount?.(reply.rows ?? -1)
      return
    }
    if (reply.type === 'cached' || reply.type === 'cache-failed') {
      const seq = reply.seq ?? 0
      this.#options.onCacheReply?.(
        reply.type === 'cached' ? { seq } : { seq, failure: reply.message ?? 'unknown failure' },
      )
      return
    }
    if (reply.type === 'failed') {
      this.fallBack(reply.message ?? 'unknown failure')
      return
    }
    this.#inFlight = false
    this.#count++
    this.#release()
    this.#holdNext = (reply.log ?? 0) >= HOLD_AT_FRAMES
    this.#options.onCheckpoint?.({ log: reply.log ?? 0, checkpointed: reply.checkpointed ?? 0 })
    // NB: rows written outside the group commit (a spill) while it ran: their pages still wait.
    if (this.#pages >= PAGES_PER_CHECKPOINT) this.#request()
    else if (this.#pages > 0)
      this.#idleTimer ??= setTimeout(() => this.#request(), IDLE_CHECKPOINT_MS).unref()
  }

  /** Back to SQLite's automatic checkpoints on the app's connection; reported once. */
  fallBack(reason: string): void {
    const worker = this.#worker
    this.#worker = undefined
    this.#inFlight = false
    this.#clearIdle()
    this.#release()
    worker?.detach(this.#id)
    this.#options.onCacheLost?.()
    try {
      this.#options.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT}`)
    } catch {
      // NB: the connection is closed already: nothing left to checkpoint from it.
    }
    // NB: later, never from inside the constructor (the tier is not set up yet).
    const error = new TieredSessionError(
      ErrorCodes.DISK_IO,
      `checkpoints of ${this.#options.path} run on the app's connection from now on: ${reason}`,
    )
    queueMicrotask(() => this.#options.onError(error))
  }

  /** Lets go of the file (synchronously: the app's connection may close last, and remove the log). */
  close(): void {
    const worker = this.#worker
    this.#worker = undefined
    this.#clearIdle()
    this.#release()
    // NB: cache batches still queued are skipped: closing does not wait for a cache to be written.
    Atomics.store(this.#cacheProgress, 1, 1)
    worker?.detach(this.#id)
    // NB: answers to cache batches of a closed connection are not routed to this file any more.
    this.#options.onCacheLost?.()
  }
}

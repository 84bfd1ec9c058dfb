// The spill cache's writes in shared mode, made by the file's worker thread (src/tiers/file-worker.ts) instead of
// on the event loop. A spill hands its rows over and goes on at once; until the worker has written them, they are
// served from here (`peek`), so a spilled session is never absent from the disk tier's view. The cache is only a
// cache (Redis has every session): when the worker falls behind by more than `maxBacklogBytes` of payload, the
// rows that do not fit are not cached, and a read of one of them asks Redis.

import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import type { MemoryRecord } from './memory-tier.js'
import type { StoredRecord } from './tier.js'
import type { CacheOp, CacheReply } from './wal-checkpointer.js'

/** Where the batches go: the file's worker (see WalCheckpointer). */
export interface CacheWorker {
  /** Sends batch `seq` (raw ops' payloads in `payloads`); false when no worker serves the file. */
  sendCache(seq: number, ops: readonly CacheOp[], payloads?: Buffer | undefined): boolean
  /** Blocks until batch `seq` is done; false after `timeoutMs` or without a worker. */
  waitCache(seq: number, timeoutMs: number): boolean
}

/** Hears how one batch of kept rows ended. */
export interface KeepOutcome {
  /** The rows are in the file. */
  readonly written: () => void
  /** The batch's transaction failed (a full or read-only disk): none of its rows is in the file. */
  readonly failed: (message: string) => void
}

/** Options of {@link CacheWrites}. */
export interface CacheWritesOptions {
  readonly worker: () => CacheWorker
  readonly sealer: PayloadSealer
  /** Most payload bytes waiting for the worker at once (rows beyond are not cached). */
  readonly maxBacklogBytes: number
}

/** How long a synchronous wait for the worker lasts at most, in ms (the worker's own busy timeout is 5 s). */
const WAIT_MS = 10_000

/** A batch ready to send: its ops, the copies served until it is written, and the payload bytes of raw ops. */
interface Prepared {
  readonly ops: CacheOp[]
  readonly copies: StoredRecord[]
  readonly bytes: Buffer | undefined
}

/** A spilled record on its way to the file, its payload decoded from the batch's bytes when read. */
class PendingCopy implements StoredRecord {
  constructor(
    readonly bytesOf: Buffer,
    readonly at: number,
    readonly length: number,
    readonly expiresAt: number,
    readonly version: number,
    readonly userId: string | null,
    readonly createdAt: number | undefined,
  ) {}

  get payload(): string {
    return this.bytesOf.toString('utf8', this.at, this.at + this.length)
  }
}

interface Batch {
  readonly ops: readonly CacheOp[]
  readonly bytes: number
  readonly outcome: KeepOutcome | undefined
}

/** Spill-cache writes on their way to the worker, in order, and what they will leave in the file. */
export class CacheWrites {
  readonly #options: CacheWritesOptions
  /** The last batch sent. */
  #seq = 0
  /** Batches sent and not yet answered. */
  readonly #batches = new Map<number, Batch>()
  /** Per session, what the latest batch sent for it leaves in the file: its record, or null (deleted). */
  readonly #pending = new Map<string, { readonly seq: number; readonly record: StoredRecord | null }>()
  #backlogBytes = 0
  #settledWaiters: Array<{ readonly seq: number; readonly resolve: () => void }> = []

  constructor(options: CacheWritesOptions) {
    this.#options = options
  }

  /**
   * Sends as many of `rows` as the backlog has room for, in one batch; returns how many were sent (0: none, and
   * no worker serves the file, or it is too far behind).
   */
  keep(rows: ReadonlyArray<readonly [string, MemoryRecord | StoredRecord]>, outcome?: KeepOutcome): number {
    const room = this.#options.maxBacklogBytes - this.#backlogBytes
    let count = 0
    let bytes = 0
    for (const [, record] of rows) {
      const size = 'bytes' in record ? record.bytes : Buffer.byteLength(record.payload)
      // NB: with nothing waiting, one row goes whatever its size (a budget smaller than a session still caches).
      if (bytes + size > room && this.#backlogBytes + bytes > 0) break
      bytes += size
      count++
    }
    if (count === 0) return 0
    const kept = rows.slice(0, count)
    // NB: payloads go as bytes when the memory tier can copy them out and nothing is sealed: no string per row is
    // made on the event loop (the worker decodes them).
    const raw = !this.#options.sealer.encrypting && kept.every(([, record]) => 'copyPayload' in record)
    const batch = raw
      ? this.#rawBatch(kept as ReadonlyArray<readonly [string, MemoryRecord]>, bytes)
      : this.#textBatch(kept)
    if (!this.#send(batch.ops, bytes, outcome, batch.bytes)) return 0
    for (let i = 0; i < count; i++)
      this.#pending.set((kept[i] as readonly [string, StoredRecord])[0], {
        seq: this.#seq,
        record: batch.copies[i] as StoredRecord,
      })
    return count
  }

  /**
   * Rows whose payloads are copied, as UTF-8 bytes, into one buffer sent with the batch (and kept here, for the
   * copies served meanwhile). Plain copies: a record the spiller hands over is the memory tier's own, unreadable
   * once it left memory.
   */
  #rawBatch(rows: ReadonlyArray<readonly [string, MemoryRecord]>, total: number): Prepared {
    const buffer = Buffer.allocUnsafeSlow(total)
    const ops: CacheOp[] = []
    const copies: StoredRecord[] = []
    let at = 0
    for (const [sid, record] of rows) {
      const length = record.bytes
      record.copyPayload?.(buffer, at)
      const { expiresAt, version, userId, createdAt } = record
      copies.push(new PendingCopy(buffer, at, length, expiresAt, version, userId, createdAt))
      ops.push([sid, { at, length, expiresAt, version, userId, createdAt: createdAt ?? null }])
      at += length
    }
    return { ops, copies, bytes: buffer }
  }

  /** Rows whose payloads go as (sealed) text. */
  #textBatch(rows: ReadonlyArray<readonly [string, StoredRecord]>): Prepared {
    const sealer = this.#options.sealer
    const ops: CacheOp[] = []
    const copies: StoredRecord[] = []
    for (const [sid, record] of rows) {
      const { payload, expiresAt, version, userId, createdAt } = record
      copies.push({ payload, expiresAt, version, userId, createdAt })
      ops.push([
        sid,
        { payload: sealer.seal(sid, payload), expiresAt, version, userId, createdAt: createdAt ?? null },
      ])
    }
    return { ops, copies, bytes: undefined }
  }

  /** When a row of `sid` is on its way: sends its delete after it and returns true; false otherwise. */
  drop(sid: string): boolean {
    if (!this.#pending.has(sid) || !this.#send([[sid, null]], 0, undefined)) return false
    this.#pending.set(sid, { seq: this.#seq, record: null })
    return true
  }

  /** What the file will hold for `sid` once the worker is done: a record, null (no row), or undefined (ask the file). */
  peek(sid: string): StoredRecord | null | undefined {
    return this.#pending.get(sid)?.record
  }

  #send(
    ops: readonly CacheOp[],
    bytes: number,
    outcome: KeepOutcome | undefined,
    payloads?: Buffer | undefined,
  ): boolean {
    const seq = this.#seq + 1
    if (!this.#options.worker().sendCache(seq, ops, payloads)) return false
    this.#seq = seq
    this.#batches.set(seq, { ops, bytes, outcome })
    this.#backlogBytes += bytes
    return true
  }

  /** The worker's answer about one batch. */
  onReply(reply: CacheReply): void {
    const batch = this.#batches.get(reply.seq)
    if (batch === undefined) return
    this.#batches.delete(reply.seq)
    this.#backlogBytes -= batch.bytes
    for (const [sid] of batch.ops) if (this.#pending.get(sid)?.seq === reply.seq) this.#pending.delete(sid)
    if (reply.failure === undefined) batch.outcome?.written()
    else batch.outcome?.failed(reply.failure)
    this.#wake()
  }

  /** The worker no longer serves the file: what was sent and not answered never will be. */
  lost(): void {
    this.#batches.clear()
    this.#pending.clear()
    this.#backlogBytes = 0
    this.#wake(Number.POSITIVE_INFINITY)
  }

  /** Resolves once every batch sent so far was answered (`flush()`). */
  settled(): Promise<void> {
    if (this.#batches.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.#settledWaiters.push({ seq: this.#seq, resolve }))
  }

  /**
   * Blocks until the worker has written every batch sent so far (before the app's connection changes the rows
   * itself: a clear). Their answers still come as messages; what they wrote is in the file from now on.
   */
  waitSync(): void {
    if (this.#batches.size === 0) return
    this.#options.worker().waitCache(this.#seq, WAIT_MS)
    this.#pending.clear()
  }

  #wake(answered = this.#answered()): void {
    if (this.#settledWaiters.length === 0) return
    const waiting = this.#settledWaiters
    this.#settledWaiters = []
    for (const waiter of waiting) {
      if (waiter.seq <= answered) waiter.resolve()
      else this.#settledWaiters.push(waiter)
    }
  }

  /** The highest seq up to which every batch was answered. */
  #answered(): number {
    let lowest = this.#seq + 1
    for (const seq of this.#batches.keys()) lowest = Math.min(lowest, seq)
    return lowest - 1
  }
}

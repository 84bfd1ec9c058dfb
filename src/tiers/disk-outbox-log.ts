// The outbox's log in the disk tier's file (shared mode): writes waiting for Redis, appended through the group
// commit (with the session's local copy, in the same transaction), read oldest first, and removed: every
// store's entries on the file, since several processes may share it.

import type { TieredSessionError } from '../errors.js'
import type { DiskStatements } from './disk-statements.js'
import type { DiskOp, DiskResult } from './disk-writes.js'
import { toOutboxEntry } from './disk-writes.js'
import type { OutboxEntry, OutboxLog } from './outbox-log.js'
import type { OnCorrupt, StoredRecord } from './tier.js'

/** What the log needs of the disk tier that holds it. */
export interface DiskAccess {
  /** The file's prepared statements (new ones after the file was restored). */
  statements(): DiskStatements
  /** Runs a read (TS_DISK_IO on failure; TS_STORE_CLOSED once closed). */
  read<T>(what: string, fn: () => T): T
  /** Runs one change outside the group commit; `fn` returns the rows it changed (TS_DISK_IO on failure). */
  change(what: string, fn: () => number): void
  /** Queues a write for the next group commit. */
  enqueue(op: DiskOp, onCommit?: (result: DiskResult) => void): Promise<DiskResult>
}

/** The outbox log of one disk tier. */
export class DiskOutboxLog implements OutboxLog {
  readonly #disk: DiskAccess

  constructor(disk: DiskAccess) {
    this.#disk = disk
  }

  /** Queues a write for replay, storing it as the session's local copy too; resolves to its seq. */
  appendWrite(sid: string, record: StoredRecord, onCommit: (seq: number) => void): Promise<number> {
    const op: DiskOp = { type: 'outbox-set', sid, record }
    return this.#disk.enqueue(op, onCommit as (r: DiskResult) => void) as Promise<number>
  }

  /** Queues a destroy for replay, dropping the local copy; resolves to its seq. */
  appendDelete(sid: string, version: number, onCommit: (seq: number) => void): Promise<number> {
    const op: DiskOp = { type: 'outbox-delete', sid, version }
    return this.#disk.enqueue(op, onCommit as (r: DiskResult) => void) as Promise<number>
  }

  /** Every write waiting for Redis, oldest first; a row that does not decode goes to `onCorrupt` and is dropped. */
  entries(onCorrupt: OnCorrupt): OutboxEntry[] {
    const stmt = this.#disk.statements()
    const out: OutboxEntry[] = []
    for (const raw of this.#disk.read('the outbox', () => stmt.outboxAll.all())) {
      try {
        out.push(toOutboxEntry(raw, stmt.sealer))
      } catch (error) {
        onCorrupt(error as TieredSessionError)
        this.remove(raw.seq)
      }
    }
    return out
  }

  /** Removes one replayed outbox entry. */
  remove(seq: number): void {
    this.#disk.change('the outbox', () => this.#disk.statements().outboxRemove.run(seq).changes)
  }

  /** Removes the outbox entries of `sid` up to `upToVersion` (every store's on the file). */
  removeSession(sid: string, upToVersion: number): void {
    const stmt = this.#disk.statements()
    // NB: looked up first: a live destroy asks on every call, and a write transaction (even one that deletes
    // nothing) would fail on a read-only disk.
    if (this.#disk.read('the outbox', () => stmt.outboxHasSession.get(sid, upToVersion)) === undefined) return
    this.#disk.change('the outbox', () => stmt.outboxRemoveSession.run(sid, upToVersion).changes)
  }

  /** Removes every outbox entry (every store's on the file). */
  removeAll(): void {
    this.#disk.change('the outbox', () => this.#disk.statements().outboxRemoveAll.run().changes)
  }

  /** The latest expiry of the outbox writes of `sid` (every store's on the file); undefined for none. */
  latestExpiry(sid: string): number | undefined {
    const row = this.#disk.read('the outbox', () => this.#disk.statements().outboxLatestExpiry.get(sid))
    return typeof row?.e === 'number' ? row.e : undefined
  }

  /** Whether the outbox still holds entry `seq` (another store on the file may have removed it). */
  has(seq: number): boolean {
    return this.#disk.read('the outbox', () => this.#disk.statements().outboxHas.get(seq)) !== undefined
  }

  /** Writes waiting for Redis. */
  size(): number {
    return this.#disk.read('the outbox', () => this.#disk.statements().outboxCount.get()?.n ?? 0)
  }
}

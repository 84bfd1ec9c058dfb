// The outbox's durable log as the disk tier keeps it (shared mode): what an entry is, and what the outbox
// (src/outbox.ts) asks of the log.

import type { OnCorrupt, StoredRecord } from './tier.js'

/** A write waiting for Redis. */
export interface OutboxEntry {
  readonly seq: number
  readonly sid: string
  readonly op: 'set' | 'delete'
  /** For 'set': the record to write. For 'delete': only `version` matters. */
  readonly record: StoredRecord
}

/** Where the outbox keeps its entries durably (the disk tier). */
export interface OutboxLog {
  /** Queues a write for replay (stored as the session's local copy too); resolves to its seq once committed. */
  appendWrite(sid: string, record: StoredRecord, onCommit: (seq: number) => void): Promise<number>
  /** Queues a destroy for replay (dropping the local copy); resolves to its seq once committed. */
  appendDelete(sid: string, version: number, onCommit: (seq: number) => void): Promise<number>
  /** Every entry, oldest first; one that does not decode goes to `onCorrupt` and is dropped. */
  entries(onCorrupt: OnCorrupt): OutboxEntry[]
  /** Removes one entry (replayed or superseded). */
  remove(seq: number): void
  /** Removes the entries of `sid` up to `upToVersion` (every store's on the file). */
  removeSession(sid: string, upToVersion: number): void
  /** Removes every entry (every store's on the file). */
  removeAll(): void
  /** The latest expiry (ms) of the writes of `sid` waiting (every store's on the file); undefined for none. */
  latestExpiry(sid: string): number | undefined
  /** Whether entry `seq` is still there (another store on the same file may have removed it). */
  has(seq: number): boolean
  /** Entries waiting. */
  size(): number
}

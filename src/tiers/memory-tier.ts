// The memory tier: an LRU of serialized sessions bounded by exact payload bytes (lru-cache `maxSize`). It stores
// only the stored record (and its size); which copy is verified is coherence's business, not the tier's.

import { LRUCache } from 'lru-cache'
import type { Clock } from '../clock.js'
import { payloadBytes } from '../codec.js'
import type {
  ClearOptions,
  DeleteOptions,
  RecordInput,
  StoredRecord,
  Tier,
  TierRow,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
} from './tier.js'

/** A record in memory, with its exact payload size. */
export interface MemoryRecord extends StoredRecord {
  readonly bytes: number
}

/** Options of {@link MemoryTier}. */
export interface MemoryTierOptions {
  /** Hard cap of payload bytes; lru-cache evicts beyond it even if the spiller is late. */
  readonly maxBytes: number
  readonly clock: Clock
  /** Hears of a record `get` found expired (and dropped); the sweep's drops are not reported. */
  readonly onExpired?: (sid: string, record: MemoryRecord) => void
}

/** In-process LRU of serialized sessions. Stores strings, so a caller can never mutate a stored copy. */
export class MemoryTier implements Tier {
  readonly kind = 'memory' as const
  readonly maxBytes: number
  readonly #clock: Clock
  readonly #lru: LRUCache<string, MemoryRecord>
  readonly #onExpired: ((sid: string, record: MemoryRecord) => void) | undefined

  constructor(options: MemoryTierOptions) {
    this.maxBytes = options.maxBytes
    this.#clock = options.clock
    this.#onExpired = options.onExpired
    this.#lru = new LRUCache<string, MemoryRecord>({
      maxSize: options.maxBytes,
      sizeCalculation: (record) => Math.max(1, record.bytes),
    })
  }

  /** Payload bytes held now. */
  get bytes(): number {
    return this.#lru.calculatedSize
  }

  /** Sessions held now. */
  get entries(): number {
    return this.#lru.size
  }

  /** The live record, marking it most recently used; an expired one is dropped and missed. */
  get(sid: string): MemoryRecord | undefined {
    const record = this.#lru.get(sid)
    if (record === undefined) return undefined
    if (record.expiresAt <= this.#clock.now()) {
      this.#lru.delete(sid)
      this.#onExpired?.(sid, record)
      return undefined
    }
    return record
  }

  /** The record, live or not, without touching recency. */
  peek(sid: string): MemoryRecord | undefined {
    return this.#lru.peek(sid)
  }

  /** Stores a record now; without `version` it gets one more than the copy held (and than `after`). */
  write(sid: string, input: RecordInput, options: WriteOptions = {}): MemoryRecord {
    const version = input.version ?? Math.max(this.#lru.peek(sid)?.version ?? 0, options.after ?? 0) + 1
    const record: MemoryRecord = {
      payload: input.payload,
      expiresAt: input.expiresAt,
      version,
      userId: input.userId,
      createdAt: input.createdAt,
      bytes: payloadBytes(input.payload),
    }
    this.#lru.set(sid, record)
    options.onCommit?.(record)
    return record
  }

  update(
    sid: string,
    change: (current: StoredRecord) => RecordInput | undefined,
    options: UpdateOptions = {},
  ): UpdateResult {
    const current = this.get(sid)
    if (current === undefined) return { status: 'missing' }
    const next = change(current)
    if (next === undefined) return { status: 'unchanged' }
    // NB: an update always raises the version, whatever `change` returned.
    return { status: 'written', record: this.write(sid, { ...next, version: undefined }, options) }
  }

  delete(sid: string, options: DeleteOptions = {}): boolean {
    const record = this.#lru.peek(sid)
    const { upToVersion } = options
    const existed =
      record !== undefined &&
      (upToVersion === undefined || record.version <= upToVersion) &&
      this.#lru.delete(sid)
    options.onCommit?.(existed)
    return existed
  }

  #live(filter?: (record: MemoryRecord) => boolean): TierRow[] {
    const now = this.#clock.now()
    const out: TierRow[] = []
    for (const [sid, record] of this.#lru.entries()) {
      if (record.expiresAt > now && (filter === undefined || filter(record))) {
        out.push({
          sid,
          payload: record.payload,
          expiresAt: record.expiresAt,
          version: record.version,
          userId: record.userId,
          createdAt: record.createdAt,
        })
      }
    }
    return out
  }

  /** Every live record (memory holds decoded-clean records only: nothing is ever corrupt here). */
  rows(): TierRow[] {
    return this.#live()
  }

  ids(): string[] {
    return this.#live().map((row) => row.sid)
  }

  countLive(): number {
    return this.#live().length
  }

  rowsOfUser(userId: string): TierRow[] {
    return this.#live((record) => record.userId === userId)
  }

  /** Drops at most `limit` records expired at `now`; returns how many. */
  sweep(now: number, limit = Number.POSITIVE_INFINITY): number {
    const dead: string[] = []
    for (const [sid, record] of this.#lru.entries()) {
      if (dead.length >= limit) break
      if (record.expiresAt <= now) dead.push(sid)
    }
    for (const sid of dead) this.#lru.delete(sid)
    return dead.length
  }

  clear(options: ClearOptions = {}): void {
    this.#lru.clear()
    options.onCommit?.()
  }

  close(): void {
    this.#lru.clear()
  }

  /** Session ids from least to most recently used. */
  *leastRecentlyUsed(): IterableIterator<string> {
    yield* this.#lru.rkeys()
  }
}

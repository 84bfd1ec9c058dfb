// The memory tier: an LRU of serialized sessions bounded by exact payload bytes (lru-cache `maxSize`).

import { LRUCache } from 'lru-cache'
import type { Clock } from '../clock.js'
import { payloadBytes } from '../codec.js'
import type { RecordInput, StoredRecord, Tier } from './tier.js'

/** A record in memory, with its exact payload size. */
export interface MemoryRecord extends StoredRecord {
  readonly bytes: number
  /** When the record was last known current (shared mode: checked against Redis), ms. */
  readonly verifiedAt: number
  /** The coherence epoch it was verified in (shared mode: bumped when invalidations may have been missed). */
  readonly epoch: number
}

/** Options of {@link MemoryTier}. */
export interface MemoryTierOptions {
  /** Hard cap of payload bytes; lru-cache evicts beyond it even if the spiller is late. */
  readonly maxBytes: number
  readonly clock: Clock
}

/** In-process LRU of serialized sessions. Stores strings, so a caller can never mutate a stored copy. */
export class MemoryTier implements Tier {
  readonly kind = 'memory' as const
  readonly maxBytes: number
  readonly #clock: Clock
  readonly #lru: LRUCache<string, MemoryRecord>

  constructor(options: MemoryTierOptions) {
    this.maxBytes = options.maxBytes
    this.#clock = options.clock
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
      return undefined
    }
    return record
  }

  /** The record without touching recency or expiry. */
  peek(sid: string): MemoryRecord | undefined {
    return this.#lru.peek(sid)
  }

  set(
    sid: string,
    input: RecordInput,
    verified?: { readonly at: number; readonly epoch: number },
  ): MemoryRecord {
    const record: MemoryRecord = {
      payload: input.payload,
      expiresAt: input.expiresAt,
      version: input.version ?? (this.#lru.peek(sid)?.version ?? 0) + 1,
      userId: input.userId,
      bytes: payloadBytes(input.payload),
      verifiedAt: verified?.at ?? this.#clock.now(),
      epoch: verified?.epoch ?? 0,
    }
    this.#lru.set(sid, record)
    return record
  }

  delete(sid: string): boolean {
    return this.#lru.delete(sid)
  }

  clear(): void {
    this.#lru.clear()
  }

  close(): void {
    this.#lru.clear()
  }

  /** Session ids from least to most recently used. */
  *leastRecentlyUsed(): IterableIterator<string> {
    yield* this.#lru.rkeys()
  }

  /** Drops every record expired at `now`; returns how many. */
  purgeExpired(now: number): number {
    const dead: string[] = []
    for (const [sid, record] of this.#lru.entries()) if (record.expiresAt <= now) dead.push(sid)
    for (const sid of dead) this.#lru.delete(sid)
    return dead.length
  }
}

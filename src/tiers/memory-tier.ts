// The memory tier: an LRU of serialized sessions bounded by exact payload bytes (lru-cache `maxSize`). It stores
// only the stored record (and its size); which copy is verified is coherence's business, not the tier's. The
// payload texts live outside the V8 heap, in a PayloadSlab; the heap holds each record's metadata.

import { LRUCache } from 'lru-cache'
import type { Clock } from '../clock.js'
import { payloadBytes } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import { PayloadSlab } from './payload-slab.js'
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

/** What the memory tier knows of a record without decoding its payload. */
export interface RecordMeta {
  readonly expiresAt: number
  readonly version: number
  readonly userId: string | null
  readonly createdAt: number | undefined
  /** UTF-8 bytes of the payload. */
  readonly bytes: number
  /**
   * Shared mode: true once the spill cache is known to hold no row of this session (set by
   * {@link MemoryTier.markNoCacheRow} after a write dropped it). A record spilled leaves memory in the same step,
   * so while it is held no row can appear; false (unknown) for every record written otherwise.
   */
  readonly noCacheRow: boolean
}

/** A record in memory, with its exact payload size. */
export interface MemoryRecord extends StoredRecord {
  /** UTF-8 bytes of the payload. */
  readonly bytes: number
  /** The records the spiller hands over: copies the payload's `bytes` into `target` at `at`, making no string. */
  readonly copyPayload?: (target: Buffer, at: number) => void
}

/**
 * What the LRU holds for one session: metadata on the heap, the payload in the slab. Internal: callers get a
 * {@link MemoryCopy}. The spiller reads `payload` synchronously, before the record leaves memory; read after
 * that it throws TS_DECODE_FAILED, never another session's bytes.
 */
class HeldRecord implements MemoryRecord {
  readonly expiresAt: number
  readonly version: number
  readonly userId: string | null
  readonly createdAt: number | undefined
  readonly bytes: number
  noCacheRow = false
  readonly #slab: PayloadSlab
  /** First block of the payload in the slab; -1 once released. */
  #head: number

  constructor(slab: PayloadSlab, input: RecordInput, version: number, bytes: number) {
    this.expiresAt = input.expiresAt
    this.version = version
    this.userId = input.userId
    this.createdAt = input.createdAt
    this.bytes = bytes
    this.#slab = slab
    this.#head = slab.store(input.payload, bytes)
  }

  get payload(): string {
    if (this.#head < 0)
      throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a memory record was read after it left memory')
    return this.#slab.read(this.#head, this.bytes)
  }

  /** Copies the payload's UTF-8 bytes (`bytes` of them) into `target` at `at`, without making a string. */
  copyPayload(target: Buffer, at: number): void {
    if (this.#head < 0)
      throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a memory record was read after it left memory')
    this.#slab.copyOut(this.#head, this.bytes, target, at)
  }

  /** Gives the payload's blocks back to the slab. Idempotent. */
  release(): void {
    if (this.#head < 0) return
    this.#slab.free(this.#head, this.bytes)
    this.#head = -1
  }
}

/**
 * A copy of a record in memory as get(), peek() and write() hand it out: plain data (its payload a string of its
 * own, so it stays readable and spreadable after the session left memory), and the identity of the record it
 * copies: every copy of one stored record is the same object to {@link recordIdentity} (coherence keys on it).
 */
class MemoryCopy implements MemoryRecord {
  readonly payload: string
  readonly expiresAt: number
  readonly version: number
  readonly userId: string | null
  readonly createdAt: number | undefined
  readonly bytes: number
  readonly #held: HeldRecord

  constructor(held: HeldRecord, payload: string) {
    this.payload = payload
    this.expiresAt = held.expiresAt
    this.version = held.version
    this.userId = held.userId
    this.createdAt = held.createdAt
    this.bytes = held.bytes
    this.#held = held
  }

  static identityOf(record: object): object {
    return #held in record ? record.#held : record
  }
}

/**
 * The object that stands for a stored record: for a copy the memory tier handed out, the record it holds (the
 * same for every copy of it, gone with it); any other record stands for itself.
 */
export function recordIdentity(record: StoredRecord): object {
  return MemoryCopy.identityOf(record)
}

/** Options of {@link MemoryTier}. */
export interface MemoryTierOptions {
  /** Hard cap of payload bytes; lru-cache evicts beyond it even if the spiller is late. */
  readonly maxBytes: number
  readonly clock: Clock
  /** Hears of a record `get` found expired (and dropped); the sweep's drops are not reported. */
  readonly onExpired?: (sid: string, record: MemoryRecord) => void
}

/**
 * In-process LRU of serialized sessions. Stores their text (as UTF-8 bytes, outside the V8 heap) and hands out
 * copies, so a caller can never mutate the stored one.
 */
export class MemoryTier implements Tier {
  readonly kind = 'memory' as const
  readonly maxBytes: number
  readonly #clock: Clock
  readonly #slab = new PayloadSlab()
  readonly #lru: LRUCache<string, HeldRecord>
  readonly #onExpired: ((sid: string, record: MemoryRecord) => void) | undefined

  constructor(options: MemoryTierOptions) {
    this.maxBytes = options.maxBytes
    this.#clock = options.clock
    this.#onExpired = options.onExpired
    this.#lru = new LRUCache<string, HeldRecord>({
      maxSize: options.maxBytes,
      sizeCalculation: (record) => Math.max(1, record.bytes),
      // NB: called when a record is replaced, deleted, evicted or cleared: its blocks go back to the slab.
      dispose: (record) => record.release(),
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
      // NB: the copy is made before the delete gives the record's blocks back.
      const expired = this.#onExpired === undefined ? undefined : new MemoryCopy(record, record.payload)
      this.#lru.delete(sid)
      if (expired !== undefined) this.#onExpired?.(sid, expired)
      return undefined
    }
    return new MemoryCopy(record, record.payload)
  }

  /** The record, live or not, without touching recency. */
  peek(sid: string): MemoryRecord | undefined {
    const record = this.#lru.peek(sid)
    return record === undefined ? undefined : new MemoryCopy(record, record.payload)
  }

  /**
   * The record's metadata, live or not, without touching recency and without decoding its payload (peek() makes
   * a string of it): for callers that need only its version, user, expiry or creation time, right away.
   */
  peekMeta(sid: string): RecordMeta | undefined {
    return this.#lru.peek(sid)
  }

  /**
   * Notes that the spill cache holds no row of the session (see {@link RecordMeta.noCacheRow}): of the record
   * held now, only if it is the one `copy` (a copy this tier handed out) stands for.
   */
  markNoCacheRow(sid: string, copy: StoredRecord): void {
    const record = this.#lru.peek(sid)
    if (record !== undefined && MemoryCopy.identityOf(copy) === record) record.noCacheRow = true
  }

  /** Stores a record now; without `version` it gets one more than the copy held (and than `after`). */
  write(sid: string, input: RecordInput, options: WriteOptions = {}): MemoryRecord {
    const version = input.version ?? Math.max(this.#lru.peek(sid)?.version ?? 0, options.after ?? 0) + 1
    const held = new HeldRecord(this.#slab, input, version, payloadBytes(input.payload))
    this.#lru.set(sid, held)
    // NB: lru-cache refuses an entry larger than maxBytes without disposing of it: its blocks go back here.
    if (this.#lru.peek(sid) !== held) held.release()
    // NB: the copy shares the caller's string: nothing is decoded on the write path.
    const record = new MemoryCopy(held, input.payload)
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

  #live(filter?: (record: HeldRecord) => boolean): TierRow[] {
    const out: TierRow[] = []
    for (const [sid, record] of this.#liveEntries()) {
      if (filter === undefined || filter(record)) {
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

  *#liveEntries(): IterableIterator<[string, HeldRecord]> {
    const now = this.#clock.now()
    for (const entry of this.#lru.entries()) if (entry[1].expiresAt > now) yield entry
  }

  /** Every live record (memory holds decoded-clean records only: nothing is ever corrupt here). */
  rows(): TierRow[] {
    return this.#live()
  }

  ids(): string[] {
    // NB: no payload is decoded just to list or count ids.
    const out: string[] = []
    for (const [sid] of this.#liveEntries()) out.push(sid)
    return out
  }

  countLive(): number {
    let count = 0
    for (const _ of this.#liveEntries()) count++
    return count
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
    this.#slab.reset()
  }

  /** Session ids from least to most recently used. */
  *leastRecentlyUsed(): IterableIterator<string> {
    yield* this.#lru.rkeys()
  }

  /**
   * The sessions from least to most recently used, with their records as held, for the spiller (no copy is
   * made: nothing is decoded unless a record's payload is read). NB: read a record's payload before it leaves
   * memory; after that it throws TS_DECODE_FAILED.
   */
  spillCandidates(): IterableIterator<readonly [string, MemoryRecord]> {
    // NB: lru-cache's own entries, oldest first: no lookup of each key again.
    return this.#lru.rentries() as unknown as IterableIterator<readonly [string, HeldRecord]>
  }

  /**
   * Drops `victims`, which must be the oldest records, in order, as {@link spillCandidates} just yielded them (the
   * spiller, in the same synchronous step): each is taken off the old end of the LRU, with no lookup of its key.
   * Should the old end hold another record (the order changed in between), that one and the rest are dropped by
   * their keys instead; the one taken off by mistake is gone from memory too (every record in memory is held by a
   * lower tier as well, so nothing is lost). Returns the payload bytes freed.
   */
  dropOldest(victims: ReadonlyArray<readonly [string, MemoryRecord]>): number {
    let bytes = 0
    let i = 0
    for (; i < victims.length; i++) {
      const record = (victims[i] as readonly [string, MemoryRecord])[1]
      if (this.#lru.pop() !== record) break
      bytes += record.bytes
    }
    // NB: only after a change of order (never in the spiller's step): the rest by their keys.
    for (; i < victims.length; i++) {
      const [sid, record] = victims[i] as readonly [string, MemoryRecord]
      if (this.#lru.peek(sid) === record && this.#lru.delete(sid)) bytes += record.bytes
    }
    return bytes
  }
}

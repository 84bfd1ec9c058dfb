// The health view of a store (`store.health()`, for readiness probes): its shape, the disk failure tracker, and
// the rule that says when the store is not ok. Never any session data or ids.

/** How long a disk failure keeps the disk reported as failing when no write transaction commits after it, in ms. */
export const DISK_FAILURE_HOLD_MS = 60_000

/** What `store.health()` returns. */
export interface StoreHealth {
  /** False when the store is closed, the disk is failing, or Redis is down and writes pile up (or cannot go anywhere). */
  readonly ok: boolean
  /** Why `ok` is false, one short sentence each (empty when ok). */
  readonly problems: readonly string[]
  /** Shared mode: the connection and how invalidations arrive; null in local mode. */
  readonly redis: {
    readonly connected: boolean
    /** True while invalidations from other instances are delivered (else cached copies are checked first). */
    readonly invalidationLive: boolean
    readonly invalidation: 'tracking' | 'channel'
  } | null
  /** Writes waiting for Redis (shared mode; 0 and null in local mode). */
  readonly outbox: { readonly depth: number; readonly oldestAgeMs: number | null }
  /** The SQLite file; null with `disk: false`. */
  readonly disk: {
    /** False from a TS_DISK_IO failure until a write transaction commits after it (or 60 s pass without one). */
    readonly ok: boolean
    /** Code of the last disk failure, or null. */
    readonly lastErrorCode: string | null
    /** When it happened (store clock, ms since the epoch), or null. */
    readonly lastErrorAt: number | null
  } | null
  /** The memory tier against its budget, in payload bytes. */
  readonly memory: { readonly bytes: number; readonly maxBytes: number }
  /** True once the store was closed. */
  readonly closed: boolean
}

/** Remembers the last disk failure and the transaction count at that time. */
export class DiskFailures {
  #code: string | null = null
  #at: number | null = null
  #transactionsThen = 0

  /** A disk failure with `code` at `at` (ms), when `transactions` write transactions had run. */
  failed(code: string, at: number, transactions: number): void {
    this.#code = code
    this.#at = at
    this.#transactionsThen = transactions
  }

  /** The disk's part of the health view, given the transactions run so far and the time now. */
  view(transactions: number, now: number): NonNullable<StoreHealth['disk']> {
    const failing =
      this.#at !== null && transactions <= this.#transactionsThen && now - this.#at < DISK_FAILURE_HOLD_MS
    return { ok: !failing, lastErrorCode: this.#code, lastErrorAt: this.#at }
  }
}

/** What the health view is built from. */
export interface HealthSources {
  readonly closed: boolean
  readonly redis: StoreHealth['redis']
  /** Whether there is an outbox at all (shared mode with a disk tier). */
  readonly hasOutbox: boolean
  readonly outbox: StoreHealth['outbox']
  readonly disk: StoreHealth['disk']
  readonly memory: StoreHealth['memory']
}

/** The health view, with `ok` and the problems that make it false. */
export function healthOf(sources: HealthSources): StoreHealth {
  const problems: string[] = []
  if (sources.closed) problems.push('the store is closed')
  if (sources.disk !== null && !sources.disk.ok)
    problems.push(`the disk is failing (${sources.disk.lastErrorCode})`)
  if (sources.redis !== null && !sources.redis.connected) {
    if (!sources.hasOutbox) problems.push('Redis is down and there is no outbox (disk: false): writes fail')
    else if (sources.outbox.depth > 0)
      problems.push(`Redis is down and ${sources.outbox.depth} writes wait in the outbox`)
  }
  return {
    ok: problems.length === 0,
    problems,
    redis: sources.redis,
    outbox: sources.outbox,
    disk: sources.disk,
    memory: sources.memory,
    closed: sources.closed,
  }
}

// Counters of what the store did, the stats() snapshot shape, and its Prometheus text exposition.
// Never any session data or session ids here.

import type { LatencyHistograms } from './histogram.js'
import type { LifecycleCounts } from './lifecycle.js'
import { emptyLifecycleCounts } from './lifecycle.js'

/** The snapshot returned by `TieredStore.stats()`. */
export interface StoreStats {
  memory: { entries: number; bytes: number; maxBytes: number }
  disk: {
    entries: number
    pendingWrites: number
    transactions: number
    /** The SQLite log's checkpoints: in a worker thread (`background`), or by SQLite in a commit after a failure. */
    checkpoints: { background: boolean; count: number }
  } | null
  /** Shared mode: whether Redis is connected, and how invalidations reach this instance now. */
  redis: { connected: boolean; invalidation: 'tracking' | 'channel' } | null
  /** Sessions moved out of memory by the spiller. */
  spills: number
  /** Sessions copied back into memory from a lower tier on read. */
  promotions: number
  hits: { memory: number; disk: number; redis: number }
  misses: number
  /** Sessions written (set, touch, merge) and destroyed. */
  writes: number
  destroys: number
  /** Writes waiting for Redis (shared mode); always 0 in local mode. */
  outbox: number
  /** Expired sessions removed by the sweep. */
  expired: number
  /** Invalidations received from other instances (shared mode). */
  invalidations: number
  /** Errors counted by code. */
  errors: Record<string, number>
  /** Lifecycle events this instance emitted (`created`, `destroyed` and `expired`), by reason. */
  lifecycle: LifecycleCounts
  /** Age of the outbox's oldest entry, in ms (shared mode); null when it is empty. */
  outboxOldestAgeMs: number | null
}

/** Mutable counters the tier manager increments. */
export class Counters {
  spills = 0
  promotions = 0
  hits = { memory: 0, disk: 0, redis: 0 }
  misses = 0
  writes = 0
  destroys = 0
  expired = 0
  invalidations = 0
  readonly errors = new Map<string, number>()
  readonly lifecycle = emptyLifecycleCounts()

  countError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
  }

  errorsByCode(): Record<string, number> {
    return Object.fromEntries(this.errors)
  }
}

/** Where a stats snapshot is read from. */
export interface StatsSources {
  readonly counters: Counters
  readonly memory: { readonly entries: number; readonly bytes: number; readonly maxBytes: number }
  readonly disk: StoreStats['disk']
  readonly redis: StoreStats['redis']
  readonly outbox: number
  readonly outboxOldestAgeMs?: number | null
}

/** The `stats()` snapshot: copies of every counter and size, safe to keep. */
export function statsSnapshot(sources: StatsSources): StoreStats {
  const c = sources.counters
  const { memory } = sources
  return {
    memory: { entries: memory.entries, bytes: memory.bytes, maxBytes: memory.maxBytes },
    disk: sources.disk === null ? null : { ...sources.disk },
    redis: sources.redis === null ? null : { ...sources.redis },
    spills: c.spills,
    promotions: c.promotions,
    hits: { ...c.hits },
    misses: c.misses,
    writes: c.writes,
    destroys: c.destroys,
    outbox: sources.outbox,
    expired: c.expired,
    invalidations: c.invalidations,
    errors: c.errorsByCode(),
    lifecycle: {
      created: c.lifecycle.created,
      destroyed: { ...c.lifecycle.destroyed },
      expired: { ...c.lifecycle.expired },
    },
    outboxOldestAgeMs: sources.outboxOldestAgeMs ?? null,
  }
}

function line(name: string, value: number, labels?: Record<string, string>): string {
  if (labels === undefined) return `${name} ${value}`
  const text = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`)
    .join(',')
  return `${name}{${text}} ${value}`
}

function metric(
  out: string[],
  name: string,
  type: 'gauge' | 'counter',
  help: string,
  samples: Array<[number, Record<string, string>?]>,
): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
  for (const [value, labels] of samples) out.push(line(name, value, labels))
}

/**
 * Prometheus text exposition (version 0.0.4) of a stats snapshot, with the latency histograms when given.
 */
export function toPrometheus(
  stats: StoreStats,
  prefix = 'tiered_session',
  latency?: LatencyHistograms,
): string {
  const out: string[] = []
  metric(out, `${prefix}_memory_entries`, 'gauge', 'Sessions held in the memory tier.', [
    [stats.memory.entries],
  ])
  metric(out, `${prefix}_memory_bytes`, 'gauge', 'Payload bytes held in the memory tier.', [
    [stats.memory.bytes],
  ])
  metric(out, `${prefix}_memory_max_bytes`, 'gauge', 'Byte budget of the memory tier.', [
    [stats.memory.maxBytes],
  ])
  if (stats.disk !== null) {
    metric(out, `${prefix}_disk_entries`, 'gauge', 'Rows in the disk tier.', [[stats.disk.entries]])
    metric(out, `${prefix}_disk_pending_writes`, 'gauge', 'Writes waiting for their transaction.', [
      [stats.disk.pendingWrites],
    ])
    metric(out, `${prefix}_disk_transactions_total`, 'counter', 'Write transactions committed.', [
      [stats.disk.transactions],
    ])
    metric(
      out,
      `${prefix}_disk_checkpoints_total`,
      'counter',
      'Checkpoints of the SQLite log by the worker.',
      [[stats.disk.checkpoints.count]],
    )
  }
  if (stats.redis !== null) {
    metric(out, `${prefix}_redis_connected`, 'gauge', '1 when Redis is connected.', [
      [stats.redis.connected ? 1 : 0],
    ])
  }
  metric(out, `${prefix}_hits_total`, 'counter', 'Reads served, by tier.', [
    [stats.hits.memory, { tier: 'memory' }],
    [stats.hits.disk, { tier: 'disk' }],
    [stats.hits.redis, { tier: 'redis' }],
  ])
  metric(out, `${prefix}_misses_total`, 'counter', 'Reads that found no live session.', [[stats.misses]])
  metric(out, `${prefix}_spills_total`, 'counter', 'Sessions moved out of memory by the spiller.', [
    [stats.spills],
  ])
  metric(out, `${prefix}_promotions_total`, 'counter', 'Sessions promoted into memory on read.', [
    [stats.promotions],
  ])
  metric(out, `${prefix}_writes_total`, 'counter', 'Sessions written.', [[stats.writes]])
  metric(out, `${prefix}_destroys_total`, 'counter', 'Sessions destroyed.', [[stats.destroys]])
  metric(out, `${prefix}_expired_total`, 'counter', 'Expired sessions swept.', [[stats.expired]])
  metric(out, `${prefix}_invalidations_total`, 'counter', 'Invalidations received from other instances.', [
    [stats.invalidations],
  ])
  metric(out, `${prefix}_outbox_depth`, 'gauge', 'Writes waiting for Redis.', [[stats.outbox]])
  metric(out, `${prefix}_outbox_oldest_age_seconds`, 'gauge', 'Age of the oldest write waiting for Redis.', [
    [(stats.outboxOldestAgeMs ?? 0) / 1000],
  ])
  const { lifecycle } = stats
  metric(
    out,
    `${prefix}_lifecycle_events_total`,
    'counter',
    'Lifecycle events emitted, by event and reason.',
    [
      [lifecycle.created, { event: 'created', reason: 'write' }],
      ...Object.entries(lifecycle.destroyed).map(([reason, n]): [number, Record<string, string>] => [
        n,
        { event: 'destroyed', reason },
      ]),
      ...Object.entries(lifecycle.expired).map(([reason, n]): [number, Record<string, string>] => [
        n,
        { event: 'expired', reason },
      ]),
    ],
  )
  latency?.write(out, prefix)
  const errors = Object.entries(stats.errors)
  metric(
    out,
    `${prefix}_errors_total`,
    'counter',
    'Errors, by code.',
    errors.map(([code, n]) => [n, { code }]),
  )
  return `${out.join('\n')}\n`
}

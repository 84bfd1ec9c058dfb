// Latency histograms for Prometheus: fixed buckets from 10 µs to 1 s in preallocated arrays (no allocation per
// observation), one series per label set; and the store's two: operation duration by {op, tier}, spill duration.

/** Upper bounds of the buckets, in seconds (10 µs to 1 s; a `+Inf` bucket follows). */
export const LATENCY_BUCKETS_S: readonly number[] = [
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1,
]

/** The operations timed, in the order of their series. */
export const TIMED_OPS = ['get', 'set', 'merge', 'touch', 'destroy'] as const
/** A timed operation. */
export type TimedOp = (typeof TIMED_OPS)[number]
/** The tiers an operation is timed on, in the order of their series. */
export const TIMED_TIERS = ['memory', 'disk', 'redis'] as const
/** A tier an operation was timed on. */
export type TimedTier = (typeof TIMED_TIERS)[number]

const OP_INDEX: Readonly<Record<TimedOp, number>> = { get: 0, set: 1, merge: 2, touch: 3, destroy: 4 }
const TIER_INDEX: Readonly<Record<TimedTier, number>> = { memory: 0, disk: 1, redis: 2 }

/** One histogram with `series` label sets, each with the same buckets. */
export class Histogram {
  readonly #bounds: readonly number[]
  /** Per series: a count per bucket (not cumulative), the last one `+Inf`. */
  readonly #counts: Float64Array
  readonly #sums: Float64Array
  readonly #stride: number

  constructor(series: number, bounds: readonly number[] = LATENCY_BUCKETS_S) {
    this.#bounds = bounds
    this.#stride = bounds.length + 1
    this.#counts = new Float64Array(series * this.#stride)
    this.#sums = new Float64Array(series)
  }

  /** Counts one observation of `seconds` in series `series`. */
  observe(series: number, seconds: number): void {
    const bounds = this.#bounds
    let i = 0
    // NB: linear from the bottom: most observations are fast and stop in the first buckets.
    while (i < bounds.length && seconds > (bounds[i] as number)) i++
    const slot = series * this.#stride + i
    this.#counts[slot] = (this.#counts[slot] as number) + 1
    this.#sums[series] = (this.#sums[series] as number) + seconds
  }

  /** Observations in series `series`. */
  count(series: number): number {
    let n = 0
    const base = series * this.#stride
    for (let i = 0; i < this.#stride; i++) n += this.#counts[base + i] as number
    return n
  }

  /**
   * Appends the series with at least one observation in Prometheus text (`_bucket{le}` cumulative, `_sum`,
   * `_count`); `labels(series)` gives each series' labels as `k="v"` text.
   */
  write(out: string[], name: string, help: string, labels: (series: number) => string): void {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`)
    const series = this.#sums.length
    for (let s = 0; s < series; s++) {
      const total = this.count(s)
      if (total === 0) continue
      const base = s * this.#stride
      const own = labels(s)
      const sep = own === '' ? '' : ','
      let cumulative = 0
      for (let i = 0; i < this.#stride; i++) {
        cumulative += this.#counts[base + i] as number
        const le = i < this.#bounds.length ? String(this.#bounds[i]) : '+Inf'
        out.push(`${name}_bucket{${own}${sep}le="${le}"} ${cumulative}`)
      }
      const braces = own === '' ? '' : `{${own}}`
      out.push(`${name}_sum${braces} ${this.#sums[s]}`, `${name}_count${braces} ${total}`)
    }
  }
}

/** The store's latency histograms: each operation by the tier it ran on, and the spiller's slices. */
export class LatencyHistograms {
  readonly operations = new Histogram(TIMED_OPS.length * TIMED_TIERS.length)
  readonly spills = new Histogram(1)

  /** Counts an operation on `tier` that began at `startedMs` (performance.now()). */
  observe(op: TimedOp, tier: TimedTier, startedMs: number): void {
    const seconds = (performance.now() - startedMs) / 1000
    this.operations.observe(OP_INDEX[op] * TIMED_TIERS.length + TIER_INDEX[tier], seconds)
  }

  /**
   * Times `value` (the result of an operation on `tier` begun at `startedMs`): at once when it is not a
   * promise, else once it settles. Returns what it is given (a promise: one that settles the same way).
   */
  time<T>(op: TimedOp, tier: TimedTier, startedMs: number, value: T | Promise<T>): T | Promise<T> {
    if (!(value instanceof Promise)) {
      this.observe(op, tier, startedMs)
      return value
    }
    return value.then(
      (result) => {
        this.observe(op, tier, startedMs)
        return result
      },
      (error: unknown) => {
        this.observe(op, tier, startedMs)
        throw error
      },
    )
  }

  /** Observations of `op` on `tier` so far. */
  count(op: TimedOp, tier: TimedTier): number {
    return this.operations.count(OP_INDEX[op] * TIMED_TIERS.length + TIER_INDEX[tier])
  }

  /** Prometheus text of both histograms, appended to `out`. */
  write(out: string[], prefix: string): void {
    this.operations.write(
      out,
      `${prefix}_operation_duration_seconds`,
      'Duration of session operations, by operation and the tier they ran on.',
      (s) =>
        `op="${TIMED_OPS[Math.floor(s / TIMED_TIERS.length)]}",tier="${TIMED_TIERS[s % TIMED_TIERS.length]}"`,
    )
    this.spills.write(
      out,
      `${prefix}_spill_duration_seconds`,
      'Duration of spill cycles (slices) that moved sessions out of memory.',
      () => '',
    )
  }
}

// The spiller: keeps the memory tier under its byte budget by moving least-recently-used sessions down,
// on an unref'd interval and whenever a write pushes memory over the high watermark.

import type { MemoryRecord, MemoryTier } from './tiers/memory-tier.js'

/** What one spill cycle did. */
export interface SpillResult {
  /** Sessions moved out of memory. */
  readonly sessions: number
  /** Payload bytes freed. */
  readonly bytes: number
}

/** Options of {@link Spiller}. */
export interface SpillerOptions {
  readonly memory: MemoryTier
  /** Fraction of `memory.maxBytes` above which a cycle spills. */
  readonly highWatermark: number
  /** Fraction of `memory.maxBytes` a cycle brings memory down to. */
  readonly lowWatermark: number
  readonly intervalMs: number
  /**
   * Makes the given sessions durable in a lower tier before they leave memory. Absent when every
   * record in memory is already durable below (local mode: the disk tier has every acknowledged write).
   */
  readonly moveDown?: (records: ReadonlyArray<readonly [string, MemoryRecord]>) => void
  readonly onSpill: (result: SpillResult) => void
  readonly onError: (error: unknown) => void
}

/** Background spiller. Cycles are synchronous, so a session is never absent from every tier. */
export class Spiller {
  readonly #options: SpillerOptions
  readonly #highBytes: number
  readonly #lowBytes: number
  #timer: NodeJS.Timeout | undefined
  #kicked: NodeJS.Immediate | undefined
  #running = false

  constructor(options: SpillerOptions) {
    this.#options = options
    this.#highBytes = Math.floor(options.memory.maxBytes * options.highWatermark)
    this.#lowBytes = Math.floor(options.memory.maxBytes * options.lowWatermark)
  }

  /** Starts the interval. The timer is unref'd: it never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.#safeCycle(), this.#options.intervalMs)
    this.#timer.unref()
  }

  /** Stops the interval and any pending kick. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#kicked !== undefined) clearImmediate(this.#kicked)
    this.#timer = undefined
    this.#kicked = undefined
  }

  /** True when memory is above the high watermark. */
  get overHighWatermark(): boolean {
    return this.#options.memory.bytes > this.#highBytes
  }

  /** Schedules a cycle on the next turn of the event loop when memory is above the high watermark. */
  kick(): void {
    if (this.#kicked !== undefined || !this.overHighWatermark) return
    this.#kicked = setImmediate(() => {
      this.#kicked = undefined
      this.#safeCycle()
    })
    this.#kicked.unref()
  }

  /**
   * Runs one cycle now: if memory is above the high watermark, moves least-recently-used sessions down
   * until it is at or below the low watermark.
   */
  cycle(): SpillResult {
    const memory = this.#options.memory
    // NB: not re-entrant: a `spill` listener that reads (and so promotes) must not start a nested cycle.
    if (this.#running || memory.bytes <= this.#highBytes) return { sessions: 0, bytes: 0 }
    this.#running = true
    let result: SpillResult
    try {
      result = this.#spill(memory)
      if (result.sessions > 0) this.#options.onSpill(result)
    } finally {
      this.#running = false
    }
    // Promotions made by spill listeners may have pushed memory up again.
    this.kick()
    return result
  }

  #spill(memory: MemoryTier): SpillResult {
    const victims: Array<readonly [string, MemoryRecord]> = []
    let remaining = memory.bytes
    for (const sid of memory.leastRecentlyUsed()) {
      if (remaining <= this.#lowBytes) break
      const record = memory.peek(sid)
      if (record === undefined) continue
      victims.push([sid, record])
      remaining -= record.bytes
    }
    // NB: down first, then out of memory, all in one synchronous step: no read can miss in between.
    this.#options.moveDown?.(victims)
    let bytes = 0
    for (const [sid, record] of victims) {
      if (memory.delete(sid)) bytes += record.bytes
    }
    return { sessions: victims.length, bytes }
  }

  #safeCycle(): void {
    try {
      this.cycle()
    } catch (error) {
      this.#options.onError(error)
    }
  }
}

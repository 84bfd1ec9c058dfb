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
  /** Hears how long (ms, performance.now) each slice or whole cycle that moved sessions took. */
  readonly onSlice?: (durationMs: number) => void
  readonly onError: (error: unknown) => void
  /** The clock a slice's time budget is measured on, in ms (tests inject one). Default: performance.now. */
  readonly sliceClock?: () => number
}

/** Most sessions moved per step of a slice (one moveDown each: one batch for the spill cache in shared mode). */
const STEP_SESSIONS = 64
/** Fewest sessions per step, however slow a step is (a batch has a cost of its own). */
const MIN_STEP_SESSIONS = 4
/** A step aims at this share of a slice: one step alone never blocks much past it. */
const STEP_SHARE_OF_SLICE = 0.5

/** Longest one slice runs before it yields to the event loop, in ms. */
export const SLICE_MS = 1

/**
 * Background spiller. A cycle moves sessions in slices of about SLICE_MS and yields to the event loop between
 * them, so no request waits behind a whole cycle. Each step is synchronous (down first, then out of memory),
 * so a session is never absent from every tier; memory above the budget meanwhile is capped by lru-cache.
 */
export class Spiller {
  readonly #options: SpillerOptions
  readonly #highBytes: number
  readonly #lowBytes: number
  #timer: NodeJS.Timeout | undefined
  #kicked: NodeJS.Immediate | undefined
  #running = false
  /** True while a cycle is under way (memory went above the high watermark, not yet down to the low one). */
  #draining = false
  /**
   * Sessions per step, sized from the last steps (picking, moving down and dropping them) so that a step takes
   * about STEP_SHARE_OF_SLICE of a slice.
   */
  #stepSessions = STEP_SESSIONS

  constructor(options: SpillerOptions) {
    this.#options = options
    this.#highBytes = Math.floor(options.memory.maxBytes * options.highWatermark)
    this.#lowBytes = Math.floor(options.memory.maxBytes * options.lowWatermark)
  }

  /** Starts the interval. The timer is unref'd: it never keeps the process alive. */
  start(): void {
    if (this.#timer !== undefined) return
    this.#timer = setInterval(() => this.#safe(() => this.step()), this.#options.intervalMs)
    this.#timer.unref()
  }

  /** Stops the interval and any pending slice. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    if (this.#kicked !== undefined) clearImmediate(this.#kicked)
    this.#timer = undefined
    this.#kicked = undefined
    this.#draining = false
  }

  /** True when memory is above the high watermark. */
  get overHighWatermark(): boolean {
    return this.#options.memory.bytes > this.#highBytes
  }

  /** Schedules the next slice on the next turn of the event loop, if a cycle is due or under way. */
  kick(): void {
    if (this.#kicked !== undefined || !(this.#draining || this.overHighWatermark)) return
    this.#kicked = setImmediate(() => {
      this.#kicked = undefined
      this.#safe(() => this.step())
    })
    this.#kicked.unref()
  }

  /**
   * Runs one slice now (at most about SLICE_MS) if a cycle is due or under way, and schedules the next one
   * while memory is above the low watermark.
   */
  step(): SpillResult {
    if (!this.#draining && !this.overHighWatermark) return { sessions: 0, bytes: 0 }
    this.#draining = true
    const result = this.#run(SLICE_MS)
    if (this.#options.memory.bytes <= this.#lowBytes) this.#draining = false
    else this.kick()
    return result
  }

  /**
   * Runs a whole cycle now (flush(), tests): if memory is above the high watermark, moves least-recently-used
   * sessions down until it is at or below the low watermark.
   */
  cycle(): SpillResult {
    if (!this.#draining && !this.overHighWatermark) return { sessions: 0, bytes: 0 }
    this.#draining = true
    const result = this.#run(Number.POSITIVE_INFINITY)
    this.#draining = false
    // Promotions made by spill listeners may have pushed memory up again.
    this.kick()
    return result
  }

  /** Moves sessions down in steps until memory is at the low watermark or `budgetMs` has passed. */
  #run(budgetMs: number): SpillResult {
    // NB: not re-entrant: a `spill` listener that reads (and so promotes) must not start a nested cycle.
    if (this.#running) return { sessions: 0, bytes: 0 }
    this.#running = true
    const memory = this.#options.memory
    const clock = this.#options.sliceClock ?? (() => performance.now())
    const started = clock()
    const startedMs = performance.now()
    let sessions = 0
    let bytes = 0
    try {
      do {
        const moved = this.#spill(memory, clock)
        if (moved.sessions === 0) break
        sessions += moved.sessions
        bytes += moved.bytes
      } while (memory.bytes > this.#lowBytes && clock() - started < budgetMs)
      if (sessions > 0) this.#options.onSlice?.(performance.now() - startedMs)
      if (sessions > 0) this.#options.onSpill({ sessions, bytes })
    } finally {
      this.#running = false
    }
    return { sessions, bytes }
  }

  /** One step: up to STEP_SESSIONS least recently used sessions, down first, then out of memory. */
  #spill(memory: MemoryTier, clock: () => number): SpillResult {
    const started = clock()
    const victims: Array<readonly [string, MemoryRecord]> = []
    let remaining = memory.bytes
    // NB: spillCandidates() makes no copies (peek() would decode every payload); moveDown reads them in this step.
    for (const victim of memory.spillCandidates()) {
      if (remaining <= this.#lowBytes || victims.length >= this.#stepSessions) break
      victims.push(victim)
      remaining -= victim[1].bytes
    }
    // NB: down first, then out of memory, all in one synchronous step: no read can miss in between.
    if (victims.length > 0) this.#options.moveDown?.(victims)
    // NB: the victims are the oldest records, in order, and nothing ran in between: off the LRU's old end.
    const bytes = memory.dropOldest(victims)
    if (victims.length > 0) this.#sizeSteps(victims.length, clock() - started)
    return { sessions: victims.length, bytes }
  }

  /** The next steps' size from this one's: `sessions` moved in `ms`. */
  #sizeSteps(sessions: number, ms: number): void {
    const perSession = ms / sessions
    const fits = perSession > 0 ? Math.floor((SLICE_MS * STEP_SHARE_OF_SLICE) / perSession) : STEP_SESSIONS
    // NB: halfway towards what fits: one slow step (a GC) does not shrink every later one to the minimum.
    const next = Math.round((this.#stepSessions + fits) / 2)
    this.#stepSessions = Math.min(STEP_SESSIONS, Math.max(MIN_STEP_SESSIONS, next))
  }

  #safe(work: () => unknown): void {
    try {
      work()
    } catch (error) {
      this.#draining = false
      this.#options.onError(error)
    }
  }
}

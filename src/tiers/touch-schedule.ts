// When each pending touch is due (promise 8): a touch waits out its window, counted in whole ticks of
// TOUCH_COMMIT_MS (rounded down: never longer than the window) from the first touch of the session since its last
// commit; later touches of the session replace it and keep its due tick. One unref'd timer per tick while anything
// is pending. Past MAX_PENDING_TOUCHES sessions pending, a new one waits one tick only: what the pending touches
// hold outside the memory budget (~0.6 KB each), and what a commit of all of them at once (flush, a listing) costs
// on the event loop, stay bounded.

import { TOUCH_COMMIT_MS } from './tier.js'

/** Sessions with a pending touch past which a new one waits a single tick. */
export const MAX_PENDING_TOUCHES = 4096

/** Pending touches (or whatever stands for one) keyed by session, released when their window is up. */
export class TouchSchedule<T> {
  readonly #onDue: (due: Map<string, T>) => void
  #tick = 0
  /** Pending items by the tick they are due at. */
  #buckets = new Map<number, Map<string, T>>()
  #dueTick = new Map<string, number>()
  #timer: NodeJS.Timeout | undefined

  /** `onDue` gets the items whose window is up, in the order they were first queued. */
  constructor(onDue: (due: Map<string, T>) => void) {
    this.#onDue = onDue
  }

  /** Pending items. */
  get size(): number {
    return this.#dueTick.size
  }

  /**
   * Queues `item` for `sid`, due within `windowMs` (whole ticks, at least one); an item already pending for `sid`
   * is replaced and its due tick kept.
   */
  set(sid: string, item: T, windowMs: number): void {
    const known = this.#dueTick.get(sid)
    if (known !== undefined) {
      this.#buckets.get(known)?.set(sid, item)
      return
    }
    const ticks =
      this.#dueTick.size >= MAX_PENDING_TOUCHES ? 1 : Math.max(1, Math.floor(windowMs / TOUCH_COMMIT_MS))
    const due = this.#tick + ticks
    let bucket = this.#buckets.get(due)
    if (bucket === undefined) {
      bucket = new Map()
      this.#buckets.set(due, bucket)
    }
    bucket.set(sid, item)
    this.#dueTick.set(sid, due)
    this.#timer ??= setTimeout(() => this.#onTick(), TOUCH_COMMIT_MS).unref()
  }

  get(sid: string): T | undefined {
    const due = this.#dueTick.get(sid)
    return due === undefined ? undefined : this.#buckets.get(due)?.get(sid)
  }

  /** Takes the pending item of `sid` out, if any. */
  delete(sid: string): T | undefined {
    const due = this.#dueTick.get(sid)
    if (due === undefined) return undefined
    this.#dueTick.delete(sid)
    const bucket = this.#buckets.get(due)
    const item = bucket?.get(sid)
    bucket?.delete(sid)
    if (bucket?.size === 0) this.#buckets.delete(due)
    return item
  }

  /** Takes every pending item out, due or not (flush, close), and stops the timer. */
  takeAll(): Map<string, T> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    const all = new Map<string, T>()
    for (const due of [...this.#buckets.keys()].sort((a, b) => a - b))
      for (const [sid, item] of this.#buckets.get(due) ?? []) all.set(sid, item)
    this.#buckets = new Map()
    this.#dueTick = new Map()
    return all
  }

  #onTick(): void {
    this.#timer = undefined
    this.#tick++
    const due = new Map<string, T>()
    for (const [tick, bucket] of this.#buckets) {
      if (tick > this.#tick) continue
      for (const [sid, item] of bucket) {
        due.set(sid, item)
        this.#dueTick.delete(sid)
      }
      this.#buckets.delete(tick)
    }
    if (this.#buckets.size > 0) this.#timer = setTimeout(() => this.#onTick(), TOUCH_COMMIT_MS).unref()
    if (due.size > 0) this.#onDue(due)
  }
}

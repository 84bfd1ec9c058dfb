// When each pending touch is due (promise 8): a touch waits out its window, counted in ticks of TOUCH_COMMIT_MS
// from the first touch of the session since its last commit; later touches of the session replace it and keep
// its due tick. One unref'd timer per tick while anything is pending.

import { TOUCH_COMMIT_MS } from './tier.js'

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
   * Queues `item` for `sid`, due once `windowMs` is up (at least one tick); an item already pending for `sid` is
   * replaced and its due tick kept.
   */
  set(sid: string, item: T, windowMs: number): void {
    const known = this.#dueTick.get(sid)
    if (known !== undefined) {
      this.#buckets.get(known)?.set(sid, item)
      return
    }
    const due = this.#tick + Math.max(1, Math.ceil(windowMs / TOUCH_COMMIT_MS))
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

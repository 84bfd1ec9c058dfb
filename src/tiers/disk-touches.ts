// The disk tier's deferred touches (promise 8): acknowledged at once, coalesced per session (only the latest),
// and handed to the group commit once their window is up, a few per turn of the event loop. A data write of the
// same session orders them: a write that builds on the row (update, conditional delete) takes the touch first; a
// write that replaces or deletes the row drops it (it sets the cookie and expiry itself).

import type { TieredSessionError } from '../errors.js'
import { ErrorCodes, wrapError } from '../errors.js'
import type { DiskOp, DiskResult, TouchOp } from './disk-writes.js'
import { replacesRow } from './disk-writes.js'
import type { GroupCommit } from './group-commit.js'
import type { TouchInput } from './tier.js'
import { replacesPendingTouch } from './tier.js'
import { TouchSchedule } from './touch-schedule.js'

/** Deferred touches handed to the group commit per turn of the event loop once their window is up. */
const TOUCHES_PER_TURN = 64

/** Options of {@link DiskTouches}. */
export interface DiskTouchesOptions {
  /** The disk tier's group commit, which commits the touches with its other writes. */
  readonly writes: GroupCommit<DiskOp, DiskResult>
  /** Hears of a transaction of touches that failed (those touches are lost: the sessions may expire earlier). */
  readonly onError?: ((error: TieredSessionError) => void) | undefined
}

/** The touches of a disk tier waiting to be committed. */
export class DiskTouches {
  readonly #options: DiskTouchesOptions
  /** The touch of each session waiting to be committed (coalesced: one op per session). */
  readonly #touches = new Map<string, TouchOp>()
  /** Touches waiting out their window (they join the group commit once it is up). */
  readonly #schedule = new TouchSchedule<TouchOp>((due) => this.#areDue(due))
  /** Touches whose window is up, handed to the group commit TOUCHES_PER_TURN at a time. */
  #due = new Map<string, TouchOp>()
  #pacer: NodeJS.Immediate | undefined

  constructor(options: DiskTouchesOptions) {
    this.#options = options
  }

  /**
   * Collects a touch; a touch of a session already collected replaces it. It joins the group commit once its
   * window is up (TouchInput.windowMs, counted from the session's first collected touch).
   */
  add(sid: string, touch: TouchInput): void {
    const queued = this.#touches.get(sid)
    if (queued !== undefined && queued.dropped !== true) {
      if (replacesPendingTouch(queued.latest, touch)) queued.latest = touch
      return
    }
    const op: TouchOp = { type: 'touch', sid, latest: touch }
    this.#touches.set(sid, op)
    this.#schedule.set(sid, op, touch.windowMs)
  }

  /**
   * True while a touch of `sid` is collected and not committed (or dropped for a write not yet done): the sweeper
   * leaves its row alone, since memory may hold the session live while the row looks expired.
   */
  has(sid: string): boolean {
    return this.#touches.has(sid)
  }

  /**
   * Called right before the data write `op` is queued, to order it with the touch collected for its session: a
   * write that builds on the row gets the touch queued first; one that replaces or deletes the row drops it. The
   * dropped touch is returned, to be passed to {@link guardUntil} with the write's promise.
   */
  beforeWrite(op: DiskOp): TouchOp | undefined {
    if ((this.#schedule.size === 0 && this.#due.size === 0) || !('sid' in op)) return undefined
    if (replacesRow(op)) return this.#drop(op.sid)
    this.#first(op.sid)
    return undefined
  }

  /**
   * A dropped touch keeps the sweeper off its row until the write that dropped it is `done` (the row may look
   * expired on disk while memory, touched, has the session live: a sweep meanwhile would delete a live session).
   */
  guardUntil(dropped: TouchOp, done: Promise<unknown>): void {
    const release = () => this.committing(dropped)
    done.then(release, release)
  }

  /** A touch is being applied in a transaction (or will never be): it is no longer pending. */
  committing(op: TouchOp): void {
    if (this.#touches.get(op.sid) === op) this.#touches.delete(op.sid)
  }

  /** Hands every touch collected so far to the group commit, now (flush, close). */
  queueAll(): void {
    if (this.#pacer !== undefined) clearImmediate(this.#pacer)
    this.#pacer = undefined
    // NB: both taken out before any is queued: a full batch may commit inside the loop, and a write its callbacks
    // queue must not find (and drop, or queue again) a touch already handed over.
    const due = this.#due
    this.#due = new Map()
    const scheduled = this.#schedule.takeAll()
    for (const op of due.values()) this.#enqueue(op)
    for (const op of scheduled.values()) this.#enqueue(op)
  }

  /**
   * Touches whose window is up go to the group commit, TOUCHES_PER_TURN per turn of the event loop (a thousand
   * touches in one transaction would block it for ~20 ms; requests run between the turns).
   */
  #areDue(due: Map<string, TouchOp>): void {
    for (const [sid, op] of due) this.#due.set(sid, op)
    if (this.#pacer === undefined) this.#pace()
  }

  #pace(): void {
    this.#pacer = undefined
    let handed = 0
    for (const [sid, op] of this.#due) {
      if (handed++ === TOUCHES_PER_TURN) break
      this.#due.delete(sid)
      this.#enqueue(op)
    }
    if (this.#due.size > 0) this.#pacer = setImmediate(() => this.#pace()).unref()
  }

  #enqueue(op: TouchOp): void {
    this.#options.writes.enqueueDetached(op, (error) => {
      this.committing(op)
      this.#options.onError?.(wrapError(ErrorCodes.DISK_IO, 'committing touches failed', error))
    })
  }

  /** Before a data write of `sid` is queued: its collected touch goes first (the write then builds on it). */
  #first(sid: string): void {
    const op = this.#take(sid)
    if (op !== undefined) this.#enqueue(op)
  }

  /**
   * Before a write that replaces or deletes the row of `sid`: its collected touch, not handed to the group commit
   * yet, is dropped: the write sets the cookie and expiry itself (as the touch would have been overwritten by it),
   * so committing the touch first would only read, decode and rewrite a row about to be replaced. Returns the
   * dropped op, which stays collected (marked) as the sweeper's guard until the write is done.
   */
  #drop(sid: string): TouchOp | undefined {
    const op = this.#take(sid)
    if (op !== undefined) op.dropped = true
    return op
  }

  /** The touch of `sid` not handed to the group commit yet, taken out of the schedule and of the due ones. */
  #take(sid: string): TouchOp | undefined {
    const op = this.#due.get(sid) ?? this.#schedule.delete(sid)
    this.#due.delete(sid)
    return op
  }
}

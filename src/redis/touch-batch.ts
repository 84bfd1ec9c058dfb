// Deferred touches of shared mode (promise 8): the latest touch of each session, held until its window is up
// (TouchSchedule) and then sent with the others due, each by `send` (a small script, no payload).

import type { TouchInput } from '../tiers/tier.js'
import { replacesPendingTouch } from '../tiers/tier.js'
import { TouchSchedule } from '../tiers/touch-schedule.js'

/**
 * Touches in flight at once while a batch is sent: the connection is shared with the requests' commands, which
 * queue behind whatever was sent before them (a thousand touch scripts at once: ~20 ms of Redis's time).
 */
const TOUCHES_IN_FLIGHT = 16

/** Collects touches and sends each once its window is up, or now on `commit`, TOUCHES_IN_FLIGHT at a time. */
export class TouchBatch {
  readonly #send: (sid: string, touch: TouchInput) => Promise<void>
  /** Touches waiting out their window, the latest of each session. */
  readonly #touches = new TouchSchedule<TouchInput>((due) => {
    void this.#flush(due)
  })
  /** The batch in flight and those queued behind it, if any. */
  #sending: Promise<void> | undefined

  /** `send` must not reject: a touch that cannot be sent is lost (the session may expire earlier). */
  constructor(send: (sid: string, touch: TouchInput) => Promise<void>) {
    this.#send = send
  }

  add(sid: string, touch: TouchInput): void {
    const pending = this.#touches.get(sid)
    if (pending === undefined || replacesPendingTouch(pending, touch))
      this.#touches.set(sid, touch, touch.windowMs)
  }

  /**
   * Drops the collected touch of `sid` if it was made on a version before `version` (a data write since then made
   * it stale: Redis would refuse it, so sending it would only cost a script call).
   */
  dropOlder(sid: string, version: number): void {
    const pending = this.#touches.get(sid)
    if (pending !== undefined && pending.version < version) this.#touches.delete(sid)
  }

  /** Sends the collected touches now and waits for them (and for the batches already in flight). */
  async commit(): Promise<void> {
    await this.#sending
    await this.#flush(this.#touches.takeAll())
  }

  #flush(batch: Map<string, TouchInput>): Promise<void> {
    if (batch.size === 0) return this.#sending ?? Promise.resolve()
    const queue = batch.entries()
    const lane = async (): Promise<void> => {
      for (let next = queue.next(); !next.done; next = queue.next()) await this.#send(...next.value)
    }
    const lanes = Math.min(TOUCHES_IN_FLIGHT, batch.size)
    const sendAll = () => Promise.all(Array.from({ length: lanes }, lane)).then(() => undefined)
    // NB: a batch falling due while another is sent goes out after it (TOUCHES_IN_FLIGHT at most, all told).
    const sent = this.#sending === undefined ? sendAll() : this.#sending.then(sendAll)
    const sending: Promise<void> = sent.finally(() => {
      if (this.#sending === sending) this.#sending = undefined
    })
    this.#sending = sending
    return sending
  }
}

// Deferred touches of shared mode (promise 8): the latest touch of each session, collected for TOUCH_COMMIT_MS
// and then sent together, each by `send` (a small script, no payload).

import type { TouchInput } from '../tiers/tier.js'
import { TOUCH_COMMIT_MS } from '../tiers/tier.js'

/**
 * Touches in flight at once while a batch is sent: the connection is shared with the requests' commands, which
 * queue behind whatever was sent before them (a thousand touch scripts at once: ~20 ms of Redis's time).
 */
const TOUCHES_IN_FLIGHT = 16

/** Collects touches and sends them every TOUCH_COMMIT_MS, or now on `commit`, TOUCHES_IN_FLIGHT at a time. */
export class TouchBatch {
  readonly #send: (sid: string, touch: TouchInput) => Promise<void>
  /** Touches waiting for the next batch, the latest of each session. */
  #touches = new Map<string, TouchInput>()
  #timer: NodeJS.Timeout | undefined
  /** The batch in flight, if any. */
  #sending: Promise<void> | undefined

  /** `send` must not reject: a touch that cannot be sent is lost (the session may expire earlier). */
  constructor(send: (sid: string, touch: TouchInput) => Promise<void>) {
    this.#send = send
  }

  add(sid: string, touch: TouchInput): void {
    this.#touches.set(sid, touch)
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined
      void this.#flush()
    }, TOUCH_COMMIT_MS).unref()
  }

  /** Sends the collected touches now and waits for them (and for a batch already in flight). */
  async commit(): Promise<void> {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    await this.#sending
    await this.#flush()
  }

  #flush(): Promise<void> {
    const batch = this.#touches
    if (batch.size === 0) return this.#sending ?? Promise.resolve()
    this.#touches = new Map()
    const queue = batch.entries()
    const lane = async (): Promise<void> => {
      for (let next = queue.next(); !next.done; next = queue.next()) await this.#send(...next.value)
    }
    const lanes = Math.min(TOUCHES_IN_FLIGHT, batch.size)
    const sent = Promise.all(Array.from({ length: lanes }, lane)).then(() => undefined)
    const sending: Promise<void> = sent.finally(() => {
      if (this.#sending === sending) this.#sending = undefined
    })
    this.#sending = sending
    return sending
  }
}

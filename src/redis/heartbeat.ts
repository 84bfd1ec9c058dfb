// A heartbeat on a subscriber connection: a PING every interval; a connection that leaves two unanswered is
// taken for half-open (the network dropped it without a FIN), so the invalidations it should deliver may be
// lost: the caller is told at once and the connection is reopened.

import type { RedisClientLike } from './connection.js'

/** How often the subscriber is pinged (ms). */
export const HEARTBEAT_MS = 1000

/** PINGs left unanswered before the subscriber counts as lost. */
export const HEARTBEAT_MISSES = 2

/** Pings `subscriber` every `intervalMs`; `onDead` once `misses` in a row got no answer. */
export class Heartbeat {
  readonly #timer: NodeJS.Timeout
  #unanswered = 0

  constructor(
    subscriber: RedisClientLike,
    onDead: () => void,
    intervalMs = HEARTBEAT_MS,
    misses = HEARTBEAT_MISSES,
  ) {
    this.#timer = setInterval(() => {
      if (subscriber.status !== 'ready') {
        this.#unanswered = 0
        return
      }
      if (this.#unanswered >= misses) {
        this.#unanswered = 0
        onDead()
        return
      }
      this.#unanswered++
      subscriber.ping().then(
        () => {
          this.#unanswered = 0
        },
        () => undefined,
      )
    }, intervalMs).unref()
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}

// The invalidation channel: a pub/sub subscription (works on Redis Cluster) on which every instance hears the
// writes and destroys of the others, and learns when it may have missed some (the subscriber dropped).

import type { RedisClientLike, RedisConnection } from './connection.js'

/** Options of {@link InvalidationChannel}. */
export interface InvalidationChannelOptions {
  readonly connection: RedisConnection
  readonly channel: string
  /** This instance's id; its own messages are ignored. */
  readonly origin: string
  /** Another instance wrote or destroyed `sid`, making it `version`. */
  readonly onInvalidate: (sid: string, version: number) => void
  /** Messages may have been missed: every local copy is unverified from now on. */
  readonly onLost: () => void
  /** Subscribed again: local copies verified from now on can be trusted. */
  readonly onLive: () => void
  /** A message that is not ours (counted, never acted on). */
  readonly onGarbage: () => void
}

/** Subscribes on a duplicate of the store's client and parses `I|origin|version|sid` messages. */
export class InvalidationChannel {
  readonly #options: InvalidationChannelOptions
  readonly #subscriber: RedisClientLike
  #live = false
  #closed = false

  constructor(options: InvalidationChannelOptions) {
    this.#options = options
    // NB: we subscribe ourselves on every 'ready' (and handle its failure); ioredis's own re-subscribe
    // would be a command nobody awaits, rejected unhandled when a reconnect flushes its queue.
    this.#subscriber = options.connection.isCluster
      ? options.connection.client.duplicate()
      : options.connection.client.duplicate({
          autoResubscribe: false,
          enableOfflineQueue: true,
          maxRetriesPerRequest: null,
        })
    this.#subscriber.on('message', this.#onMessage)
    this.#subscriber.on('ready', this.#onReady)
    this.#subscriber.on('close', this.#onLost)
    this.#subscriber.on('end', this.#onLost)
    this.#subscriber.on('reconnecting', this.#onLost)
    // NB: connection errors show up as close/reconnecting; the store reports Redis state on its own connection.
    this.#subscriber.on('error', () => undefined)
    if (this.#subscriber.status === 'ready') this.#onReady()
  }

  /** True while subscribed: invalidations are being delivered. */
  get live(): boolean {
    return this.#live
  }

  #onReady = (): void => {
    if (this.#closed) return
    this.#subscriber.subscribe(this.#options.channel).then(
      () => {
        if (this.#closed || this.#live) return
        this.#live = true
        this.#options.onLive()
      },
      () => this.#onLost(),
    )
  }

  #onLost = (): void => {
    if (this.#closed) return
    const wasLive = this.#live
    this.#live = false
    if (wasLive) this.#options.onLost()
  }

  #onMessage = (channel: string, message: string): void => {
    if (channel !== this.#options.channel || this.#closed) return
    const first = message.indexOf('|')
    const second = message.indexOf('|', first + 1)
    const third = message.indexOf('|', second + 1)
    if (message.slice(0, first) !== 'I' || first < 0 || second < 0 || third < 0) {
      this.#options.onGarbage()
      return
    }
    const origin = message.slice(first + 1, second)
    const version = Number(message.slice(second + 1, third))
    const sid = message.slice(third + 1)
    if (!Number.isFinite(version) || sid === '') {
      this.#options.onGarbage()
      return
    }
    if (origin === this.#options.origin) return
    this.#options.onInvalidate(sid, version)
  }

  /** Unsubscribes and closes the subscriber connection (its error listener stays: it is ours). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#live = false
    try {
      await this.#subscriber.quit()
    } catch {
      // NB: quit on a dead connection rejects; disconnect() below closes the socket either way.
    }
    this.#subscriber.disconnect()
  }
}

// The invalidation channel: a pub/sub subscription on which every instance hears the writes and destroys of
// the others, and learns when it may have missed some (the subscriber dropped). On Redis Cluster a PUBLISH
// reaches every node, so the subscription is a plain connection of our own to one node: its loss is then seen
// (a Cluster's own subscriber moves to another node silently, losing what was sent meanwhile).

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

/** Wait before subscribing on the next Cluster node after losing one (or finding none), in ms. */
const NEXT_NODE_MS = 100

/** Subscribes on a duplicate of the store's client (or of one Cluster node) and parses `I|origin|version|sid`. */
export class InvalidationChannel {
  readonly #options: InvalidationChannelOptions
  #subscriber: RedisClientLike | undefined
  #live = false
  #closed = false
  /** Cluster: which node to subscribe on next (round robin over the nodes the client knows). */
  #nodeTurn = 0
  #nextNode: NodeJS.Timeout | undefined

  constructor(options: InvalidationChannelOptions) {
    this.#options = options
    if (options.connection.isCluster) this.#subscribeOnANode()
    else {
      // NB: we subscribe ourselves on every 'ready' (and handle its failure); ioredis's own re-subscribe
      // would be a command nobody awaits, rejected unhandled when a reconnect flushes its queue.
      this.#attach(
        options.connection.client.duplicate({
          autoResubscribe: false,
          enableOfflineQueue: true,
          maxRetriesPerRequest: null,
        }),
      )
    }
  }

  #attach(subscriber: RedisClientLike): void {
    this.#subscriber = subscriber
    subscriber.on('message', this.#onMessage)
    subscriber.on('ready', this.#onReady)
    subscriber.on('close', this.#onLost)
    subscriber.on('end', this.#onLost)
    subscriber.on('reconnecting', this.#onLost)
    // NB: connection errors show up as close/reconnecting; the store reports Redis state on its own connection.
    subscriber.on('error', () => undefined)
    if (subscriber.status === 'ready') this.#onReady()
  }

  /**
   * Cluster: subscribes on one node the client knows (replicas hear a PUBLISH too) with a connection that does
   * not reconnect: once it is lost (close: messages may be missed from now on), the next node is tried.
   */
  #subscribeOnANode(): void {
    this.#nextNode = undefined
    if (this.#closed) return
    const nodes = this.#options.connection.client.nodes?.('all') ?? []
    const node = nodes[this.#nodeTurn++ % Math.max(nodes.length, 1)]
    if (node === undefined) {
      this.#nextNode = setTimeout(() => this.#subscribeOnANode(), NEXT_NODE_MS).unref()
      return
    }
    const subscriber = node.duplicate({
      autoResubscribe: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: null,
      lazyConnect: false,
      retryStrategy: () => null,
    })
    this.#attach(subscriber)
    subscriber.once('end', () => {
      if (this.#subscriber !== subscriber || this.#closed) return
      subscriber.removeAllListeners('message')
      this.#subscriber = undefined
      this.#nextNode = setTimeout(() => this.#subscribeOnANode(), NEXT_NODE_MS).unref()
    })
  }

  /** True while subscribed: invalidations are being delivered. */
  get live(): boolean {
    return this.#live
  }

  #onReady = (): void => {
    if (this.#closed || this.#subscriber === undefined) return
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
    if (this.#nextNode !== undefined) clearTimeout(this.#nextNode)
    const subscriber = this.#subscriber
    if (subscriber === undefined) return
    try {
      await subscriber.quit()
    } catch {
      // NB: quit on a dead connection rejects; disconnect() below closes the socket either way.
    }
    subscriber.disconnect()
  }
}

// How an instance hears that another one changed a session it holds, and learns when it may have missed that.
//
// - 'tracking' (the default on a single node or Sentinel): Redis's server-assisted client tracking. The store's
//   connection runs `CLIENT TRACKING ON REDIRECT <id> OPTOUT NOLOOP` towards a subscriber connection of ours
//   (RESP2, subscribed to `__redis__:invalidate`): Redis remembers which keys that connection read (inside Lua
//   scripts too) and tells only the instances that hold a copy, once per read, never about our own writes.
//   OPTOUT: a read of a session this instance never trusted a copy of is not remembered (`CLIENT CACHING no`;
//   see Coherence.tracksRead): its copy is kept unverified until a read finds it still current, and the next
//   read (a version check) makes Redis track it.
// - 'channel' (Redis Cluster, or a server or proxy without CLIENT TRACKING): every write publishes
//   `I|origin|version|sid` on one channel every instance subscribes to. On Cluster a PUBLISH reaches every node,
//   so the subscription is a plain connection of our own to one node: its loss is then seen.
//
// Either way the subscriber is pinged every second (Heartbeat): a half-open connection is noticed within 3 s.

import { ErrorCodes, isTieredSessionError } from '../errors.js'
import { type RedisClientLike, type RedisConnection, type StatusChange, UNSUPPORTED } from './connection.js'
import { Heartbeat } from './heartbeat.js'

/** The channel Redis sends tracking invalidations on (RESP2, redirect mode). */
const TRACKING_CHANNEL = '__redis__:invalidate'

/** The version a tracking invalidation announces: unknown, so newer than any copy (never "the channel lost"). */
export const UNKNOWN_VERSION = Number.MAX_SAFE_INTEGER

/** How invalidations reach this instance. */
export type InvalidationMode = 'tracking' | 'channel'

/** Options of {@link InvalidationChannel}. */
export interface InvalidationChannelOptions {
  readonly connection: RedisConnection
  readonly channel: string
  /** This instance's id; its own messages are ignored. */
  readonly origin: string
  /** The mode asked for; 'tracking' falls back to 'channel' where Redis cannot track (Cluster, no command). */
  readonly mode: InvalidationMode
  /** The session id of a key Redis reports (tracking), or undefined for a key that is no session of ours. */
  readonly sidOf: (key: string) => string | undefined
  /** Another instance wrote or destroyed `sid`, making it `version` ({@link UNKNOWN_VERSION}: tracking). */
  readonly onInvalidate: (sid: string, version: number) => void
  /** Messages may have been missed: every local copy is unverified from now on. */
  readonly onLost: () => void
  /** Subscribed again: local copies verified from now on can be trusted. */
  readonly onLive: () => void
  /** A message that is not ours (counted, never acted on). */
  readonly onGarbage: () => void
}

/** The run_id in an INFO server reply (a server process's own id). */
function runIdOf(info: unknown): string | undefined {
  return /run_id:([0-9a-f]+)/.exec(String(info))?.[1]
}

/** Wait before setting tracking up again after Redis refused it for now, in ms. */
const RETRY_TRACK_MS = 1000

/** Wait before subscribing on the next Cluster node after losing one (or finding none), in ms. */
const NEXT_NODE_MS = 100

/** The subscriber connection and what arrives on it. */
export class InvalidationChannel {
  readonly #options: InvalidationChannelOptions
  #mode: InvalidationMode
  #subscriber: RedisClientLike | undefined
  #heartbeat: Heartbeat | undefined
  #live = false
  #closed = false
  /** Tracking: the subscriber's client id once it is subscribed (the redirect target), else undefined. */
  #redirectTo: string | undefined
  /** Tracking: the run_id of the server the subscriber is connected to. */
  #redirectServer: string | undefined
  /** Bumped whenever the subscriber connection changes: a subscription set up for an older one is stale. */
  #epoch = 0
  /** Bumped by every tracking setup and every loss: only the latest setup may make the channel live. */
  #attempt = 0
  /** Cluster: which node to subscribe on next (round robin over the nodes the client knows). */
  #nodeTurn = 0
  #nextNode: NodeJS.Timeout | undefined

  constructor(options: InvalidationChannelOptions) {
    this.#options = options
    this.#mode = options.connection.isCluster ? 'channel' : options.mode
    if (options.connection.isCluster) this.#subscribeOnANode()
    else {
      // NB: we subscribe ourselves on every 'ready' (and handle its failure); ioredis's own re-subscribe
      // would be a command nobody awaits, rejected unhandled when a reconnect flushes its queue. RESP2: tracking
      // invalidations arrive as pub/sub messages (ioredis 6 drops RESP3 invalidation pushes).
      this.#attach(
        options.connection.client.duplicate({
          autoResubscribe: false,
          enableOfflineQueue: true,
          maxRetriesPerRequest: null,
          protocol: 2,
        }),
      )
      // NB: a new connection of the store's own tracks nothing yet, and copies read on the old one are no longer
      // tracked: trust ends with it and comes back once tracking is on again.
      options.connection.client.on('close', this.#onMainLost)
      options.connection.on('status', this.#onMainStatus)
    }
  }

  /** How invalidations reach this instance now. */
  get mode(): InvalidationMode {
    return this.#mode
  }

  /** True while invalidations are being delivered. */
  get live(): boolean {
    return this.#live
  }

  #attach(subscriber: RedisClientLike): void {
    this.#subscriber = subscriber
    subscriber.on('messageBuffer', this.#onMessage)
    subscriber.on('ready', this.#onReady)
    subscriber.on('close', this.#onSubscriberLost)
    subscriber.on('end', this.#onSubscriberLost)
    subscriber.on('reconnecting', this.#onSubscriberLost)
    // NB: connection errors show up as close/reconnecting; the store reports Redis state on its own connection.
    subscriber.on('error', () => undefined)
    this.#heartbeat?.stop()
    this.#heartbeat = new Heartbeat(subscriber, () => {
      // NB: half-open: reopened (a Cluster node's connection does not reconnect: the next node is tried).
      this.#onLost()
      subscriber.disconnect(true)
    })
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
      subscriber.removeAllListeners('messageBuffer')
      this.#subscriber = undefined
      this.#nextNode = setTimeout(() => this.#subscribeOnANode(), NEXT_NODE_MS).unref()
    })
  }

  #onReady = (): void => {
    const subscriber = this.#subscriber
    if (this.#closed || subscriber === undefined) return
    const epoch = ++this.#epoch
    this.#redirectTo = undefined
    const setUp =
      this.#mode === 'tracking'
        ? Promise.all([subscriber.client('ID'), subscriber.info('server')]).then(async ([id, info]) => {
            await subscriber.subscribe(TRACKING_CHANNEL)
            if (epoch !== this.#epoch) return
            this.#redirectTo = String(id)
            this.#redirectServer = runIdOf(info)
            await this.#track()
          })
        : subscriber.subscribe(this.#options.channel).then(() => {
            if (epoch === this.#epoch) this.#goLive()
          })
    setUp.catch((error: unknown) => {
      // NB: a server without CLIENT (renamed away, a proxy): the channel serves instead.
      if (
        this.#mode === 'tracking' &&
        epoch === this.#epoch &&
        UNSUPPORTED.test(String((error as Error)?.message))
      )
        this.#fallBack()
      else this.#onLost()
    })
  }

  /** Tracking: turns it on for the store's connection, towards the subscriber; live once Redis says OK. */
  async #track(): Promise<void> {
    const attempt = ++this.#attempt
    const redirect = this.#redirectTo
    const server = this.#redirectServer
    const { connection } = this.#options
    // NB: not connected yet: the store's connection going ready tries again (#onMainStatus).
    if (redirect === undefined || !connection.up) return
    try {
      await connection.run('an invalidation setup', (c) =>
        c.client('TRACKING', 'ON', 'REDIRECT', redirect, 'OPTOUT', 'NOLOOP'),
      )
      // NB: not after a fallback to the channel meanwhile (where every read must count as tracked).
      if (attempt === this.#attempt && this.#mode === 'tracking') connection.untrackedReads = true
    } catch (error) {
      // NB: refused (an old Redis, a proxy without the command): every write publishes anyway, so the channel
      // serves instead. Any other failure (an outage) waits for the next connection.
      // NB: only a server that does not know the command (or forbids it): a redirect to a subscriber that
      // just went away is refused too, and the subscriber's next connection tries again.
      const unsupported =
        isTieredSessionError(error) &&
        error.code === ErrorCodes.REDIS_REFUSED &&
        UNSUPPORTED.test(error.message)
      if (attempt !== this.#attempt) return
      if (unsupported) this.#fallBack()
      // NB: the subscriber is not a client of this server (a failover moved one connection): it reconnects.
      else if (/redirect/i.test(String((error as Error)?.message))) this.#subscriber?.disconnect(true)
      // NB: refused for now (BUSY, say) on a connection that stays up: nothing else would try again.
      else
        setTimeout(() => {
          if (attempt === this.#attempt) this.#track().catch(() => this.#onLost())
        }, RETRY_TRACK_MS).unref()
      return
    }
    if (attempt !== this.#attempt || redirect !== this.#redirectTo) return
    // NB: client ids are unique per server only: after a failover the store's connection may have reached
    // another server than the subscriber, where that id is some other client (or none). Same server, or the
    // subscriber reconnects (and this runs again).
    let info: unknown
    try {
      info = await connection.run('an invalidation setup', (c) => c.info('server'))
    } catch {
      return
    }
    if (attempt !== this.#attempt || redirect !== this.#redirectTo) return
    if (runIdOf(info) === server) this.#goLive()
    else this.#subscriber?.disconnect(true)
  }

  #fallBack(): void {
    this.#mode = 'channel'
    this.#options.connection.untrackedReads = false
    const subscriber = this.#subscriber
    subscriber?.unsubscribe(TRACKING_CHANNEL).then(
      () => this.#onReady(),
      () => this.#onLost(),
    )
  }

  #goLive(): void {
    if (this.#closed || this.#live) return
    this.#live = true
    this.#options.onLive()
  }

  #onMainLost = (): void => {
    if (this.#mode !== 'tracking') return
    this.#attempt++
    this.#onLost()
  }

  #onMainStatus = ({ status }: StatusChange): void => {
    if (this.#mode !== 'tracking' || this.#closed || status !== 'ready') return
    this.#onLost()
    this.#track().catch(() => this.#onLost())
  }

  /** The subscriber connection went away: its id is no redirect target any more. */
  #onSubscriberLost = (): void => {
    this.#epoch++
    this.#redirectTo = undefined
    this.#onLost()
  }

  #onLost = (): void => {
    if (this.#closed) return
    this.#attempt++
    const wasLive = this.#live
    this.#live = false
    if (wasLive) this.#options.onLost()
  }

  #onMessage = (channelBuffer: Buffer, payload: Buffer | Buffer[] | null): void => {
    if (this.#closed) return
    const channel = String(channelBuffer)
    if (channel === TRACKING_CHANNEL) this.#onTracked(payload)
    else if (channel === this.#options.channel && Buffer.isBuffer(payload))
      this.#onPublished(payload.toString())
  }

  /** Tracking: keys another connection changed (a null payload: the whole database was flushed). */
  #onTracked(payload: Buffer | Buffer[] | null): void {
    if (payload === null) {
      // NB: FLUSHALL/FLUSHDB: every copy is unverified (checked against Redis before it is served); a channel
      // that was not live stays so (a message never makes it live).
      if (this.#live) {
        this.#options.onLost()
        this.#options.onLive()
      }
      return
    }
    if (!Array.isArray(payload)) {
      // NB: a plain PUBLISH on the tracking channel: not Redis's.
      this.#options.onGarbage()
      return
    }
    for (const key of payload) {
      const sid = this.#options.sidOf(String(key))
      if (sid !== undefined) this.#options.onInvalidate(sid, UNKNOWN_VERSION)
    }
  }

  #onPublished(message: string): void {
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

  /**
   * Resolves once every invalidation Redis sent before now has been applied: a PING on the subscriber, whose
   * answer comes after them on the same connection.
   */
  async delivered(): Promise<void> {
    const subscriber = this.#subscriber
    if (subscriber === undefined || subscriber.status !== 'ready') return
    await subscriber.ping().catch(() => undefined)
  }

  /** Unsubscribes and closes the subscriber connection (its error listener stays: it is ours). */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#live = false
    this.#heartbeat?.stop()
    if (this.#nextNode !== undefined) clearTimeout(this.#nextNode)
    this.#options.connection.client.off('close', this.#onMainLost)
    this.#options.connection.off('status', this.#onMainStatus)
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

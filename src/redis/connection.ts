// The Redis connection: creates or adopts an ioredis client (single node, Sentinel or Cluster), runs every
// command with a bounded wait (never the offline queue's), runs Lua scripts by SHA, and tracks its status.

import { createHash } from 'node:crypto'
import { EventEmitter } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import { Budget } from './budget.js'

/** The ioredis surface we use; ioredis 5 and 6 `Redis` and `Cluster` instances both fit. */
export interface RedisClientLike extends EventEmitter {
  readonly status: string
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  hmget(key: string, ...fields: string[]): Promise<Array<string | null>>
  hget(key: string, field: string): Promise<string | null>
  get(key: string): Promise<string | null>
  pttl(key: string): Promise<number>
  del(...keys: string[]): Promise<number>
  sadd(key: string, ...members: string[]): Promise<number>
  srem(key: string, ...members: string[]): Promise<number>
  smembers(key: string): Promise<string[]>
  pexpireat(key: string, at: number, ...mode: string[]): Promise<number>
  publish(channel: string, message: string): Promise<number>
  scan(cursor: string | number, ...args: Array<string | number>): Promise<[string, string[]]>
  subscribe(...channels: string[]): Promise<unknown>
  unsubscribe(...channels: string[]): Promise<unknown>
  /** CLIENT subcommands (ID, TRACKING). */
  client(...args: string[]): Promise<unknown>
  info(section?: string): Promise<string>
  ping(): Promise<string>
  /** A batch of commands sent together (on Cluster: to the node of their key). */
  pipeline(): RedisPipelineLike
  /** Connects a client made with `lazyConnect` (status `wait`). */
  connect?(): Promise<void>
  duplicate(...args: unknown[]): RedisClientLike
  quit(): Promise<unknown>
  disconnect(reconnect?: boolean): void
  /** Cluster only: the nodes of a role. */
  nodes?(role?: 'master' | 'slave' | 'all'): RedisClientLike[]
}

/** The pipeline surface we use (to send WAIT to the node that holds a key). */
export interface RedisPipelineLike {
  exists(key: string): RedisPipelineLike
  client(...args: string[]): RedisPipelineLike
  hmget(key: string, ...fields: string[]): RedisPipelineLike
  wait(replicas: number, timeoutMs: number): RedisPipelineLike
  info(section: string): RedisPipelineLike
  exec(): Promise<Array<[Error | null, unknown]> | null>
}

/** Options of {@link RedisConnection}. */
export interface RedisConnectionOptions {
  /** A `redis://` URL; we create and own the client. */
  readonly url?: string
  /** A client the app created; we use it and never close it. */
  readonly client?: RedisClientLike
  /** Longest wait for one command, in ms. */
  readonly commandTimeoutMs: number
  /** Longest a command waits for the first connection while it is still being made, in ms. */
  readonly connectTimeoutMs: number
}

/** A Lua script and its SHA1, run with EVALSHA and loaded on a NOSCRIPT miss. */
export class Script {
  readonly sha: string
  constructor(readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }
}

/**
 * The command itself, made safe to abandon: when the timeout wins the race, ioredis still settles the
 * command later (often rejecting it when it flushes its queue on a reconnect). That late outcome has no
 * reader any more; it was already reported as the timeout, so it must not surface as an unhandled rejection.
 */
function settledLater<T>(command: Promise<T>): Promise<T> {
  command.catch(() => undefined)
  return command
}

/**
 * Replies of a Redis that answered and refused the command. Not among them: the replies that mean "not now"
 * (CLUSTERDOWN, READONLY, MASTERDOWN, LOADING, TRYAGAIN: a failover or a restart in progress), an outage.
 */
const REFUSAL_REPLY = /^(WRONGTYPE|ERR|NOSCRIPT|BUSY|OOM|MOVED|ASK|CROSSSLOT|EXECABORT|NOPERM)/

/** A server that does not know a command or subcommand (an old Redis, a proxy, a renamed command), or forbids it
 * (an ACL: NOPERM). */
export const UNSUPPORTED = /unknown (sub)?command|NOPERM/i

/** A reply refused with WRONGTYPE: the key holds another type than the command reads. */
export function isWrongType(error: unknown): boolean {
  return (
    error instanceof TieredSessionError &&
    error.code === ErrorCodes.REDIS_REFUSED &&
    /WRONGTYPE/.test(error.message)
  )
}

function unavailable(message: string): TieredSessionError {
  return new TieredSessionError(ErrorCodes.REDIS_UNAVAILABLE, message)
}

/**
 * Where the connection stands. `connecting`: never ready yet. `ready`: commands are sent. `hung`: a command
 * timed out on a connection that looked ready (PING probes until Redis answers). `reconnecting`: the client
 * lost its connection and is making a new one. `closed`: final.
 */
export type ConnectionStatus = 'connecting' | 'ready' | 'hung' | 'reconnecting' | 'closed'

/** The one event of a {@link RedisConnection}: its status changed (emitted once per change). */
export interface StatusChange {
  readonly status: ConnectionStatus
  readonly previous: ConnectionStatus
}

/**
 * One Redis client plus fail-fast command execution. Its state is one {@link ConnectionStatus}, changed only by
 * `#setStatus`, which emits one `status` event ({@link StatusChange}) per change.
 */
export class RedisConnection extends EventEmitter {
  readonly client: RedisClientLike
  readonly isCluster: boolean
  readonly #owned: boolean
  readonly #timeoutMs: number
  #status: ConnectionStatus = 'connecting'
  #probe: NodeJS.Timeout | undefined
  /** Bumped on every 'ready': a command from an older connection failing late says nothing about this one. */
  #generation = 0
  /** True once the first connection was made or `connectTimeoutMs` passed: from then on a command never waits. */
  #started = false
  /** Resolves true at the first 'ready', false when `connectTimeoutMs` passed first (or the store closed). */
  readonly #firstReady: Promise<boolean>
  #endStartup: (connected: boolean) => void = () => undefined
  #startupTimer: NodeJS.Timeout | undefined
  /**
   * Client tracking is on in OPTOUT mode (set by the invalidation channel): a read may ask Redis not to remember
   * it (`CLIENT CACHING no` right before it). False with the channel, and until tracking was first set up.
   */
  untrackedReads = false
  /** The socket while it is corked (see #gather). */
  #corked: { uncork(): void } | undefined

  constructor(options: RedisConnectionOptions) {
    super()
    this.#timeoutMs = options.commandTimeoutMs
    if (options.client !== undefined) {
      this.client = options.client
      this.#owned = false
    } else {
      // NB: no offline queue and no retries per request: a dead Redis must cost a request at most the timeout.
      this.client = new Redis(options.url as string, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: options.commandTimeoutMs,
        connectTimeout: Math.max(options.commandTimeoutMs, 1000),
        retryStrategy: (times: number) => Math.min(times * 100, 2000),
        lazyConnect: false,
        // NB: no auto-pipelining (its batches cost the app CPU per command): run() gathers commands itself, see
        // #gather.
        enableAutoPipelining: false,
      }) as unknown as RedisClientLike
      this.#owned = true
    }
    this.isCluster = this.client instanceof Cluster || typeof this.client.nodes === 'function'
    this.client.on('ready', this.#onReady)
    this.client.on('close', this.#onDown)
    this.client.on('end', this.#onEnd)
    this.client.on('reconnecting', this.#onDown)
    this.client.on('node error', this.#onNodeError)
    // NB: ioredis prints unhandled 'error' events; we surface state through status and typed errors instead.
    this.client.on('error', this.#onError)
    // NB: an adopted client that is ready already starts ready, without an event (nobody listens yet).
    if (this.client.status === 'ready') this.#status = 'ready'
    this.#firstReady = new Promise<boolean>((resolve) => {
      this.#endStartup = (connected) => {
        if (this.#started) return
        this.#started = true
        clearTimeout(this.#startupTimer)
        resolve(connected)
      }
    })
    if (this.#status === 'ready') this.#endStartup(true)
    else {
      this.#startupTimer = setTimeout(() => this.#endStartup(false), options.connectTimeoutMs).unref()
      // NB: a client made with lazyConnect would wait for a first command that we never send unconnected.
      if (this.client.status === 'wait') this.client.connect?.().catch(() => undefined)
    }
  }

  /** The current status. */
  get status(): ConnectionStatus {
    return this.#status
  }

  /** True while the client is ready and answering. */
  /** A new budget of one command timeout, paused, for the store calls of one request (see {@link Budget}). */
  budget(): Budget {
    return new Budget(this.#timeoutMs)
  }

  get up(): boolean {
    return this.#status === 'ready' && this.client.status === 'ready'
  }

  /** True while the first connection is still being made and `connectTimeoutMs` has not passed. */
  get starting(): boolean {
    return !this.#started && this.#status === 'connecting'
  }

  /** True when a command sent now is worth sending: Redis is up, or the first connection is being made. */
  get usable(): boolean {
    return this.up || this.starting
  }

  /**
   * Resolves once the connection is ready; rejects with TS_REDIS_UNAVAILABLE when it is not within
   * `timeoutMs` (TS_STORE_CLOSED when it closes first).
   */
  whenReady(timeoutMs: number): Promise<void> {
    if (this.up) return Promise.resolve()
    if (this.#status === 'closed')
      return Promise.reject(new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store is closed'))
    return new Promise<void>((resolve, reject) => {
      const settle = (error?: TieredSessionError) => {
        clearTimeout(timer)
        this.off('status', onStatus)
        if (error === undefined) resolve()
        else reject(error)
      }
      const onStatus = ({ status }: StatusChange) => {
        if (status === 'ready') settle()
        else if (status === 'closed')
          settle(new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store closed before Redis was ready'))
      }
      const timer = setTimeout(
        () => settle(unavailable(`Redis was not ready within ${timeoutMs} ms (redis.connectTimeout)`)),
        timeoutMs,
      ).unref()
      this.on('status', onStatus)
    })
  }

  /** The one place the status changes; emits `status` once per change. */
  #setStatus(status: ConnectionStatus): void {
    const previous = this.#status
    if (status === previous || previous === 'closed') return
    this.#status = status
    this.emit('status', { status, previous } satisfies StatusChange)
  }

  #onReady = (): void => {
    this.#generation++
    this.#endStartup(true)
    // NB: a connection that comes (back) ready is fresh: a hang seen on the old one no longer applies.
    if (this.#status !== 'closed') this.#setStatus('ready')
  }

  #onDown = (): void => {
    if (this.#status === 'ready' || this.#status === 'hung') this.#setStatus('reconnecting')
  }

  /** ioredis gave up on the connection for good ('end'): nothing will bring it back but a new client. */
  #onEnd = (): void => {
    this.#onDown()
    if (this.#status !== 'closed') this.emit('ended')
  }

  #onNodeError = (): void => {
    this.emit('client-error')
  }

  #onError = (error: unknown): void => {
    this.emit('client-error', error)
  }

  /** A command timed out or failed under us: treat Redis as down and PING it until it answers again. */
  #markHung(): void {
    if (this.#status !== 'ready') return
    this.#setStatus('hung')
    const probe = () => {
      this.#probe = undefined
      if (this.#status !== 'hung') return
      let timer: NodeJS.Timeout | undefined
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), this.#timeoutMs)
        timer.unref()
      })
      Promise.race([settledLater(this.client.ping()), timeout]).then(
        () => {
          clearTimeout(timer)
          if (this.#status === 'hung' && this.client.status === 'ready') this.#setStatus('ready')
        },
        () => {
          clearTimeout(timer)
          if (this.#status === 'hung') this.#probe = setTimeout(probe, this.#timeoutMs).unref()
        },
      )
    }
    // NB: the first probe waits a command timeout too: a PING answered at once (on Cluster by any node, the dead
    // one's slots notwithstanding) would make the connection look ready again and the next request wait again.
    this.#probe = setTimeout(probe, this.#timeoutMs).unref()
  }

  /**
   * Runs `command` if the client is ready (while the first connection is being made: once it is, within
   * `connectTimeoutMs`), failing with TS_REDIS_UNAVAILABLE after the timeout. `blocking`: the command waits in
   * Redis by design (WAIT), so its reply coming late says nothing about Redis: it never marks Redis hung.
   */
  async run<T>(
    what: string,
    command: (client: RedisClientLike) => Promise<T>,
    budget?: Budget,
    blocking = false,
  ): Promise<T> {
    if (this.#status === 'closed')
      throw new TieredSessionError(ErrorCodes.STORE_CLOSED, 'the store is closed')
    if (!this.up) await this.#awaitFirstConnection(what, budget)
    // NB: with a budget, the request's commands share one command timeout: what is left of it bounds this one.
    // A command cut short that way is evidence of a hung Redis only if it had at least half a timeout to answer
    // (a command sent with a few ms left says nothing about Redis).
    const ms = budget === undefined ? this.#timeoutMs : budget.left(this.#timeoutMs)
    if (ms < 1) throw unavailable(`no time left of redis.commandTimeout for ${what}`)
    const generation = this.#generation
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (generation === this.#generation && 2 * ms >= this.#timeoutMs && !blocking) this.#markHung()
        reject(unavailable(`Redis did not answer within ${Math.round(ms)} ms (${what})`))
      }, ms)
      timer.unref()
    })
    this.#gather()
    try {
      return await Promise.race([settledLater(command(this.client)), timeout])
    } catch (error) {
      if (error instanceof TieredSessionError) throw error
      // NB: never chain ioredis errors as `cause`: they carry the command and its arguments (session ids,
      // payloads). Only the first line of the message is kept, which names the failure and no data.
      const message = String((error as Error)?.message ?? error).split('\n')[0] ?? ''
      // A reply error (WRONGTYPE, a script error, OOM) means Redis answered: not an outage, a refusal.
      if (REFUSAL_REPLY.test(message)) {
        throw new TieredSessionError(
          ErrorCodes.REDIS_REFUSED,
          `Redis refused ${what}: ${message.slice(0, 200)}`,
        )
      }
      // The connection failed under this command (closed, reset, or a failover reply): treat Redis as down
      // now, before its 'close' event arrives, so the caller falls back (outbox, local copy) instead of failing; a PING
      // probe brings it back if the connection turns out to be fine.
      if (generation === this.#generation) this.#markHung()
      throw unavailable(`Redis failed during ${what}: ${message.slice(0, 200)}`)
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Our own client (single node): corks the socket at a command until this pass of the event loop has handled
   * its I/O (setImmediate), so that the commands called meanwhile (those of every request that pass served, and
   * any a command sends after a reply, as a script's EVAL after NOSCRIPT) leave in one writev, in call order, and
   * Redis reads them in one go. ioredis's auto-pipelining gathers them too, but holds a batch until the one
   * before it is answered and builds a Pipeline per batch. An adopted client is left as its owner configured it.
   */
  #gather(): void {
    if (this.#corked !== undefined || !this.#owned) return
    const stream = (this.client as unknown as { stream?: { cork?: () => void; uncork: () => void } }).stream
    if (typeof stream?.cork !== 'function') return
    stream.cork()
    this.#corked = stream
    setImmediate(() => this.#letGo())
  }

  #letGo(): void {
    const stream = this.#corked
    if (stream === undefined) return
    this.#corked = undefined
    stream.uncork()
  }

  /**
   * While the first connection is being made, waits for it (within `connectTimeoutMs`; that wait does not
   * count against `budget`); fails with TS_REDIS_UNAVAILABLE when Redis is down.
   */
  async #awaitFirstConnection(what: string, budget: Budget | undefined): Promise<void> {
    const started = performance.now()
    // NB: commands waiting for the first connection are sent in the order they were called (one promise).
    if (!(this.starting && (await this.#firstReady) && this.up))
      throw unavailable(`Redis is not connected (${what})`)
    budget?.extend(performance.now() - started)
  }

  /**
   * HMGET of `key` that Redis does not track for this connection (see {@link untrackedReads}; without it, a
   * plain HMGET): `CLIENT CACHING no` and the HMGET go out together, in one write (a pipeline of their own, so
   * nothing comes between them). NB: on our own client it joins the commands gathered before it, in call order;
   * an adopted client that auto-pipelines writes it at once, ahead of auto-pipelined commands called before it
   * (ioredis sends the next auto-pipeline batch only once the one in flight is answered): callers use it only
   * for a session with no read or write of theirs in flight. The first one's error (tracking not on yet on a new
   * connection) changes nothing: that read is not tracked either. A server that refuses `CLIENT CACHING` (an ACL:
   * NOPERM) gets plain reads from then on: tracked, which costs what this saves, never a stale copy.
   */
  readUntracked(
    what: string,
    key: string,
    fields: readonly string[],
    budget?: Budget,
  ): Promise<Array<string | null>> {
    if (!this.untrackedReads || this.isCluster) return this.run(what, (c) => c.hmget(key, ...fields), budget)
    return this.run(
      what,
      async (client) => {
        const replies = await client
          .pipeline()
          .client('CACHING', 'NO')
          .hmget(key, ...fields)
          .exec()
        const refused = replies?.[0]?.[0]
        if (refused && UNSUPPORTED.test(String(refused.message))) this.untrackedReads = false
        const [error, values] = replies?.[1] ?? [new Error('ERR no reply to a pipelined HMGET'), null]
        if (error !== null) throw error
        return values as Array<string | null>
      },
      budget,
    )
  }

  /** Runs a Lua script by SHA, loading it on NOSCRIPT. */
  script(
    what: string,
    script: Script,
    keys: string[],
    args: Array<string | number>,
    budget?: Budget,
  ): Promise<unknown> {
    return this.run(
      what,
      async (client) => {
        try {
          return await client.evalsha(script.sha, keys.length, ...keys, ...args)
        } catch (error) {
          if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error
          return client.eval(script.source, keys.length, ...keys, ...args)
        }
      },
      budget,
    )
  }

  /** Every key matching `pattern` on every master, via SCAN (never KEYS). */
  async scan(pattern: string): Promise<string[]> {
    const out: string[] = []
    for (const node of this.masters()) {
      let cursor = '0'
      do {
        const [next, keys] = await this.run('a key scan', () =>
          node.scan(cursor, 'MATCH', pattern, 'COUNT', 500),
        )
        cursor = next
        out.push(...keys)
      } while (cursor !== '0')
    }
    return out
  }

  /** Every master (one entry on a single node). */
  masters(): RedisClientLike[] {
    return this.isCluster && this.client.nodes !== undefined ? this.client.nodes('master') : [this.client]
  }

  /** Closes the client if we created it. Idempotent. */
  async close(): Promise<void> {
    if (this.#status === 'closed') return
    this.#setStatus('closed')
    if (this.#probe !== undefined) clearTimeout(this.#probe)
    this.#endStartup(false)
    this.client.off('ready', this.#onReady)
    this.client.off('close', this.#onDown)
    this.client.off('end', this.#onEnd)
    this.client.off('reconnecting', this.#onDown)
    // NB: a client we own keeps a listener: errors it emits while closing must not be printed as unhandled.
    if (!this.#owned) this.client.off('error', this.#onError)
    this.client.off('node error', this.#onNodeError)
    if (this.#owned) {
      try {
        await this.client.quit()
      } catch {
        // NB: quit on a dead connection rejects; disconnect() below closes the socket either way.
      }
      this.client.disconnect()
    }
  }
}

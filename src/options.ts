// User-facing options of TieredStore, their defaults in one place, and resolveOptions(), which validates
// every option (naming it in the error) and returns a fully resolved configuration.

import type { EncryptionOptions, ResolvedAtRest } from './at-rest/at-rest-options.js'
import { resolveAtRest } from './at-rest/at-rest-options.js'
import type { Clock } from './clock.js'
import { systemClock } from './clock.js'
import type { SessionObject } from './codec.js'
import type { MigrateOptions, ResolvedMigrate } from './migrate/migrate-options.js'
import { resolveMigrate } from './migrate/migrate-options.js'
import {
  checkKeys,
  fraction,
  integer,
  invalid,
  lifetimeFraction,
  MAX_TIMER_MS,
  oneOf,
  plainObject,
} from './option-checks.js'
import type { RedisClientLike } from './redis/connection.js'

/** The memory tier's byte budget and the spiller's watermarks. */
export interface MemoryOptions {
  /**
   * Most bytes of serialized session payload (UTF-8) the memory tier may hold.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
  /**
   * Fraction of {@link MemoryOptions.maxBytes} above which the spiller starts moving sessions down.
   * @default 0.8
   */
  highWatermark?: number
  /**
   * Fraction of {@link MemoryOptions.maxBytes} the spiller brings the memory tier down to.
   * @default 0.6
   */
  lowWatermark?: number
}

/** The SQLite disk tier. */
export interface DiskOptions {
  /**
   * Path of the SQLite database file. Its directory is created with mode 0700, the file with 0600.
   * @default './.sessions/sessions.db'
   */
  path?: string
  /**
   * SQLite `synchronous` setting. `'normal'` (with WAL) survives a crash or `kill -9` of the app;
   * `'full'` also survives a power loss, at the cost of an fsync per group commit.
   * @default 'normal'
   */
  synchronous?: 'normal' | 'full'
  /**
   * Most writes committed in one transaction (group commit); a full batch commits at once.
   * @default 1000
   */
  maxBatchSize?: number
  /**
   * Largest the database file may grow, in bytes. A write that would need more fails with TS_DISK_IO and
   * is not acknowledged; writes succeed again once the sweep has freed space.
   * @default undefined (no limit but the disk's)
   */
  maxBytes?: number
}

/** Redis, for shared mode. Give `url` or `client`. */
export interface RedisOptions {
  /** A `redis://` or `rediss://` URL; the store creates (and closes) its own ioredis client. */
  url?: string
  /**
   * An ioredis 5 or 6 client the app created: `new Redis(...)` (single node or Sentinel) or `new Cluster(...)`.
   * The store uses it (and a duplicate for pub/sub) and never closes it.
   */
  client?: RedisClientLike
  /**
   * Longest a request waits for Redis, in milliseconds; past it Redis counts as down.
   * @default 500
   */
  commandTimeout?: number
  /**
   * Longest a local copy (memory or disk) is served without checking its version in Redis, in
   * milliseconds: a last bound on staleness should an invalidation be lost unnoticed (a lost subscriber is
   * noticed within 3 s by its heartbeat, and then every copy is checked again).
   * @default 300000 (5 minutes)
   */
  localTtlMs?: number
  /**
   * Pub/sub channel of invalidations between instances.
   * @default `${prefix}invalidations` (with the prefix's trailing ':' kept)
   */
  channel?: string
  /**
   * How instances hear of each other's writes: `'tracking'` (Redis's client tracking: only instances that hold a
   * copy are told) or `'channel'` (every write published to every instance). Tracking falls back to the channel
   * on Redis Cluster and where CLIENT TRACKING is refused; `stats().redis.invalidation` says which is used.
   * @default 'tracking'
   */
  invalidation?: 'tracking' | 'channel'
  /**
   * Longest a command waits, while the store's first connection to Redis is still being made, for that
   * connection, in milliseconds; past it (or once Redis has been reached) a command fails fast as during an
   * outage. `store.ready()` waits at most this long too.
   * @default 2000
   */
  connectTimeout?: number
  /**
   * Replicas that must confirm each write (Redis `WAIT`, bounded by `commandTimeout`) before it counts as
   * written; a write they do not confirm stays in the outbox and is replayed. 0 does not wait.
   * @default 0
   */
  waitForReplicas?: number
}

/** Options of {@link TieredStore}. Every field is optional; no options at all gives local mode. */
export interface TieredStoreOptions {
  /** The memory tier. */
  memory?: MemoryOptions
  /**
   * The disk tier. In shared mode it is a spill cache and the outbox of writes Redis has not acknowledged;
   * `false` (only with `redis`) runs without it, so writes fail with TS_REDIS_UNAVAILABLE while Redis is down.
   */
  disk?: DiskOptions | false
  /** Redis: shared mode. Absent: local mode. */
  redis?: RedisOptions
  /**
   * Redis key prefix.
   * @default 'sess:'
   */
  prefix?: string
  /**
   * Lifetime in **seconds** of a session whose cookie has no `expires`, or a function of the session
   * returning seconds.
   * @default 86400
   */
  ttl?: number | ((session: SessionObject) => number)
  /**
   * Largest serialized session accepted, in bytes; larger ones are refused with TS_SESSION_TOO_LARGE.
   * @default 1048576 (1 MiB)
   */
  maxSessionBytes?: number
  /**
   * Interval of the spiller's background cycle, in milliseconds.
   * @default 1000
   */
  spillIntervalMs?: number
  /**
   * Interval of the background sweep that deletes expired sessions, in milliseconds.
   * @default 60000
   */
  sweepIntervalMs?: number
  /**
   * Most expired rows deleted per sweep transaction.
   * @default 1000
   */
  sweepBatchSize?: number
  /**
   * Fraction of a session's lifetime: a `touch` of a session saved less than that long ago does nothing (the
   * store-level touch throttle; connect-mongo's `touchAfter` in spirit). 0 makes every touch count.
   * @default 0
   */
  touchAfter?: number
  /**
   * The user a session belongs to, for {@link TieredStore.listByUser} and {@link TieredStore.destroyByUser}.
   * @default (sess) => sess.userId ?? sess.passport?.user
   */
  userId?: (session: SessionObject) => unknown
  /**
   * Time source (milliseconds since the epoch). Tests inject a manual clock.
   * @default Date.now
   */
  clock?: Clock
  /** Shared mode: serve and convert the sessions connect-redis wrote (see {@link MigrateOptions}). */
  migrate?: MigrateOptions
  /**
   * Every tier stores and looks up a session under SHA-256 of its id, so a dump (the SQLite file, an RDB file)
   * holds no id a cookie could carry. Sessions stored under plain ids (0.1.0, or `hashIds: false`) are still
   * found and moved. Must be false with `migrate`.
   * @default true (false with `migrate`)
   */
  hashIds?: boolean
  /** AES-256-GCM of the payloads stored in SQLite (sessions and outbox) and Redis. Absent: stored as JSON. */
  encryption?: EncryptionOptions
  /**
   * Absolute lifetime in **seconds** from a session's creation (or a function of the session returning
   * seconds): however active, a session expires then. Absent: no absolute lifetime.
   * @default undefined
   */
  maxLifetime?: number | ((session: SessionObject) => number)
}

/** Fully resolved options; every field has its value. */
export interface ResolvedOptions {
  readonly memory: {
    readonly maxBytes: number
    readonly highWatermark: number
    readonly lowWatermark: number
  }
  readonly disk: {
    readonly path: string
    readonly synchronous: 'normal' | 'full'
    readonly maxBatchSize: number
    readonly maxBytes: number | undefined
  } | null
  readonly redis: {
    readonly url: string | undefined
    readonly client: RedisClientLike | undefined
    readonly commandTimeoutMs: number
    readonly connectTimeoutMs: number
    readonly waitForReplicas: number
    readonly localTtlMs: number
    readonly channel: string
    readonly invalidation: 'tracking' | 'channel'
  } | null
  readonly prefix: string
  readonly ttlSeconds: (session: SessionObject) => number
  readonly maxSessionBytes: number
  readonly spillIntervalMs: number
  readonly sweepIntervalMs: number
  readonly sweepBatchSize: number
  readonly touchAfter: number
  readonly userId: (session: SessionObject) => unknown
  readonly clock: Clock
  readonly migrate: ResolvedMigrate | null
  /** `hashIds`, `encryption`, `maxLifetime`. */
  readonly atRest: ResolvedAtRest
}

/** Every default, in one place. */
export const defaults = {
  memory: { maxBytes: 64 * 1024 * 1024, highWatermark: 0.8, lowWatermark: 0.6 },
  disk: { path: './.sessions/sessions.db', synchronous: 'normal', maxBatchSize: 1000 },
  prefix: 'sess:',
  ttl: 86_400,
  maxSessionBytes: 1024 * 1024,
  spillIntervalMs: 1000,
  sweepIntervalMs: 60_000,
  sweepBatchSize: 1000,
  touchAfter: 0,
  redis: {
    commandTimeout: 500,
    connectTimeout: 2000,
    waitForReplicas: 0,
    localTtlMs: 300_000,
    invalidation: 'tracking',
  },
} as const

/** `sess.userId ?? sess.passport?.user`. */
export function defaultUserId(session: SessionObject): unknown {
  const passport = session.passport as { user?: unknown } | undefined
  return session.userId ?? (passport !== null && typeof passport === 'object' ? passport.user : undefined)
}

function resolveRedis(input: unknown, prefix: string): ResolvedOptions['redis'] {
  const redis = plainObject(input, 'redis')
  if (redis === undefined) return null
  checkKeys(
    redis,
    [
      'url',
      'client',
      'commandTimeout',
      'connectTimeout',
      'waitForReplicas',
      'localTtlMs',
      'channel',
      'invalidation',
    ],
    'redis',
  )
  const { url, client } = redis
  if ((url === undefined) === (client === undefined))
    throw invalid('redis', 'an object with either `url` or `client`')
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw invalid('redis.url', 'a redis:// or rediss:// URL')
  }
  if (
    client !== undefined &&
    (client === null ||
      typeof client !== 'object' ||
      typeof (client as RedisClientLike).evalsha !== 'function' ||
      typeof (client as RedisClientLike).duplicate !== 'function')
  ) {
    throw invalid('redis.client', 'an ioredis Redis or Cluster instance')
  }
  const commandTimeoutMs = integer(
    redis.commandTimeout,
    'redis.commandTimeout',
    1,
    defaults.redis.commandTimeout,
    MAX_TIMER_MS,
  )
  const connectTimeoutMs = integer(
    redis.connectTimeout,
    'redis.connectTimeout',
    0,
    defaults.redis.connectTimeout,
    MAX_TIMER_MS,
  )
  const waitForReplicas = integer(
    redis.waitForReplicas,
    'redis.waitForReplicas',
    0,
    defaults.redis.waitForReplicas,
  )
  const localTtlMs = integer(redis.localTtlMs, 'redis.localTtlMs', 0, defaults.redis.localTtlMs)
  const channel = redis.channel ?? `${prefix}invalidations`
  if (typeof channel !== 'string' || channel === '') throw invalid('redis.channel', 'a non-empty string')
  const invalidation = oneOf<'tracking' | 'channel'>(
    redis.invalidation,
    'redis.invalidation',
    ['tracking', 'channel'],
    defaults.redis.invalidation,
    "'tracking' or 'channel'",
  )
  return {
    url: url as string | undefined,
    client: client as RedisClientLike | undefined,
    commandTimeoutMs,
    connectTimeoutMs,
    waitForReplicas,
    localTtlMs,
    channel,
    invalidation,
  }
}

/** Validates user options and fills in the defaults. Throws TS_INVALID_OPTION naming the bad option. */
export function resolveOptions(input: TieredStoreOptions = {}): ResolvedOptions {
  const options = plainObject(input, 'options') ?? {}
  checkKeys(
    options,
    [
      'memory',
      'disk',
      'redis',
      'prefix',
      'ttl',
      'maxSessionBytes',
      'spillIntervalMs',
      'sweepIntervalMs',
      'sweepBatchSize',
      'touchAfter',
      'userId',
      'clock',
      'migrate',
      'hashIds',
      'encryption',
      'maxLifetime',
    ],
    '',
  )

  const memoryIn = plainObject(options.memory, 'memory') ?? {}
  checkKeys(memoryIn, ['maxBytes', 'highWatermark', 'lowWatermark'], 'memory')
  const maxBytes = integer(memoryIn.maxBytes, 'memory.maxBytes', 1024, defaults.memory.maxBytes)
  const highWatermark = fraction(
    memoryIn.highWatermark,
    'memory.highWatermark',
    defaults.memory.highWatermark,
  )
  const lowWatermark = fraction(memoryIn.lowWatermark, 'memory.lowWatermark', defaults.memory.lowWatermark)
  if (lowWatermark >= highWatermark) {
    throw invalid('memory.lowWatermark', 'below memory.highWatermark')
  }

  const prefix = options.prefix ?? defaults.prefix
  if (typeof prefix !== 'string') throw invalid('prefix', 'a string')

  const redis = resolveRedis(options.redis, prefix)
  const migrate = resolveMigrate(options.migrate, prefix, redis !== null)
  if (options.disk === false && redis === null)
    throw invalid('disk', 'an object (`disk: false` needs `redis`)')
  // NB: `disk: false` (shared mode without a disk tier) is no object to read settings from.
  const diskIn = options.disk === false ? {} : (plainObject(options.disk, 'disk') ?? {})
  checkKeys(diskIn, ['path', 'synchronous', 'maxBatchSize', 'maxBytes'], 'disk')
  const path = diskIn.path ?? defaults.disk.path
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw invalid('disk.path', 'a non-empty file path')
  }
  const synchronous = oneOf<'normal' | 'full'>(
    diskIn.synchronous,
    'disk.synchronous',
    ['normal', 'full'],
    defaults.disk.synchronous,
    "'normal' or 'full'",
  )
  const maxBatchSize = integer(diskIn.maxBatchSize, 'disk.maxBatchSize', 1, defaults.disk.maxBatchSize)
  const diskMaxBytes =
    diskIn.maxBytes === undefined ? undefined : integer(diskIn.maxBytes, 'disk.maxBytes', 65_536, 0)

  const ttl = options.ttl ?? defaults.ttl
  let ttlSeconds: (session: SessionObject) => number
  if (typeof ttl === 'number') {
    if (!Number.isFinite(ttl) || ttl <= 0) throw invalid('ttl', 'a number of seconds > 0, or a function')
    ttlSeconds = () => ttl
  } else if (typeof ttl === 'function') {
    ttlSeconds = ttl as (session: SessionObject) => number
  } else {
    throw invalid('ttl', 'a number of seconds > 0, or a function')
  }

  const maxSessionBytes = integer(options.maxSessionBytes, 'maxSessionBytes', 1, defaults.maxSessionBytes)
  const spillIntervalMs = integer(
    options.spillIntervalMs,
    'spillIntervalMs',
    1,
    defaults.spillIntervalMs,
    MAX_TIMER_MS,
  )
  const sweepIntervalMs = integer(
    options.sweepIntervalMs,
    'sweepIntervalMs',
    1,
    defaults.sweepIntervalMs,
    MAX_TIMER_MS,
  )
  const sweepBatchSize = integer(options.sweepBatchSize, 'sweepBatchSize', 1, defaults.sweepBatchSize)
  const touchAfter = lifetimeFraction(options.touchAfter, 'touchAfter', defaults.touchAfter)

  const userId = options.userId ?? defaultUserId
  if (typeof userId !== 'function') throw invalid('userId', 'a function (session) => user id')

  const clock = options.clock ?? systemClock
  if (clock === null || typeof clock !== 'object' || typeof (clock as Clock).now !== 'function') {
    throw invalid('clock', 'an object with a now() method returning milliseconds')
  }

  return {
    memory: { maxBytes, highWatermark, lowWatermark },
    disk: options.disk === false ? null : { path, synchronous, maxBatchSize, maxBytes: diskMaxBytes },
    redis,
    prefix,
    ttlSeconds,
    maxSessionBytes,
    spillIntervalMs,
    sweepIntervalMs,
    sweepBatchSize,
    touchAfter,
    userId: userId as (session: SessionObject) => unknown,
    clock: clock as Clock,
    migrate,
    atRest: resolveAtRest(options, migrate),
  }
}

// The parts shared mode adds to the engine: the Redis connection and tier (the authority), the coherence
// tracker with its invalidation channel, and the outbox (only with a disk tier to keep it in).

import { randomUUID } from 'node:crypto'
import { Coherence } from '../coherence.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import { invalid } from '../option-checks.js'
import type { ResolvedOptions } from '../options.js'
import { Outbox } from '../outbox.js'
import type { StatusChange } from '../redis/connection.js'
import { RedisConnection } from '../redis/connection.js'
import { LegacySessions } from '../redis/legacy-sessions.js'
import { RedisTier } from '../redis/redis-tier.js'
import { userIdOf } from '../session-fields.js'
import type { Counters } from '../stats.js'
import type { DiskTier } from '../tiers/disk-tier.js'
import type { MemoryTier } from '../tiers/memory-tier.js'
import type { ManagerEvents } from './engine.js'

/** Shared mode's parts. */
export interface SharedParts {
  readonly connection: RedisConnection
  readonly redis: RedisTier
  readonly coherence: Coherence
  /** Null with `disk: false`: writes then fail while Redis is down. */
  readonly outbox: Outbox | null
}

/** What the parts report to, and the local copies they keep in step. */
export interface SharedHooks {
  readonly memory: MemoryTier
  readonly disk: DiskTier | null
  readonly counters: Counters
  readonly events: ManagerEvents
  readonly report: (error: TieredSessionError) => void
  /** Drops the disk cache's copy of a session (unless the outbox holds it). */
  readonly dropCopy: (sid: string) => void
}

/** Connects shared mode's parts; the outbox replays on every (re)connection. */
export function connectShared(options: ResolvedOptions, hooks: SharedHooks): SharedParts {
  const redis = options.redis
  if (redis === null) throw new Error('shared mode needs redis options')
  const { memory, disk, counters, events, report } = hooks
  // NB: a script cannot mirror to connect-redis's key on another Cluster slot, and without one script the
  // mirror could overwrite a change an old instance made between our write and our mirror.
  if (options.migrate?.dualWrite && typeof redis.client?.nodes === 'function')
    throw invalid('migrate.dualWrite', 'false on Redis Cluster (its keys live on other slots)')
  const connection = new RedisConnection({
    ...(redis.url === undefined ? {} : { url: redis.url }),
    ...(redis.client === undefined ? {} : { client: redis.client }),
    commandTimeoutMs: redis.commandTimeoutMs,
    connectTimeoutMs: redis.connectTimeoutMs,
  })
  const origin = randomUUID()
  const tier = new RedisTier({
    connection,
    prefix: options.prefix,
    channel: redis.channel,
    origin,
    clock: options.clock,
    replicas: redis.waitForReplicas,
    report,
    sealer: options.atRest.sealer,
    // NB: half the command timeout, the other half for the reply: a slow confirmation is a shortfall (the outbox
    // keeps the write), not an outage. WAIT blocks the connection: with 100 ms left (before), a command queued
    // behind it, or its own late reply, under a busy event loop made Redis look hung.
    confirmTimeoutMs: Math.max(1, Math.floor(redis.commandTimeoutMs / 2)),
    legacy:
      options.migrate === null
        ? undefined
        : new LegacySessions({
            connection,
            prefix: options.migrate.prefix,
            ourPrefix: options.prefix,
            dualWrite: options.migrate.dualWrite,
            clock: options.clock,
            userIdOf: (session) => userIdOf(session, options),
          }),
  })
  const outbox =
    disk === null
      ? null
      : new Outbox({
          log: disk.outboxLog,
          redis: tier,
          isUp: () => connection.up,
          settleMs: redis.commandTimeoutMs,
          clock: options.clock,
          report,
          onStale: (sid) => memory.delete(sid),
        })
  const coherence = new Coherence({
    connection,
    channel: redis.channel,
    origin,
    mode: redis.invalidation,
    sidOf: (key) =>
      key.startsWith(options.prefix) && !tier.isIndexKey(key) ? key.slice(options.prefix.length) : undefined,
    // NB: dualWrite: instances still on connect-redis never announce their writes: every read checks Redis.
    localTtlMs: options.migrate?.dualWrite ? 0 : redis.localTtlMs,
    clock: options.clock,
    memory,
    dropCopy: hooks.dropCopy,
    onInvalidation: () => {
      counters.invalidations++
      events.invalidation?.()
    },
    onLive: (live) => events.coherence?.(live),
    onGarbage: () => counters.countError(ErrorCodes.DECODE_FAILED),
  })
  connection.on('status', ({ status, previous }: StatusChange) => {
    if (status === 'ready') {
      events.connect?.()
      outbox?.replay()
      // NB: closing the store is no outage: express-session must not hear of one.
    } else if (previous === 'ready' && status !== 'closed') events.disconnect?.()
  })
  connection.on('client-error', () => counters.countError(ErrorCodes.REDIS_UNAVAILABLE))
  connection.on('ended', () =>
    report(
      new TieredSessionError(
        ErrorCodes.REDIS_UNAVAILABLE,
        'the Redis client ended and will not reconnect (its retryStrategy gave up, or it was closed by the app)',
      ),
    ),
  )
  if (connection.up) outbox?.replay()
  return { connection, redis: tier, coherence, outbox }
}

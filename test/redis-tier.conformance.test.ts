// The Tier contract on the Redis tier — a single node, a 3-master Cluster, and an ioredis 5 client — with the
// Redis tier's own cases: the version check the read path uses, the outbox replay's conditional write, the
// tombstone a destroy leaves, a compare-and-set that keeps losing (TS_WRITE_CONFLICT), and values not ours.

import { once } from 'node:events'
import { Cluster } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { RedisConnection } from '../src/redis/connection.js'
import { RedisTier } from '../src/redis/redis-tier.js'
import type { TierFixture } from './conformance/tier-conformance.js'
import { runTierConformance } from './conformance/tier-conformance.js'
import { ManualClock } from './helpers/manual-clock.js'
import { useCluster, useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'

const HOUR = 3_600_000

interface RedisFixture extends TierFixture<RedisTier> {
  connection: RedisConnection
  prefix: string
  /** Another writer on the same keys (another instance), on the same connection. */
  other: RedisTier
}

async function redisFixture(connection: RedisConnection, testOwnsClient = false): Promise<RedisFixture> {
  while (!connection.up) await once(connection, 'status')
  // NB: Redis expires keys on its own clock; start ours a minute ahead so only our clock decides in tests.
  const clock = new ManualClock(Date.now() + 60_000)
  const prefix = uniquePrefix('conf')
  const make = (origin: string) =>
    new RedisTier({ connection, prefix, channel: 'conformance', origin, clock })
  const tier = make('me')
  return {
    tier,
    clock,
    connection,
    prefix,
    other: make('other'),
    close: async () => {
      await tier.clear()
      await connection.close()
      // A client the test passed in is the test's to close.
      if (testOwnsClient) await connection.client.quit()
    },
  }
}

/** The Redis tier's own cases. */
function redisExtras(open: () => Promise<TierFixture<RedisTier>>): void {
  const openRedis = () => open() as Promise<RedisFixture>

  it('reports the stored version for the read path, and none for a missing or destroyed session', async () => {
    const { tier, clock } = await openRedis()
    const stored = await tier.write('s', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
    expect(await tier.version('s')).toBe(stored.version)
    expect(await tier.version('never')).toBeUndefined()
    await tier.delete('s')
    expect(await tier.version('s')).toBeUndefined()
  })

  it('replays an outbox write only over an older version, never over a tombstone', async () => {
    const { tier, clock } = await openRedis()
    const stored = await tier.write('s', {
      payload: '{"live":1}',
      expiresAt: clock.now() + HOUR,
      userId: null,
    })
    const replay = (version: number) =>
      tier.setIfNewer('s', {
        payload: '{"replayed":1}',
        expiresAt: clock.now() + HOUR,
        userId: null,
        version,
      })
    expect(await replay(stored.version - 1)).toBe(false)
    expect((await tier.get('s'))?.payload).toBe('{"live":1}')
    expect(await replay(stored.version + 1)).toBe(true)
    expect((await tier.get('s'))?.payload).toBe('{"replayed":1}')
    await tier.delete('s')
    expect(await replay(Number.MAX_SAFE_INTEGER)).toBe(false)
    expect(await tier.get('s')).toBeUndefined()
  })

  it('gives up with TS_WRITE_CONFLICT when another writer wins every compare-and-set', async () => {
    const { tier, other, clock } = await openRedis()
    await tier.write('hot', { payload: '{"n":0}', expiresAt: clock.now() + HOUR, userId: null })
    let calls = 0
    const update = tier.update('hot', (current) => {
      calls++
      // Another instance writes the session between our read and our compare-and-set, every time.
      void other.write('hot', { payload: `{"other":${calls}}`, expiresAt: clock.now() + HOUR, userId: null })
      return { ...current, payload: '{"mine":1}' }
    })
    await expect(update).rejects.toMatchObject({ code: 'TS_WRITE_CONFLICT' })
    expect(calls).toBe(32)
    expect((await tier.get('hot'))?.payload).toBe('{"other":32}')
  })

  it('treats a key holding a value that is not ours as corrupt: a decode error, left out of listings', async () => {
    const { tier, connection, prefix, clock } = await openRedis()
    await tier.write('good', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
    await connection.run('a test write', (c) => c.sadd(`${prefix}garbage`, 'x'))
    await expect(tier.get('garbage')).rejects.toMatchObject({ code: 'TS_DECODE_FAILED' })
    const errors: TieredSessionError[] = []
    expect((await tier.rows((e) => errors.push(e))).map((r) => r.sid)).toEqual(['good'])
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
    // A write replaces the garbage.
    await tier.write('garbage', { payload: '{"ok":1}', expiresAt: clock.now() + HOUR, userId: null })
    expect((await tier.get('garbage'))?.payload).toBe('{"ok":1}')
  })
}

describe('on a single Redis node', () => {
  const redis = useRedis()
  runTierConformance(
    'redis',
    () =>
      redisFixture(new RedisConnection({ url: redis.url, commandTimeoutMs: 2000, connectTimeoutMs: 2000 })),
    {
      sweeps: false,
      extras: redisExtras,
    },
  )
})

describe('on a 3-master Redis Cluster', () => {
  const cluster = useCluster()
  runTierConformance(
    'redis cluster',
    () =>
      redisFixture(
        new RedisConnection({
          client: new Cluster(cluster.nodes, { enableOfflineQueue: true }) as never,
          commandTimeoutMs: 2000,
          connectTimeoutMs: 2000,
        }),
        true,
      ),
    { sweeps: false, extras: redisExtras },
  )
})

describe('with an ioredis 5 client', () => {
  const redis = useRedis()
  runTierConformance(
    'redis (ioredis 5)',
    () =>
      redisFixture(
        new RedisConnection({
          client: new Redis5(redis.url) as never,
          commandTimeoutMs: 2000,
          connectTimeoutMs: 2000,
        }),
        true,
      ),
    { sweeps: false, extras: redisExtras },
  )
})

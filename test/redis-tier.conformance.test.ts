import { once } from 'node:events'
import { Cluster } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { describe } from 'vitest'
import { RedisConnection } from '../src/redis/connection.js'
import { RedisTier } from '../src/redis/redis-tier.js'
import { runTierConformance } from './conformance/tier-conformance.js'
import { ManualClock } from './helpers/manual-clock.js'
import { useCluster, useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'

async function redisFixture(connection: RedisConnection, testOwnsClient = false) {
  while (!connection.up) await once(connection, 'status')
  // NB: Redis expires keys on its own clock; start ours a minute ahead so only our clock decides in tests.
  const clock = new ManualClock(Date.now() + 60_000)
  const tier = new RedisTier({
    connection,
    prefix: uniquePrefix('conf'),
    channel: 'conformance',
    origin: 'me',
    clock,
  })
  return {
    tier,
    clock,
    close: async () => {
      await tier.clear()
      await connection.close()
      // A client the test passed in is the test's to close.
      if (testOwnsClient) await connection.client.quit()
    },
  }
}

describe('on a single Redis node', () => {
  const redis = useRedis()
  runTierConformance('redis', () =>
    redisFixture(new RedisConnection({ url: redis.url, commandTimeoutMs: 2000 })),
  )
})

describe('on a 3-master Redis Cluster', () => {
  const cluster = useCluster()
  runTierConformance('redis cluster', () =>
    redisFixture(
      new RedisConnection({
        client: new Cluster(cluster.nodes, { enableOfflineQueue: true }) as never,
        commandTimeoutMs: 2000,
      }),
      true,
    ),
  )
})

describe('with an ioredis 5 client', () => {
  const redis = useRedis()
  runTierConformance('redis (ioredis 5)', () =>
    redisFixture(
      new RedisConnection({ client: new Redis5(redis.url) as never, commandTimeoutMs: 2000 }),
      true,
    ),
  )
})

import { once } from 'node:events'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { SentinelProcess } from './helpers/redis-sentinel.js'
import { startSentinel } from './helpers/redis-sentinel.js'
import { useRedis } from './helpers/redis-server.js'
import { readUntilTracked, sharedSession, sharedStoresWithClients } from './helpers/shared-stores.js'

describe('shared mode through Redis Sentinel', () => {
  const master = useRedis()
  let sentinel: SentinelProcess | undefined
  beforeAll(async () => {
    sentinel = await startSentinel(master.port)
  })
  afterAll(async () => {
    await sentinel?.stop()
  })

  it('works with an ioredis client that finds the master through Sentinel', async () => {
    const { open, clock } = sharedStoresWithClients(
      () => new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel?.port ?? 0 }], name: 'mymaster' }),
    )
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), 60_000, { v: 1 }))
    expect(await readUntilTracked(b, 's')).toMatchObject({ v: 1 })
    const invalidated = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), 60_000, { v: 2 }))
    await invalidated
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })
})

// Shared mode without a disk tier (`disk: false`): sessions live in Redis and memory only; with Redis down a
// write fails with TS_REDIS_UNAVAILABLE (no outbox to take it) instead of being acknowledged.

import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('shared mode with disk: false', () => {
  const redis = useRedis()

  it('works through Redis; with Redis down a write is refused, not acknowledged', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: 200 }))
    const a = await open('a', { disk: false })
    const b = await open('b', { disk: false })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    expect(a.stats().disk).toBeNull()
    a.on('error', () => undefined)
    await redis.server.kill9()
    if (engineOf(a).connected) await once(a, 'disconnect')
    await expect(a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))).rejects.toMatchObject({
      code: 'TS_REDIS_UNAVAILABLE',
    })
    expect(a.stats().outbox).toBe(0)
    await redis.server.restart()
  })
})

// Shared mode: a touch collected before a set or a destroy of the same session is never sent (Redis would refuse
// it: the write gave the session a newer version, the destroy a tombstone). Counted on a redis-server of the
// test's own, in its INFO commandstats.

import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { parseInfo, useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('touches superseded by a data write (shared mode)', () => {
  const redis = useRedis()

  it('a set or a destroy drops the touch collected before it; a touch after the set is still sent', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    const client = new Redis(redis.url)
    onTestFinished(() => client.disconnect())
    const scripts = async () =>
      Number(
        /calls=(\d+)/.exec(parseInfo(await client.info('commandstats')).get('cmdstat_evalsha') ?? '')?.[1] ??
          0,
      )
    await store.set('kept', sharedSession(clock.now(), HOUR, { n: 1 }))
    await store.set('gone', sharedSession(clock.now(), HOUR, { n: 1 }))
    const before = await scripts()
    clock.advance(60_000)
    await store.touch('kept', sharedSession(clock.now(), HOUR, { n: 1 }))
    await store.touch('gone', sharedSession(clock.now(), HOUR, { n: 1 }))
    expect(await scripts()).toBe(before)
    // The set writes its own cookie and expiry; the destroy a tombstone: neither touch goes out.
    await store.set('kept', sharedSession(clock.now(), HOUR, { n: 2 }))
    await store.destroy('gone')
    await store.flush()
    expect(await scripts()).toBe(before + 2)
    // A touch of the version the set made is sent on flush().
    clock.advance(60_000)
    await store.touch('kept', sharedSession(clock.now(), HOUR, { n: 2 }))
    await store.flush()
    expect(await scripts()).toBe(before + 3)
    expect(await store.get('kept')).toMatchObject({ n: 2 })
    expect(await store.get('gone')).toBeUndefined()
    expect(store.stats().errors).toEqual({})
  })
})

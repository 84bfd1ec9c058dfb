import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { commandStats, useRedis } from './helpers/redis-server.js'
import { engineOf, readUntilTracked, sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('two instances on one Redis', () => {
  const redis = useRedis()

  it('B serves its cached copy without a Redis round trip, and the new value once A writes', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await readUntilTracked(b, 's')).toMatchObject({ v: 1 })
    const redisHits = b.stats().hits.redis
    const memoryHits = b.stats().hits.memory
    expect(await b.get('s')).toMatchObject({ v: 1 })
    expect(b.stats().hits.redis).toBe(redisHits)
    expect(b.stats().hits.memory).toBe(memoryHits + 1)

    const invalidated = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await invalidated
    expect(await b.get('s')).toMatchObject({ v: 2 })

    const destroyed = once(b, 'invalidation')
    await a.destroy('s')
    await destroyed
    expect(await b.get('s')).toBeUndefined()
  })

  it('tracking: Redis tracks a session for an instance only once a read there found its copy still current', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    const delivered = () => engineOf(b).invalidationsDelivered()
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    // B reads the session once, as behind a load balancer without sticky sessions: Redis does not tell B.
    expect(await b.get('s')).toMatchObject({ v: 1 })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await delivered()
    expect(b.stats().invalidations).toBe(0)
    // Its next read finds its copy stale (the session changes more often than B reads it): still not tracked.
    const redisHits = b.stats().hits.redis
    expect(await b.get('s')).toMatchObject({ v: 2 })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 3 }))
    await delivered()
    expect(b.stats().invalidations).toBe(0)
    // Two reads in a row: the second finds the copy current, so the third (a version check) is tracked, and the
    // copy is trusted: the fourth is served from memory.
    expect(await b.get('s')).toMatchObject({ v: 3 })
    expect(await b.get('s')).toMatchObject({ v: 3 })
    expect(b.stats().hits.redis).toBe(redisHits + 3)
    expect(await b.get('s')).toMatchObject({ v: 3 })
    expect(await b.get('s')).toMatchObject({ v: 3 })
    expect(b.stats().hits.redis).toBe(redisHits + 3)
    let invalidated = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 4 }))
    await invalidated
    // The invalidation dropped B's copy; B used the session, so its next read is tracked at once.
    expect(await b.get('s')).toMatchObject({ v: 4 })
    invalidated = once(b, 'invalidation')
    await a.destroy('s')
    await invalidated
    expect(await b.get('s')).toBeUndefined()
    expect(b.stats().invalidations).toBe(2)
  })

  for (const invalidation of ['tracking', 'channel'] as const) {
    it(`${invalidation}: a randomized run of mixed operations across both instances has zero stale reads`, async () => {
      const { open, clock } = sharedStores(() => ({ url: redis.url, invalidation }))
      const a = await open('a', { memory: { maxBytes: 16 * 1024 } })
      const b = await open('b', { memory: { maxBytes: 16 * 1024 } })
      const stores = [a, b]
      expect(a.stats().redis?.invalidation).toBe(invalidation)
      const model = new Map<string, number>()
      let seed = 20261127
      const random = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        return seed % n
      }
      let stale = 0
      let reads = 0
      for (let step = 0; step < 3000; step++) {
        const sid = `s${random(40)}`
        const writer = stores[random(2)]
        const op = random(10)
        if (op < 4) {
          const v = step
          await writer?.set(sid, sharedSession(clock.now(), HOUR, { v, pad: 'x'.repeat(random(400)) }))
          model.set(sid, v)
        } else if (op < 5) {
          await writer?.destroy(sid)
          model.delete(sid)
        } else {
          // Let every invalidation sent so far arrive, then read from either instance.
          await Promise.all(stores.map((store) => engineOf(store).invalidationsDelivered()))
          const got = (await stores[random(2)]?.get(sid)) as { v?: number } | undefined
          reads++
          if ((got?.v ?? null) !== (model.get(sid) ?? null)) stale++
        }
      }
      expect(reads).toBeGreaterThan(1000)
      expect(stale).toBe(0)
      // The near cache did its job: most reads never went to Redis.
      const hits = a.stats().hits.memory + b.stats().hits.memory + a.stats().hits.disk + b.stats().hits.disk
      expect(hits).toBeGreaterThan(reads / 4)
      expect(engineOf(a).coherent && engineOf(b).coherent).toBe(true)
    })
  }

  it('16 instances read and write the same sessions: once its invalidation is delivered, none serves a stale copy; each write reaches only the instances that hold a copy', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const stores = await Promise.all(Array.from({ length: 16 }, (_, i) => open(`i${i}`)))
    const model = new Map<string, number>()
    let seed = 7
    // NB: the high bits: the low bits of this generator repeat with a short period.
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return Math.floor((seed / 2 ** 31) * n)
    }
    let stale = 0
    let reads = 0
    let writes = 0
    for (let step = 0; step < 1500; step++) {
      const sid = `s${random(12)}`
      const store = stores[random(16)]
      if (random(4) === 0) {
        await store?.set(sid, sharedSession(clock.now(), HOUR, { v: step }))
        model.set(sid, step)
        writes++
      } else if (random(20) === 0) {
        await store?.destroy(sid)
        model.delete(sid)
        writes++
      } else {
        await Promise.all(stores.map((s) => engineOf(s).invalidationsDelivered()))
        const got = (await store?.get(sid)) as { v?: number } | undefined
        reads++
        if ((got?.v ?? null) !== (model.get(sid) ?? null)) stale++
      }
    }
    expect(reads).toBeGreaterThan(1000)
    expect(stale).toBe(0)
    // Tracking: an instance hears of a write only if it held a copy; never all 15 others for every write.
    const heard = stores.reduce((sum, s) => sum + s.stats().invalidations, 0)
    const hits = stores.reduce((sum, s) => sum + s.stats().hits.memory, 0)
    expect(hits).toBeGreaterThan(0)
    expect(heard).toBeGreaterThan(0)
    // Broadcast (the channel) would deliver every write to the 15 other instances.
    expect(heard).toBeLessThan((writes * 15) / 2)
    expect(stores.every((s) => s.stats().redis?.invalidation === 'tracking')).toBe(true)
  }, 60_000)
})

describe('a Redis without CLIENT TRACKING', () => {
  // NB: the command renamed away, as some managed services and proxies do.
  const redis = useRedis({ args: ['--rename-command', 'CLIENT', ''] })

  it('falls back to the published channel, says so in stats(), and stays coherent', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    expect(a.stats().redis).toEqual({ connected: true, invalidation: 'channel' })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    const heard = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await heard
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })
})

describe('a Redis whose ACL refuses CLIENT CACHING', () => {
  // NB: tracking is allowed, its opt-out is not: a read cannot ask Redis to forget it.
  const redis = useRedis({
    args: ['--user', 'default', 'on', 'nopass', '~*', '&*', '+@all', '-client|caching'],
  })

  it('reads stay correct, and the store stops asking after the first refusal', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    expect(b.stats().redis).toEqual({ connected: true, invalidation: 'tracking' })
    const errors: unknown[] = []
    b.on('error', (error) => errors.push(error))
    for (const sid of ['s1', 's2', 's3']) await a.set(sid, sharedSession(clock.now(), HOUR, { sid, v: 1 }))
    // B never read these: each read would go out untracked (CLIENT CACHING no); the first is refused.
    for (const sid of ['s1', 's2', 's3']) expect(await b.get(sid)).toMatchObject({ sid, v: 1 })
    await a.set('s1', sharedSession(clock.now(), HOUR, { sid: 's1', v: 2 }))
    expect(await readUntilTracked(b, 's1')).toMatchObject({ v: 2 })
    const stats = await commandStats(redis.port, 'client|caching')
    expect(stats).toMatchObject({ calls: 0, rejected_calls: 1 })
    expect(errors).toEqual([])
  })
})

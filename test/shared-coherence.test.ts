import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('two instances on one Redis', () => {
  const redis = useRedis()

  it('B serves its cached copy without a Redis round trip, and the new value once A writes', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    const redisHits = b.stats().hits.redis
    expect(await b.get('s')).toMatchObject({ v: 1 })
    expect(b.stats().hits.redis).toBe(redisHits)
    expect(b.stats().hits.memory).toBe(1)

    const invalidated = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await invalidated
    expect(await b.get('s')).toMatchObject({ v: 2 })

    const destroyed = once(b, 'invalidation')
    await a.destroy('s')
    await destroyed
    expect(await b.get('s')).toBeUndefined()
  })

  it('a randomized run of mixed operations across both instances has zero stale reads', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', { memory: { maxBytes: 16 * 1024 } })
    const b = await open('b', { memory: { maxBytes: 16 * 1024 } })
    const stores = [a, b]
    const model = new Map<string, number>()
    let seed = 20261127
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    let stale = 0
    let reads = 0
    let expected = 0
    const delivered = () => stores.reduce((sum, s) => sum + s.stats().invalidations, 0)
    for (let step = 0; step < 3000; step++) {
      const sid = `s${random(40)}`
      const writer = stores[random(2)]
      const op = random(10)
      if (op < 4) {
        const v = step
        await writer?.set(sid, sharedSession(clock.now(), HOUR, { v, pad: 'x'.repeat(random(400)) }))
        model.set(sid, v)
        expected++
      } else if (op < 5) {
        await writer?.destroy(sid)
        // Destroying what does not exist publishes nothing.
        if (model.delete(sid)) expected++
      } else {
        // Let every invalidation sent so far arrive, then read from either instance.
        if (delivered() < expected) {
          await new Promise<void>((resolve) => {
            const check = () => {
              if (delivered() < expected) return
              for (const store of stores) store.off('invalidation', check)
              resolve()
            }
            for (const store of stores) store.on('invalidation', check)
          })
        }
        const got = (await stores[random(2)]?.get(sid)) as { v?: number } | undefined
        reads++
        if ((got?.v ?? null) !== (model.get(sid) ?? null)) stale++
      }
    }
    expect(reads).toBeGreaterThan(1000)
    expect(stale).toBe(0)
    // The near cache did its job: most reads never went to Redis.
    const hits = a.stats().hits.memory + b.stats().hits.memory + a.stats().hits.disk + b.stats().hits.disk
    expect(hits).toBeGreaterThan(0)
    expect(engineOf(a).coherent && engineOf(b).coherent).toBe(true)
  })
})

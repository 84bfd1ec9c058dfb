import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { storedKey } from './helpers/handles.js'
import { commandCalls, redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, readUntilTracked, ready, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

const HOUR = 3_600_000

describe('the known races of client-side caching', () => {
  const redis = useRedis()

  it('an invalidation that overtakes the reply of a read in flight leaves no stale copy cached', async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b', { redis: { url: proxy.url } })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    // NB: B's reads are tracked from its third there; past redis.localTtlMs (5 minutes) its trusted copy is
    // checked again: a tracked version check.
    expect(await readUntilTracked(b, 's')).toMatchObject({ v: 1 })
    clock.advance(5 * 60_000 + 1)

    const hold = proxy.holdNextReply()
    const reading = b.get('s')
    // Redis has answered B's version check (v1); the answer is on its way (held by the proxy).
    await hold.held
    const invalidated = once(b, 'invalidation')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await invalidated
    hold.release()
    // The read began before the write: v1 is a fair answer to it, but it must not stay cached.
    expect(await reading).toMatchObject({ v: 1 })
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })

  it("an invalidation that overtakes the reply to this instance's own write leaves no stale copy cached", async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b', { redis: { url: proxy.url } })
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 0 }))

    const hold = proxy.holdNextReply()
    const writing = b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    await hold.held
    const invalidated = once(b, 'invalidation')
    clock.advance(1)
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    await invalidated
    hold.release()
    await writing
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })

  it('after the subscriber connection drops, nothing cached is served unverified', async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b', { redis: { url: proxy.url } })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    // B trusts its copy: served without Redis.
    expect(await readUntilTracked(b, 's')).toMatchObject({ v: 1 })
    const redisHits = b.stats().hits.redis
    expect(await b.get('s')).toMatchObject({ v: 1 })
    expect(b.stats().hits.redis).toBe(redisHits)

    // The subscriber drops and cannot come back yet: A's invalidation is lost.
    const stall = proxy.stallNewConnections()
    const lost = once(b, 'coherence')
    proxy.dropSubscribers()
    expect((await lost)[0]).toEqual({ live: false })
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    expect(await b.get('s')).toMatchObject({ v: 2 })

    stall.release()
    await ready(b)
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 3 }))
    expect(await b.get('s')).toMatchObject({ v: 3 })
  })

  it('a half-open subscriber connection is noticed by its heartbeat within 3 s: a missed invalidation is then caught by the version check', async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock } = sharedStores(() => ({ url: proxy.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    proxy.blackholeSubscribers()
    const noticed = once(b, 'coherence')
    const started = performance.now()
    // The invalidation of this write goes into the black hole.
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 2 }))
    expect((await noticed)[0]).toEqual({ live: false })
    // NB: the bound is 3 s (two missed PINGs a second apart, plus up to one interval before the first); the
    // rest is slack for a loaded machine.
    expect(performance.now() - started).toBeLessThan(5000)
    expect(await b.get('s')).toMatchObject({ v: 2 })
    await ready(b)
  })

  it("tracking: a FLUSHDB (on this test's own server) leaves nothing cached trusted; the channel stays live", async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b')
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    const lost = once(b, 'coherence')
    await redisCommand(redis.port, ['FLUSHDB'])
    expect((await lost)[0]).toEqual({ live: false })
    await engineOf(b).invalidationsDelivered()
    expect(engineOf(b).coherent).toBe(true)
    expect(await b.get('s')).toBeUndefined()
  })

  it('tracking: a write that publishes nothing (made by any client) still reaches the instance holding a copy', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b')
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    const heard = once(b, 'invalidation')
    const newer = JSON.stringify(sharedSession(clock.now(), HOUR, { v: 2 }))
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('s')}`,
      'p',
      newer,
      'v',
      String((clock.now() + 1) * 1000),
    ])
    await heard
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })

  it('channel: bounds staleness with the local safety TTL when an invalidation is lost silently', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b', { redis: { url: redis.url, localTtlMs: 1000, invalidation: 'channel' } })
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    // Another writer whose invalidation never arrives: a newer version lands in Redis with no message.
    const newer = JSON.stringify(sharedSession(clock.now(), HOUR, { v: 2 }))
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('s')}`,
      'p',
      newer,
      'v',
      String((clock.now() + 1) * 1000),
    ])
    clock.advance(999)
    expect(await b.get('s')).toMatchObject({ v: 1 })
    clock.advance(1)
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })

  it('a merge onto a stale cached copy is refused by the compare-and-set and redone on the current version', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b', { redis: { url: redis.url, localTtlMs: 1000 } })
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(await b.get('s')).toMatchObject({ v: 1 })
    const newer = JSON.stringify(sharedSession(clock.now(), HOUR, { v: 2, other: 'kept' }))
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('s')}`,
      'p',
      newer,
      'v',
      String((clock.now() + 1) * 1000),
    ])

    expect(await b.merge('s', { set: { mine: '"added"' }, unset: [] })).toBe(true)
    clock.advance(1000)
    expect(await b.get('s')).toMatchObject({ v: 2, other: 'kept', mine: 'added' })
  })

  it('a merge of a copy past localTtlMs writes in one round trip (no read first)', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b', { redis: { url: redis.url, localTtlMs: 1000 } })
    await b.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    clock.advance(5000)
    const calls = (command: string) => commandCalls(redis.port, command)
    const [reads, scripts] = [await calls('hmget'), await calls('evalsha')]
    expect(await b.merge('s', { set: { v: '2' }, unset: [] })).toBe(true)
    // The compare-and-set script's own HMGET is the only read.
    expect([(await calls('hmget')) - reads, (await calls('evalsha')) - scripts]).toEqual([1, 1])
    expect(await b.get('s')).toMatchObject({ v: 2 })
  })

  it('a touch that an unverified copy says is not needed is checked against Redis first', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const b = await open('b', { redis: { url: redis.url, localTtlMs: 1000 } })
    await b.set('s', sharedSession(clock.now(), 2 * HOUR, { v: 1 }))
    // Another writer shortened the session to 10 minutes; its invalidation never arrived.
    const shortened = clock.now() + 10 * 60_000
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('s')}`,
      'e',
      String(shortened),
      'v',
      String((clock.now() + 1) * 1000),
    ])
    clock.advance(5000)
    await b.touch('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(Number(await redisCommand(redis.port, ['HGET', `${prefix}${storedKey('s')}`, 'e']))).toBe(
      clock.now() + HOUR,
    )
  })
})

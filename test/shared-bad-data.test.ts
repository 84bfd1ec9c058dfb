import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { handlesFor, storedKey } from './helpers/handles.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, ready, redisOf, sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('garbage in Redis', () => {
  const redis = useRedis()

  it('is a clean miss plus an error event; destroy, clear and set still work; nothing leaks ids or data', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    const errors: TieredSessionError[] = []
    store.on('error', (e) => errors.push(e))
    const sid = 'garbage-sid-4111'
    await redisCommand(redis.port, ['SET', `${prefix}${storedKey(sid)}`, 'card 4111-1111-1111-1111'])
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('badversion')}`,
      'p',
      '{}',
      'v',
      'not-a-number',
      'e',
      'x',
    ])
    await redisCommand(redis.port, [
      'HSET',
      `${prefix}${storedKey('badjson')}`,
      'p',
      '{"a":',
      'v',
      '1',
      'e',
      String(clock.now() + HOUR),
    ])

    expect(await store.get(sid)).toBeUndefined()
    expect(await store.get('badversion')).toBeUndefined()
    expect(await store.get('badjson')).toBeUndefined()
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED', 'TS_DECODE_FAILED', 'TS_DECODE_FAILED'])
    expect(store.stats().errors.TS_DECODE_FAILED).toBe(3)
    for (const error of errors) {
      expect(inspect(error, { depth: 10 })).not.toContain('garbage-sid')
      expect(inspect(error, { depth: 10 })).not.toContain('4111')
    }

    await store.destroy(sid)
    await store.destroy('badversion')
    await store.set('badjson', sharedSession(clock.now(), HOUR, { fixed: true }))
    expect(await store.get('badjson')).toMatchObject({ fixed: true })
    // A string where a session hash and a user index set should be: both writes replace it.
    await redisCommand(redis.port, ['SET', `${prefix}${storedKey('overwritten')}`, 'junk'])
    await redisCommand(redis.port, ['SET', redisOf(store).userKey('mallory'), 'junk'])
    await store.set('overwritten', sharedSession(clock.now(), HOUR, { passport: { user: 'mallory' } }))
    expect(await store.get('overwritten')).toMatchObject({ passport: { user: 'mallory' } })
    expect((await store.listByUser('mallory')).map((s) => s.handle)).toEqual(handlesFor('overwritten'))
    await redisCommand(redis.port, ['SET', `${prefix}${storedKey('again')}`, 'junk'])
    await store.clear()
    expect(await store.length()).toBe(0)
  })

  it('a refused write names the failure but carries neither the session id nor its data', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    // Out of memory with no eviction (OOM): Redis answers, but says no.
    await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction'])
    await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '1'])
    try {
      const error = await store
        .set('secret-sid-99', sharedSession(clock.now(), HOUR, { card: '4111-1111' }))
        .then(
          () => undefined,
          (e: unknown) => e,
        )
      expect(error).toMatchObject({ code: 'TS_REDIS_REFUSED' })
      const text = inspect(error, { depth: 10 })
      expect(text).toContain('OOM')
      expect(text).not.toContain('secret-sid')
      expect(text).not.toContain('4111')
    } finally {
      await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '0'])
    }
  })

  it('a write a demoted master answers READONLY (a failover under way) goes to the outbox, not to the caller', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    await redisCommand(redis.port, ['REPLICAOF', '127.0.0.1', '1'])
    try {
      await store.set('during-failover', sharedSession(clock.now(), HOUR, { v: 1 }))
      expect(store.stats().outbox).toBe(1)
      expect(await store.get('during-failover')).toMatchObject({ v: 1 })
    } finally {
      await redisCommand(redis.port, ['REPLICAOF', 'NO', 'ONE'])
    }
    await ready(store)
    await engineOf(store).replayed()
    expect(store.stats().outbox).toBe(0)
    expect(
      await redisCommand(redis.port, ['HGET', `${prefix}${storedKey('during-failover')}`, 'p']),
    ).toContain('"v":1')
  })
})

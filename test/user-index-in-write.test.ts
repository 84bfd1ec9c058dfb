// The user-index add folded into the write script (single node and Sentinel): a write of a session whose
// entry is not known to be there is one script call, and what Redis holds afterwards is what two calls gave.

import { describe, expect, it } from 'vitest'
import { handleOf } from '../src/at-rest/session-key.js'
import { handlesFor, storedKey } from './helpers/handles.js'
import { commandCalls, redisCommand, useRedis } from './helpers/redis-server.js'
import { redisOf, sharedSession, sharedStores, uniquePrefix } from './helpers/shared-stores.js'

const HOUR = 3_600_000

/** Script calls (by SHA, or by source after a NOSCRIPT) and the SADDs run inside them, so far. */
async function calls(port: number): Promise<{ scripts: number; sadds: number }> {
  const [evalsha, evals, sadds] = await Promise.all([
    commandCalls(port, 'evalsha'),
    commandCalls(port, 'eval'),
    commandCalls(port, 'sadd'),
  ])
  return { scripts: evalsha + evals, sadds }
}

async function members(port: number, key: string): Promise<string[]> {
  return ((await redisCommand(port, ['SMEMBERS', key])) as string[]).sort()
}

describe('the user-index add inside the write script', () => {
  const redis = useRedis()

  it('a new logged-in session is written with its index entry in one script call; the index lists it', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    // NB: the first write loads the scripts (a NOSCRIPT miss, then EVAL); measure the next one.
    await a.set('warm-up', sharedSession(clock.now(), HOUR, { passport: { user: 'bob' } }))

    const before = await calls(redis.port)
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'alice' } }))
    const after = await calls(redis.port)
    expect(after.scripts - before.scripts).toBe(1)
    expect(after.sadds - before.sadds).toBe(1)
    const indexKey = redisOf(a).userKey('alice')
    expect(await members(redis.port, indexKey)).toEqual([storedKey('s')])
    const indexTtl = Number(await redisCommand(redis.port, ['PTTL', indexKey]))
    const sessionTtl = Number(await redisCommand(redis.port, ['PTTL', redisOf(a).key(storedKey('s'))]))
    expect(indexTtl).toBeGreaterThanOrEqual(sessionTtl)
    expect((await a.listByUser('alice')).map((s) => s.handle)).toEqual(handlesFor('s'))

    // The entry is remembered as a separate add would be: the next write of the session adds nothing.
    const again = await calls(redis.port)
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'alice' }, n: 2 }))
    expect((await calls(redis.port)).sadds).toBe(again.sadds)
  })

  it('a merge that moves a session to another user adds the new entry in its own script call', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'alice' } }))
    // NB: the first merge loads the compare-and-set script (a NOSCRIPT miss, then EVAL); measure the next one.
    await a.set('warm-up', sharedSession(clock.now(), HOUR, { passport: { user: 'bob' } }))
    await a.merge('warm-up', { set: { n: '1' }, unset: [] })
    const before = await calls(redis.port)
    await a.merge('s', { set: { passport: JSON.stringify({ user: 'carol' }) }, unset: [] })
    const after = await calls(redis.port)
    expect(after.scripts - before.scripts).toBe(1)
    expect(after.sadds - before.sadds).toBe(1)
    expect((await a.listByUser('carol')).map((s) => s.handle)).toEqual(handlesFor('s'))
    expect(await a.listByUser('alice')).toEqual([])
  })

  it('a value of another type at the index key is replaced by the set', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const indexKey = redisOf(a).userKey('mallory')
    await redisCommand(redis.port, ['SET', indexKey, 'junk'])
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'mallory' } }))
    expect(await redisCommand(redis.port, ['TYPE', indexKey])).toBe('set')
    expect((await a.listByUser('mallory')).map((s) => s.handle)).toEqual(handlesFor('s'))
  })

  it('an index add Redis refuses (OOM) fails the write before anything is written; the index keeps its members', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    await a.set('s1', sharedSession(clock.now(), HOUR, { passport: { user: 'dave' } }))
    const indexKey = redisOf(a).userKey('dave')
    await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory-policy', 'noeviction'])
    await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '1'])
    let error: unknown
    try {
      error = await a.set('s2', sharedSession(clock.now(), HOUR, { passport: { user: 'dave' } })).then(
        () => undefined,
        (e: unknown) => e,
      )
    } finally {
      await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '0'])
    }
    expect(error).toMatchObject({ code: 'TS_REDIS_REFUSED' })
    expect(await redisCommand(redis.port, ['EXISTS', redisOf(a).key(storedKey('s2'))])).toBe(0)
    expect(await members(redis.port, indexKey)).toEqual([storedKey('s1')])

    await a.set('s2', sharedSession(clock.now(), HOUR, { passport: { user: 'dave' } }))
    expect((await a.listByUser('dave')).map((s) => s.handle).sort()).toEqual(handlesFor('s1', 's2').sort())
  })

  it('dualWrite: the set and the merge still mirror to connect-redis’s key, with the index entry in the same call', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', {
      hashIds: false,
      migrate: { from: 'connect-redis', prefix: legacyPrefix, dualWrite: true },
    })
    await a.set('warm-up', sharedSession(clock.now(), HOUR, { passport: { user: 'bob' } }))

    const before = await calls(redis.port)
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'erin' }, n: 1 }))
    const after = await calls(redis.port)
    expect(after.scripts - before.scripts).toBe(1)
    expect(after.sadds - before.sadds).toBe(1)
    const legacyKey = `${legacyPrefix}s`
    expect(JSON.parse(String(await redisCommand(redis.port, ['GET', legacyKey])))).toMatchObject({ n: 1 })
    expect(Number(await redisCommand(redis.port, ['PTTL', legacyKey]))).toBeGreaterThan(0)
    expect(await members(redis.port, redisOf(a).userKey('erin'))).toEqual(['s'])
    // The index key is no mirror: it holds the set, nothing under the legacy prefix holds the index.
    expect(await redisCommand(redis.port, ['TYPE', redisOf(a).userKey('erin')])).toBe('set')

    // A merge to another user: the compare-and-set checks connect-redis's key, mirrors, and adds the entry.
    await a.merge('s', { set: { passport: JSON.stringify({ user: 'frank' }), n: '2' }, unset: [] })
    expect(JSON.parse(String(await redisCommand(redis.port, ['GET', legacyKey])))).toMatchObject({
      n: 2,
      passport: { user: 'frank' },
    })
    expect(await members(redis.port, redisOf(a).userKey('frank'))).toEqual(['s'])
    expect((await a.listByUser('frank')).map((s) => s.handle)).toEqual([handleOf('s')])
    expect(await a.listByUser('erin')).toEqual([])
  })
})

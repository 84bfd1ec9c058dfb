import { describe, expect, it } from 'vitest'
import { encodeSession } from '../src/codec.js'
import { handlesFor, storedKey } from './helpers/handles.js'
import { commandCalls, redisCommand, useRedis } from './helpers/redis-server.js'
import { redisOf, sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000
const MINUTE = 60_000
/** Past INDEX_MARGIN_MS (src/redis/user-index.ts): the next write must extend the index again. */
const PAST_THE_MARGIN = 11 * MINUTE

/** How many SADDs (our index script's) this Redis has run. */
function indexAdds(port: number): Promise<number> {
  return commandCalls(port, 'sadd')
}

async function pttl(port: number, key: string): Promise<number> {
  return Number(await redisCommand(port, ['PTTL', key]))
}

describe('the per-user index in shared mode', () => {
  const redis = useRedis()

  it('skips the index update while the index outlives the session, and never lets it expire first', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')

    const session = (data: Record<string, unknown>) =>
      sharedSession(clock.now(), HOUR, { passport: { user: 'alice' }, ...data })
    await a.set('s', session({ n: 0 }))
    const indexKey = redisOf(a).userKey('alice')
    const sessionKey = redisOf(a).key(storedKey('s'))

    const before = await indexAdds(redis.port)
    for (let n = 1; n <= 10; n++) {
      clock.advance(1000)
      await a.merge('s', { set: { n: String(n) }, unset: [] })
      await a.touch('s', session({ n }))
      // NB: a touch is made durable in the background (promise 8); flush sends it now.
      await a.flush()
    }
    expect(await indexAdds(redis.port)).toBe(before)
    expect(await pttl(redis.port, indexKey)).toBeGreaterThanOrEqual(await pttl(redis.port, sessionKey))

    clock.advance(PAST_THE_MARGIN)
    await a.touch('s', session({ n: 10 }))
    await a.flush()
    expect(await indexAdds(redis.port)).toBe(before + 1)
    expect(await pttl(redis.port, indexKey)).toBeGreaterThanOrEqual(await pttl(redis.port, sessionKey))
    expect((await a.listByUser('alice')).map((s) => s.handle)).toEqual(handlesFor('s'))
  })

  it('a write made from a copy naming the wrong user still lands in the right index', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'alice' } }))
    await b.set('s', sharedSession(clock.now(), HOUR, { passport: { user: 'bob' } }))

    // A still believes 's' is alice's (as it would with the invalidation from B not yet delivered).
    const { payload } = encodeSession(sharedSession(clock.now(), HOUR, { passport: { user: 'alice' }, v: 2 }))
    await redisOf(a).write(
      storedKey('s'),
      { payload, expiresAt: clock.now() + HOUR, userId: 'alice' },
      { previousUser: 'alice' },
    )

    expect((await a.listByUser('alice')).map((s) => s.handle)).toEqual(handlesFor('s'))
    expect(await a.listByUser('bob')).toEqual([])
  })

  it('a session whose index was emptied and made again (shorter) is still kept in it as it rolls on', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const alice = (ms: number) => sharedSession(clock.now(), ms, { passport: { user: 'alice' } })
    await a.set('laptop', alice(30 * 24 * HOUR))
    await a.destroy('laptop')
    await a.set('phone', alice(HOUR))
    clock.advance(PAST_THE_MARGIN)
    await a.touch('phone', alice(HOUR))

    expect(await pttl(redis.port, redisOf(a).userKey('alice'))).toBeGreaterThanOrEqual(
      await pttl(redis.port, redisOf(a).key(storedKey('phone'))),
    )
    expect((await a.listByUser('alice')).map((s) => s.handle)).toEqual(handlesFor('phone'))
  })

  it('a write refused for lack of memory leaves the user index as it was', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    a.on('error', () => undefined)
    const alice = () => sharedSession(clock.now(), HOUR, { passport: { user: 'alice' } })
    await a.set('one', alice())
    await a.set('two', alice())
    await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '1'])
    try {
      await expect(a.set('three', alice())).rejects.toMatchObject({ code: 'TS_REDIS_REFUSED' })
    } finally {
      await redisCommand(redis.port, ['CONFIG', 'SET', 'maxmemory', '0'])
    }
    expect((await a.listByUser('alice')).map((s) => s.handle).sort()).toEqual(handlesFor('one', 'two'))
  })
})

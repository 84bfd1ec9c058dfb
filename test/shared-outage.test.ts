import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, ready, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

const HOUR = 3_600_000
const COMMAND_TIMEOUT = 300
/** Scheduling slack on a loaded 2-core machine; the point is "bounded", not "minutes". */
const MARGIN = 250

/** Runs `work` and returns its result with how long it took, in ms. */
async function timed<T>(work: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now()
  const result = await work()
  return [result, performance.now() - start]
}

describe('when Redis is killed and comes back', () => {
  // Redis with an fsync'd append-only file, so a SIGKILL keeps what it had acknowledged.
  const redis = useRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })

  it('acknowledges writes and destroys into the outbox, serves local sessions, and replays in order', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open('a')
    const b = await open('b')
    for (const sid of ['keep', 'gone', 'changed'])
      await a.set(sid, sharedSession(clock.now(), HOUR, { sid, v: 1 }))
    expect(await a.get('keep')).toMatchObject({ v: 1 })

    const down = once(a, 'disconnect')
    await redis.server.kill9()
    await down
    expect(a.stats().redis).toEqual({ connected: false })

    const durations: number[] = []
    const run = async <T>(work: () => Promise<T>): Promise<T> => {
      const [result, ms] = await timed(work)
      durations.push(ms)
      return result
    }
    await run(() => a.set('changed', sharedSession(clock.now(), HOUR, { sid: 'changed', v: 2 })))
    await run(() => a.destroy('gone'))
    await run(() => a.set('new', sharedSession(clock.now(), HOUR, { sid: 'new', v: 1 })))
    await run(() => a.merge('changed', { set: { extra: '"yes"' }, unset: [] }))
    expect(await run(() => a.get('keep'))).toMatchObject({ v: 1 })
    expect(await run(() => a.get('changed'))).toMatchObject({ v: 2, extra: 'yes' })
    expect(await run(() => a.get('gone'))).toBeUndefined()
    await expect(run(() => a.get('never-seen'))).rejects.toMatchObject({ code: 'TS_REDIS_UNAVAILABLE' })
    expect(Math.max(...durations)).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
    expect(a.stats().outbox).toBe(4)

    const up = once(a, 'connect')
    await redis.server.restart()
    await up
    await engineOf(a).replayed()
    expect(a.stats().outbox).toBe(0)

    // Redis now holds exactly the acknowledged state, and the other instance sees it.
    await ready(b)
    expect(await b.get('changed')).toMatchObject({ v: 2, extra: 'yes' })
    expect(await b.get('new')).toMatchObject({ v: 1 })
    expect(await b.get('keep')).toMatchObject({ v: 1 })
    expect(await b.get('gone')).toBeUndefined()
    expect((await b.ids()).sort()).toEqual(['changed', 'keep', 'new'])
  })
})

describe('when one instance loses Redis while another keeps it', () => {
  const redis = useRedis()

  it('replay never overwrites a newer value, a destroy wins over older writes, and expired entries are dropped', async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open('a', { redis: { url: proxy.url, commandTimeout: COMMAND_TIMEOUT } })
    const b = await open('b')
    await b.set('contested', sharedSession(clock.now(), HOUR, { by: 'b', v: 0 }))
    await b.set('doomed', sharedSession(clock.now(), HOUR, { by: 'b', v: 0 }))
    clock.advance(10)

    const stall = proxy.stallNewConnections()
    const down = once(a, 'disconnect')
    proxy.dropAll()
    await down
    // A, cut off, writes first; B, still connected, writes the same session later.
    await a.set('contested', sharedSession(clock.now(), HOUR, { by: 'a' }))
    await a.destroy('doomed')
    await a.set('short', sharedSession(clock.now(), 1000, { by: 'a' }))
    clock.advance(2000)
    await b.set('contested', sharedSession(clock.now(), HOUR, { by: 'b', v: 1 }))

    // The replayed destroy reaches B as an invalidation (the skipped and the expired entries publish nothing).
    const invalidated = once(b, 'invalidation')
    const up = once(a, 'connect')
    stall.release()
    await up
    await engineOf(a).replayed()
    await invalidated
    expect(await b.get('contested')).toMatchObject({ by: 'b', v: 1 })
    expect(await b.get('doomed')).toBeUndefined()
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}short`])).toBe(0)
    await ready(a)
    expect(await a.get('contested')).toMatchObject({ by: 'b', v: 1 })
  })
})

describe('when Redis hangs', () => {
  const redis = useRedis()

  it('a request waits at most commandTimeout, then writes go to the outbox until Redis answers again', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    process.kill(redis.server.pid, 'SIGSTOP')
    try {
      const [, first] = await timed(() => a.set('s', sharedSession(clock.now(), HOUR, { v: 2 })))
      expect(first).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
      const [, second] = await timed(() => a.set('t', sharedSession(clock.now(), HOUR, { v: 1 })))
      // Once Redis is known to hang, writes do not even wait for it.
      expect(second).toBeLessThan(MARGIN)
      expect(a.stats().outbox).toBe(2)
      expect(await a.get('s')).toMatchObject({ v: 2 })
    } finally {
      process.kill(redis.server.pid, 'SIGCONT')
    }
    if (!engineOf(a).connected) await once(a, 'connect')
    await engineOf(a).replayed()
    expect(a.stats().outbox).toBe(0)
    await ready(b)
    expect(await b.get('s')).toMatchObject({ v: 2 })
    expect(await b.get('t')).toMatchObject({ v: 1 })
  })
})

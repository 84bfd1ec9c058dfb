import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import { describe, expect, it } from 'vitest'
import { handlesFor, storedKey } from './helpers/handles.js'
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
    expect(a.stats().redis).toMatchObject({ connected: false })

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
    expect((await b.ids()).sort()).toEqual(handlesFor('changed', 'keep', 'new'))
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
    await a.set('stolen', sharedSession(clock.now(), HOUR, { by: 'a' }))
    // Expired by our clock before the replay, while Redis (on the real clock) would still keep it a minute.
    await a.set('short', sharedSession(clock.now(), 60_000, { by: 'a' }))
    clock.advance(61_000)
    await b.set('contested', sharedSession(clock.now(), HOUR, { by: 'b', v: 1 }))
    // B logs the session out while A (cut off) still has a write of it queued.
    await b.set('stolen', sharedSession(clock.now(), HOUR, { by: 'b' }))
    await b.destroy('stolen')

    // The replayed destroy reaches B as an invalidation (the skipped and the expired entries publish nothing).
    const invalidated = once(b, 'invalidation')
    const up = once(a, 'connect')
    stall.release()
    await up
    await engineOf(a).replayed()
    await invalidated
    expect(await b.get('contested')).toMatchObject({ by: 'b', v: 1 })
    expect(await b.get('doomed')).toBeUndefined()
    expect(await b.get('stolen')).toBeUndefined()
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}${storedKey('short')}`])).toBe(0)
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

describe('outbox replay racing live operations', () => {
  const redis = useRedis()

  async function cutOff(label: string) {
    const proxy = await startProxy(redis.port)
    const fixture = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await fixture.open(label, { redis: { url: proxy.url, commandTimeout: COMMAND_TIMEOUT } })
    const b = await fixture.open(`${label}-b`)
    const stall = proxy.stallNewConnections()
    const down = once(a, 'disconnect')
    proxy.dropAll()
    await down
    return { ...fixture, a, b, reconnect: () => stall.release() }
  }

  it('a destroy made right after reconnecting is not undone by the replay', async () => {
    const { a, b, clock, reconnect } = await cutOff('a')
    for (let i = 0; i < 50; i++) await a.set(`s${i}`, sharedSession(clock.now(), HOUR, { i }))
    const up = once(a, 'connect')
    reconnect()
    await up
    await a.destroy('s49')
    await a.destroy('s0')
    await engineOf(a).replayed()
    expect(await b.get('s49')).toBeUndefined()
    expect(await b.get('s0')).toBeUndefined()
    expect(await b.get('s25')).toMatchObject({ i: 25 })
  })

  it('a merge made right after reconnecting keeps the write acknowledged during the outage', async () => {
    const proxy = await startProxy(redis.port)
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open('a', { redis: { url: proxy.url, commandTimeout: COMMAND_TIMEOUT } })
    const b = await open('b')
    await a.set('cart', sharedSession(clock.now(), HOUR, { cart: ['old'] }))
    const stall = proxy.stallNewConnections()
    const down = once(a, 'disconnect')
    proxy.dropAll()
    await down
    // Many entries ahead of the cart's, so the replay is still running when the merge comes in.
    for (let i = 0; i < 60; i++) await a.set(`other-${i}`, sharedSession(clock.now(), HOUR, { i }))
    await a.merge('cart', { set: { cart: '["old","bought-offline"]' }, unset: [] })
    const up = once(a, 'connect')
    stall.release()
    await up
    await a.merge('cart', { set: { theme: '"dark"' }, unset: [] })
    await engineOf(a).replayed()
    expect(await b.get('cart')).toMatchObject({ cart: ['old', 'bought-offline'], theme: 'dark' })
  })

  it('a touch while Redis is down never brings back a session that expired (found by the soak run)', async () => {
    const { a, clock, reconnect } = await cutOff('a')
    await a.set('brief', sharedSession(clock.now(), 1000, { v: 1 }))
    clock.advance(1000)
    await a.touch('brief', sharedSession(clock.now(), 60_000))
    await expect(a.get('brief')).resolves.toBeUndefined()
    reconnect()
  })

  it('a session destroyed while an instance was cut off stays destroyed, even if its queued write is newer', async () => {
    const { a, b, clock, reconnect } = await cutOff('a')
    await b.set('revoked', sharedSession(clock.now(), HOUR, { v: 1 }))
    await b.destroy('revoked')
    clock.advance(1000)
    await a.set('revoked', sharedSession(clock.now(), HOUR, { v: 'offline' }))
    const up = once(a, 'connect')
    reconnect()
    await up
    await engineOf(a).replayed()
    expect(await b.get('revoked')).toBeUndefined()
    expect(await a.get('revoked')).toBeUndefined()
  })

  it('an outbox left by a store that was closed (or killed) is replayed by the next one on the same file', async () => {
    const { a, b, clock, reconnect, open } = await cutOff('a')
    await a.set('offline', sharedSession(clock.now(), HOUR, { v: 'offline' }))
    await a.destroy('never-existed')
    expect(a.stats().outbox).toBe(2)
    await a.close()
    reconnect()
    // Same SQLite file ('a'), Redis reachable directly this time.
    const again = await open('a', { redis: { url: redis.url } })
    await engineOf(again).replayed()
    expect(again.stats().outbox).toBe(0)
    expect(await b.get('offline')).toMatchObject({ v: 'offline' })
  })
})

describe('when Redis hangs, every kind of call is bounded', () => {
  const redis = useRedis()

  it('get of an unknown session, merge, touch and destroy each wait at most commandTimeout', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open('a')
    await a.set('s', sharedSession(clock.now(), HOUR, { v: 1 }))
    process.kill(redis.server.pid, 'SIGSTOP')
    try {
      const [, unknownMs] = await timed(() =>
        a.get('unknown').then(
          () => 'resolved',
          (e: { code?: string }) => e.code,
        ),
      )
      expect(unknownMs).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
      const [, mergeMs] = await timed(() => a.merge('s', { set: { m: '1' }, unset: [] }))
      const [, touchMs] = await timed(() => a.touch('s', sharedSession(clock.now() + 1000, HOUR)))
      const [, destroyMs] = await timed(() => a.destroy('s'))
      for (const ms of [mergeMs, touchMs, destroyMs]) expect(ms).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
      expect(await a.get('s')).toBeUndefined()
    } finally {
      process.kill(redis.server.pid, 'SIGCONT')
    }
  })
})

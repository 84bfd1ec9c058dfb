// redis.waitForReplicas: a write counts as written once that many replicas confirm it (WAIT); one they do not
// confirm is acknowledged from the outbox and replayed until they do. A master and a replica of its own.

import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { storedKey } from './helpers/handles.js'
import type { RedisProcess } from './helpers/redis-server.js'
import {
  awaitReplicationLinks,
  commandCalls,
  pollDelay,
  redisCommand,
  startRedis,
  useRedis,
} from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

const HOUR = 3_600_000
const LINK_DEADLINE_MS = 10_000

describe('redis.waitForReplicas', () => {
  const master = useRedis()
  let replica: RedisProcess | undefined
  beforeAll(async () => {
    replica = await startRedis({ args: ['--replicaof', '127.0.0.1', String(master.port)] })
    await awaitReplicationLinks(replica.port, LINK_DEADLINE_MS)
  })
  afterAll(async () => {
    await replica?.destroy()
  })
  const replicaPort = () => (replica as RedisProcess).port

  it('is validated: an integer >= 0', async () => {
    const { open } = sharedStores(() => ({ url: master.url, waitForReplicas: -1 }))
    await expect(open('bad')).rejects.toMatchObject({ code: 'TS_INVALID_OPTION' })
    const { open: openHalf } = sharedStores(() => ({ url: master.url, waitForReplicas: 0.5 }))
    await expect(openHalf('bad')).rejects.toThrow(/redis\.waitForReplicas/)
  })

  it('with 1: every acknowledged set, merge and destroy is on the replica already', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: master.url, waitForReplicas: 1 }))
    const store = await open('a')
    const waits = await commandCalls(master.port, 'wait')
    const onReplica = (sid: string) =>
      redisCommand(replicaPort(), ['HGET', `${prefix}${storedKey(sid)}`, 'p'])
    for (let i = 0; i < 10; i++) {
      await store.set(`s${i}`, sharedSession(clock.now(), HOUR, { i }))
      expect(await onReplica(`s${i}`)).toContain(`"i":${i}`)
    }
    await store.merge('s1', { set: { cart: '["tea"]' }, unset: [] })
    expect(await onReplica('s1')).toContain('"cart":["tea"]')
    await store.destroy('s3')
    expect(await onReplica('s3')).toBeNull()
    expect(store.stats().outbox).toBe(0)
    expect(await commandCalls(master.port, 'wait')).toBeGreaterThanOrEqual(waits + 12)
    // A touch is no data write (promise 8): committed in the background, with no WAIT.
    const before = await commandCalls(master.port, 'wait')
    await store.touch('s2', sharedSession(clock.now(), 2 * HOUR, { i: 2 }))
    await store.flush()
    expect(await redisCommand(master.port, ['HGET', `${prefix}${storedKey('s2')}`, 'e'])).toBe(
      String(clock.now() + 2 * HOUR),
    )
    expect(await commandCalls(master.port, 'wait')).toBe(before)
  })

  it('with 1: a tombstone a destroy leaves for a write waiting in the file (Redis never had the session) is on the replica too', async () => {
    const { open, clock, prefix, dir } = sharedStores(() => ({ url: master.url, waitForReplicas: 1 }))
    const store = await open('a')
    // Another process on the same file acknowledged a write of x into the outbox during an outage of its own.
    const other = new DiskTier({
      path: join(dir, 'a.db'),
      synchronous: 'normal',
      maxBatchSize: 100,
      clock,
      hashIds: true,
    })
    const expiresAt = clock.now() + HOUR
    await other.outboxLog.appendWrite(
      storedKey('x'),
      { payload: '{"by":"other"}', expiresAt, version: 1, userId: null },
      () => undefined,
    )
    other.close()
    const waits = await commandCalls(master.port, 'wait')
    await store.destroy('x')
    expect(await commandCalls(master.port, 'wait')).toBe(waits + 1)
    expect(await redisCommand(replicaPort(), ['HGET', `${prefix}${storedKey('x')}`, 'd'])).toBe('1')
    expect(await redisCommand(replicaPort(), ['PEXPIRETIME', `${prefix}${storedKey('x')}`])).toBe(expiresAt)
    // With nothing waiting, a destroy of a session Redis never had writes nothing, and waits for nothing.
    await store.destroy('never')
    expect(await commandCalls(master.port, 'wait')).toBe(waits + 1)
  })

  it('with 1 and the replica gone: writes are acknowledged from the outbox, served, and replayed once it is back', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: master.url, waitForReplicas: 1 }))
    const store = await open('a')
    const errors: TieredSessionError[] = []
    store.on('error', (e) => errors.push(e))
    await store.set('before', sharedSession(clock.now(), HOUR, { v: 0 }))
    await replica?.kill9()
    // NB: "gone" as the master sees it: until it notices, it still lists the replica as online, and every
    // write WAITs (blocking the connection) instead of counting as unconfirmed at once.
    while (/connected_slaves:[1-9]/.test(String(await redisCommand(master.port, ['INFO', 'replication']))))
      await pollDelay()
    const waits = await commandCalls(master.port, 'wait')
    for (let i = 0; i < 20; i++) await store.set(`w${i}`, sharedSession(clock.now(), HOUR, { i }))
    await store.destroy('before')
    // The master has them all (it acknowledged each write); the outbox keeps them until a replica confirms.
    expect(store.stats().outbox).toBe(21)
    expect(await redisCommand(master.port, ['HGET', `${prefix}${storedKey('w7')}`, 'p'])).toContain('"i":7')
    expect(await store.get('w7')).toMatchObject({ i: 7 })
    expect(await store.get('before')).toBeUndefined()
    // After one WAIT the replicas did not answer, the next writes do not block the connection on another.
    expect((await commandCalls(master.port, 'wait')) - waits).toBeLessThanOrEqual(3)

    await replica?.restart()
    await awaitReplicationLinks(replicaPort(), LINK_DEADLINE_MS)
    while (store.stats().outbox > 0) {
      await engineOf(store).replayed()
      await pollDelay()
    }
    expect(await redisCommand(replicaPort(), ['HGET', `${prefix}${storedKey('w19')}`, 'p'])).toContain(
      '"i":19',
    )
    expect(await redisCommand(replicaPort(), ['HGET', `${prefix}${storedKey('before')}`, 'd'])).toBe('1')
    expect(errors.map((e) => e.code)).toContain('TS_REDIS_UNAVAILABLE')
    expect(store.stats().errors.TS_REDIS_UNAVAILABLE).toBeGreaterThanOrEqual(1)
  })

  it('with 1: a WAIT whose reply comes after the command timeout is a shortfall (the write waits in the outbox), never a hung Redis', async () => {
    const proxy = await startProxy(master.port)
    const { open, clock, prefix } = sharedStores(() => ({ url: proxy.url, waitForReplicas: 1 }))
    const store = await open('a')
    let disconnects = 0
    store.on('disconnect', () => disconnects++)
    store.on('error', () => undefined)
    await store.set('before', sharedSession(clock.now(), HOUR, { v: 0 }))
    expect(store.stats().outbox).toBe(0)
    // The write's own reply passes; the replies from its WAIT on are held past redis.commandTimeout (500 ms).
    const hold = proxy.holdRepliesAfter(/WAIT/i)
    await store.set('late', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(store.stats().outbox).toBe(1)
    expect(store.stats().redis?.connected).toBe(true)
    hold.release()
    while (store.stats().outbox > 0) {
      await engineOf(store).replayed()
      await pollDelay()
    }
    expect(await redisCommand(replicaPort(), ['HGET', `${prefix}${storedKey('late')}`, 'p'])).toContain(
      '"v":1',
    )
    expect(disconnects).toBe(0)
    expect(store.stats().redis?.connected).toBe(true)
  })

  it('with 0 (the default): no WAIT is sent', async () => {
    const { open, clock } = sharedStores(() => ({ url: master.url }))
    const store = await open('a')
    const waits = await commandCalls(master.port, 'wait')
    for (let i = 0; i < 5; i++) await store.set(`z${i}`, sharedSession(clock.now(), HOUR, { i }))
    expect(await commandCalls(master.port, 'wait')).toBe(waits)
  })
})

// store.health(): the synchronous view a readiness probe reads, and when it says the store is not ok.

import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('in local mode', () => {
  it('is ok with the memory budget, a working disk, no Redis and no outbox; not ok once closed', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 1024 * 1024 } })
    await store.set('s1', sessionFor(clock.now(), HOUR, { n: 1 }))
    const health = store.health()
    expect(health).toEqual({
      ok: true,
      problems: [],
      redis: null,
      outbox: { depth: 0, oldestAgeMs: null },
      disk: { ok: true, lastErrorCode: null, lastErrorAt: null },
      memory: { bytes: store.stats().memory.bytes, maxBytes: 1024 * 1024 },
      closed: false,
    })
    expect(health.memory.bytes).toBeGreaterThan(0)
    await store.close()
    expect(store.health()).toMatchObject({ ok: false, closed: true, problems: ['the store is closed'] })
  })

  /** A store whose disk (256 KiB) was filled until a write was refused; returns it with the acknowledged ids. */
  async function fullDisk() {
    const fixture = createStore({ disk: { maxBytes: 256 * 1024 }, memory: { maxBytes: 8 * 1024 * 1024 } })
    const { store, clock } = fixture
    store.on('error', () => {})
    const acknowledged: string[] = []
    for (let i = 0; i < 2000; i++) {
      const sid = `s${i}`
      const refused = await store.set(sid, sessionFor(clock.now(), HOUR, { pad: 'p'.repeat(900) })).then(
        () => false,
        () => true,
      )
      if (refused) break
      acknowledged.push(sid)
    }
    expect(acknowledged.length).toBeLessThan(2000)
    return { ...fixture, acknowledged }
  }

  it('is not ok while the disk is full, and ok again once a write transaction commits', async () => {
    const { store, clock, acknowledged } = await fullDisk()
    const failing = store.health()
    expect(failing).toMatchObject({
      ok: false,
      disk: { ok: false, lastErrorCode: 'TS_DISK_IO', lastErrorAt: clock.now() },
    })
    expect(failing.problems).toEqual(['the disk is failing (TS_DISK_IO)'])
    // A destroy commits (and frees room): the disk works again.
    await store.destroy(acknowledged[0] as string)
    expect(store.health()).toMatchObject({
      ok: true,
      problems: [],
      disk: { ok: true, lastErrorCode: 'TS_DISK_IO' },
    })
  })

  it('counts the disk as ok again 60 s after its last failure when nothing was written since', async () => {
    const { store, clock } = await fullDisk()
    clock.advance(59_999)
    expect(store.health()).toMatchObject({ ok: false, disk: { ok: false } })
    clock.advance(1)
    expect(store.health()).toMatchObject({ ok: true, disk: { ok: true, lastErrorCode: 'TS_DISK_IO' } })
  })
})

describe('in shared mode', () => {
  const redis = useRedis()

  it('reports Redis, and is not ok while Redis is down with writes waiting in the outbox (their age grows)', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url, commandTimeout: 300 }))
    const store = await open('a')
    store.on('error', () => {})
    expect(store.health()).toMatchObject({
      ok: true,
      redis: { connected: true, invalidationLive: true },
      outbox: { depth: 0, oldestAgeMs: null },
    })

    const down = once(store, 'disconnect')
    await redis.server.kill9()
    await down
    // Down with nothing queued: degraded (reads from local copies), not failing.
    expect(store.health()).toMatchObject({ ok: true, redis: { connected: false } })

    await store.set('s1', sharedSession(clock.now(), HOUR, { v: 1 }))
    clock.advance(1500)
    await store.set('s2', sharedSession(clock.now(), HOUR, { v: 1 }))
    clock.advance(500)
    const health = store.health()
    expect(health).toMatchObject({ ok: false, outbox: { depth: 2, oldestAgeMs: 2000 } })
    expect(health.problems).toEqual(['Redis is down and 2 writes wait in the outbox'])
    expect(store.metrics()).toContain('tiered_session_outbox_oldest_age_seconds 2')

    const up = once(store, 'connect')
    await redis.server.restart()
    await up
    await store.flush()
    await engineOf(store).replayed()
    expect(store.health()).toMatchObject({ ok: true, outbox: { depth: 0, oldestAgeMs: null } })
    expect(store.metrics()).toContain('tiered_session_outbox_oldest_age_seconds 0')
  })

  it('is not ok while Redis is down with disk: false (writes have nowhere to go)', async () => {
    const { open } = sharedStores(() => ({ url: redis.url, commandTimeout: 300 }))
    const store = await open('nodisk', { disk: false })
    store.on('error', () => {})
    expect(store.health()).toMatchObject({ ok: true, disk: null })
    const down = once(store, 'disconnect')
    await redis.server.kill9()
    await down
    expect(store.health()).toMatchObject({
      ok: false,
      problems: ['Redis is down and there is no outbox (disk: false): writes fail'],
    })
    await redis.server.restart()
  })
})

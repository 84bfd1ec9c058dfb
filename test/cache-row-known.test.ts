// Shared mode: once the spill cache holds rows, a write must make sure the file keeps no older copy of the
// session (a SQLite lookup on the event loop). A copy held in memory since a write that did that says the file
// has none (a spilled record leaves memory in the same step): its next writes, and touches in between, skip it;
// once spilled again and read back, the next write asks the file again.

import { afterEach, describe, expect, it, vi } from 'vitest'
import { hashSid } from '../src/at-rest/session-key.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

afterEach(() => {
  vi.restoreAllMocks()
})

describe('the spill cache row of a session written again (shared mode)', () => {
  const redis = useRedis()

  it('is looked up and dropped once after a promotion, then no more while the copy stays in memory', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a', { memory: { maxBytes: 64 * 1024 } })
    for (let i = 0; i < 200; i++)
      await store.set(`fill${i}`, sharedSession(clock.now(), HOUR, { i, pad: 'p'.repeat(900) }))
    await store.flush()
    expect(store.stats().disk?.entries).toBeGreaterThan(50)
    const key = hashSid('fill0')
    const drops = vi.spyOn(DiskTier.prototype, 'dropNow')
    const dropsOfFill0 = () => drops.mock.calls.filter(([sid]) => sid === key).length
    // fill0 was spilled: read back from the file (promoted, its row still there), then written.
    expect(await store.get('fill0')).toMatchObject({ i: 0 })
    expect(store.stats().hits.disk).toBeGreaterThan(0)
    await store.set('fill0', sharedSession(clock.now(), HOUR, { i: 0, n: 1 }))
    expect(dropsOfFill0()).toBe(1)
    // Written again, touched, written again: the file has no row of it, and is not asked.
    await store.set('fill0', sharedSession(clock.now(), HOUR, { i: 0, n: 2 }))
    clock.advance(60_000)
    await store.touch('fill0', sharedSession(clock.now(), HOUR, { i: 0, n: 2 }))
    await store.set('fill0', sharedSession(clock.now(), HOUR, { i: 0, n: 3 }))
    expect(dropsOfFill0()).toBe(1)
    expect(await store.get('fill0')).toMatchObject({ i: 0, n: 3 })
    // Spilled again (its record left memory, and what was known with it), read back, written: asked again.
    for (let i = 200; i < 400; i++)
      await store.set(`fill${i}`, sharedSession(clock.now(), HOUR, { i, pad: 'p'.repeat(900) }))
    await store.flush()
    const fromDisk = store.stats().hits.disk
    expect(await store.get('fill0')).toMatchObject({ i: 0, n: 3 })
    expect(store.stats().hits.disk).toBe(fromDisk + 1)
    await store.set('fill0', sharedSession(clock.now(), HOUR, { i: 0, n: 4 }))
    expect(dropsOfFill0()).toBe(2)
    expect(await store.get('fill0')).toMatchObject({ i: 0, n: 4 })
    expect(store.stats().errors).toEqual({})
  })
})

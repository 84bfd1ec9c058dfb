// Shared mode on a full disk: the disk is only a near cache (and the outbox), so writes still reach Redis and
// are acknowledged, the near cache shrinks to memory, the failure is reported once per code, and the cache
// comes back when the disk has room again.

import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000
const MEMORY_BYTES = 64 * 1024
const DISK_BYTES = 128 * 1024
const SESSIONS = 600

describe('shared mode on a full disk (disk.maxBytes)', () => {
  const redis = useRedis()

  it('acknowledges every write through Redis, serves every session, reports once per code, and recovers', async () => {
    const { open, clock, dir } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a', {
      memory: { maxBytes: MEMORY_BYTES },
      disk: { path: join(dir, 'full.db'), maxBytes: DISK_BYTES },
    })
    const errors: TieredSessionError[] = []
    store.on('error', (e) => errors.push(e))
    // ~1 KiB sessions: ten times the memory budget, five times what the disk may hold.
    for (let i = 0; i < SESSIONS; i++) {
      await store.set(`s${i}`, sharedSession(clock.now(), HOUR, { i, pad: 'p'.repeat(1000) }))
    }
    await store.flush()
    expect(errors.length).toBeGreaterThan(0)
    expect(new Set(errors.map((e) => e.code))).toEqual(new Set(['TS_DISK_IO']))
    expect(errors).toHaveLength(1)
    expect(store.stats().errors).toEqual({ TS_DISK_IO: 1 })
    // The near cache is memory only meanwhile, and memory stays within its budget.
    expect(store.stats().memory.bytes).toBeLessThanOrEqual(MEMORY_BYTES)
    const b = await open('b')
    for (let i = 0; i < SESSIONS; i++) {
      expect(await store.get(`s${i}`)).toMatchObject({ i })
      expect(await b.get(`s${i}`)).toMatchObject({ i })
    }
    expect(store.stats().outbox).toBe(0)

    // Room again: the sessions on disk are destroyed (their cached copies go with them) ...
    const cachedBefore = store.stats().disk?.entries ?? 0
    expect(cachedBefore).toBeGreaterThan(0)
    for (let i = 0; i < SESSIONS; i++) await store.destroy(`s${i}`)
    expect(store.stats().disk?.entries).toBe(0)
    // ... and once the store has gone memory only for a while (10 s), spilling to disk works again, silently.
    clock.advance(10_000)
    for (let i = 0; i < 60; i++) {
      await store.set(`t${i}`, sharedSession(clock.now(), HOUR, { i, pad: 'q'.repeat(1000) }))
    }
    await store.flush()
    expect(store.stats().disk?.entries).toBeGreaterThan(0)
    expect(store.stats().errors).toEqual({ TS_DISK_IO: 1 })
    for (let i = 0; i < 60; i += 7) expect(await b.get(`t${i}`)).toMatchObject({ i })
  })
})

import { describe, expect, it } from 'vitest'
import type { StoredRecord } from '../src/tiers/tier.js'
import { openDiskTier } from './helpers/disk-tiers.js'
import type { ManualClock } from './helpers/manual-clock.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'

const HOUR = 3_600_000

function cacheTier(options: { backlogBytes?: number; maxBytes?: number } = {}) {
  return openDiskTier({
    cacheBacklogBytes: options.backlogBytes ?? 1024 * 1024,
    ...(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes }),
  })
}

function rows(count: number, clock: ManualClock, tag = 'r'): Array<readonly [string, StoredRecord]> {
  return Array.from({ length: count }, (_, i) => [
    `${tag}${i}`,
    {
      payload: JSON.stringify({ i, pad: 'p'.repeat(1000) }),
      expiresAt: clock.now() + HOUR,
      version: i + 1,
      userId: i % 2 === 0 ? `u${i}` : null,
    },
  ])
}

function recorder() {
  const seen: string[] = []
  return {
    seen,
    outcome: {
      written: () => seen.push('written'),
      failed: (message: string) => seen.push(`failed: ${message}`),
    },
  }
}

describe('the spill cache written by the worker thread', () => {
  it('rewrites a cached row in place for the same user, and moves it in the user index for another', async () => {
    const { tier, clock } = cacheTier()
    const { seen, outcome } = recorder()
    const at = clock.now() + HOUR
    const noCorrupt = () => {
      throw new Error('no row here is corrupt')
    }
    const keep = async (payload: string, version: number, userId: string | null) => {
      tier.keepLater([['s', { payload, expiresAt: at + version, version, userId }]], outcome)
      await tier.cacheSettled()
    }
    await keep('{"v":1}', 1, 'u1')
    await keep('{"v":2}', 2, 'u1')
    expect(tier.get('s')).toMatchObject({ payload: '{"v":2}', version: 2, expiresAt: at + 2, userId: 'u1' })
    await keep('{"v":3}', 3, 'u2')
    expect(tier.get('s')).toMatchObject({ payload: '{"v":3}', version: 3, userId: 'u2' })
    expect(tier.rowsOfUser('u1', noCorrupt)).toEqual([])
    expect(tier.rowsOfUser('u2', noCorrupt).map((row) => row.sid)).toEqual(['s'])
    expect(seen).toEqual(['written', 'written', 'written'])
  })

  it('serves rows on their way to the file, then from the file, with their versions', async () => {
    const { tier, clock } = cacheTier()
    const { seen, outcome } = recorder()
    const spilled = rows(50, clock)
    tier.keepLater(spilled, outcome)
    // Nothing was answered yet (answers are messages): every row is served from the rows on their way.
    expect(seen).toEqual([])
    for (const [sid, record] of spilled) expect(tier.get(sid)).toMatchObject({ ...record })
    await tier.cacheSettled()
    expect(seen).toEqual(['written'])
    expect(tier.count()).toBe(50)
    for (const [sid, record] of spilled) expect(tier.get(sid)).toMatchObject({ ...record })
    // An expired row on its way is not served either.
    const [late] = rows(1, clock, 'late')
    tier.keepLater(
      [[late?.[0] as string, { ...(late?.[1] as StoredRecord), expiresAt: clock.now() + 10 }]],
      outcome,
    )
    clock.advance(10)
    expect(tier.get(late?.[0] as string)).toBeUndefined()
  })

  it('deletes a row still on its way after it, in order: it is gone at once and stays gone', async () => {
    const { tier, clock } = cacheTier()
    const { outcome } = recorder()
    tier.keepLater(rows(3, clock), outcome)
    tier.dropNow('r1')
    expect(tier.get('r1')).toBeUndefined()
    expect(tier.get('r0')).toBeDefined()
    await tier.cacheSettled()
    expect(tier.get('r1')).toBeUndefined()
    expect(tier.count()).toBe(2)
    // A row already in the file is deleted now, on the app's connection.
    tier.dropNow('r2')
    expect(tier.count()).toBe(1)
  })

  it('a clear waits for the rows on their way, then removes them with the rest', async () => {
    const { tier, clock } = cacheTier()
    const { outcome } = recorder()
    tier.keepLater(rows(20, clock), outcome)
    tier.clearNow()
    expect(tier.get('r3')).toBeUndefined()
    expect(tier.count()).toBe(0)
    await tier.cacheSettled()
    expect(tier.count()).toBe(0)
  })

  it('caches only what fits in the backlog; the rest is not cached, and says nothing (Redis has them)', async () => {
    const { tier, clock } = cacheTier({ backlogBytes: 3 * 1024 + 512 })
    const { seen, outcome } = recorder()
    tier.keepLater(rows(10, clock), outcome)
    expect(tier.get('r2')).toBeDefined()
    expect(tier.get('r3')).toBeUndefined()
    await tier.cacheSettled()
    expect(seen).toEqual(['written'])
    expect(tier.count()).toBe(3)
    // Once written, the backlog has room again.
    tier.keepLater(rows(2, clock, 'again'), outcome)
    await tier.cacheSettled()
    expect(tier.count()).toBe(5)
  })

  it('a batch the file cannot take (disk.maxBytes) fails as a whole, and its rows are not served', async () => {
    const { tier, clock } = cacheTier({ maxBytes: 64 * 1024 })
    const { seen, outcome } = recorder()
    tier.keepLater(rows(200, clock), outcome)
    await tier.cacheSettled()
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatch(/^failed: .*full/)
    expect(tier.count()).toBe(0)
    expect(tier.get('r0')).toBeUndefined()
  })
})

describe('a shared-mode store spilling into the cache written by the worker thread', () => {
  const redis = useRedis()

  it('writes the spilled payloads byte for byte (multi-byte text too), and serves them from the file', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a', { memory: { maxBytes: 64 * 1024 } })
    const text = (i: number) => `é€😀 ${i} `.repeat(60)
    for (let i = 0; i < 300; i++)
      await store.set(`s${i}`, sharedSession(clock.now(), HOUR, { i, text: text(i) }))
    await store.flush()
    const cached = store.stats().disk?.entries ?? 0
    expect(cached).toBeGreaterThan(100)
    const fromDiskBefore = store.stats().hits.disk
    for (let i = 0; i < 300; i++) expect(await store.get(`s${i}`)).toMatchObject({ i, text: text(i) })
    expect(store.stats().hits.disk - fromDiskBefore).toBeGreaterThan(100)
    expect(store.stats().errors).toEqual({})
  })
})

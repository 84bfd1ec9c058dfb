// Guards against the drift found between the two engines that preceded the one TierManager (local mode's
// and shared mode's managers), where one of them had lost behaviour the other had:
// 1. a shared-mode sweep overlapping close() must not touch the closed disk (local mode waits for it);
// 2. an invalid id given to merge() is reported (error event + counted) in both modes, not only shared;
// 3. a shared-mode touch during an outage that finds a corrupt disk-cache copy reports TS_DECODE_FAILED.

import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import type { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore } from './helpers/stores.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
/**
 * The smallest memory budget, and a pad making sessions ~290 bytes: every third one in memory crosses the
 * high watermark (819 bytes) while under the hard cap (1024), so the spiller moves the oldest to the disk cache.
 */
const TINY_MEMORY = { memory: { maxBytes: 1024 } }
const PAD = 'x'.repeat(200)

/** Overwrites a row's payload with text that does not decode; returns how many rows changed. */
function corrupt(dbPath: string, sid: string): number {
  const db = new Database(dbPath)
  try {
    return db.prepare("UPDATE sessions SET payload = 'garbage' WHERE sid = ?").run(storedKey(sid)).changes
  } finally {
    db.close()
  }
}

/** Collects the store's error events. */
function errorsOf(store: TieredStore): TieredSessionError[] {
  const errors: TieredSessionError[] = []
  store.on('error', (e: TieredSessionError) => errors.push(e))
  return errors
}

describe('engine drift', () => {
  const redis = useRedis()

  it('shared mode: a multi-batch sweep overlapping close() finishes cleanly, with no error', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a', { ...TINY_MEMORY, sweepBatchSize: 1 })
    const errors = errorsOf(store)
    for (let i = 0; i < 8; i++) await store.set(`s${i}`, sharedSession(clock.now(), MINUTE, { pad: PAD }))
    await store.flush()
    expect(store.stats().disk?.entries).toBeGreaterThanOrEqual(3)
    await engineOf(store).replayed()
    clock.advance(2 * MINUTE)

    const sweep = store.sweep()
    sweep.catch(() => undefined) // NB: asserted below; keeps a rejection from being reported as unhandled.
    await store.close()
    expect(errors.map((e) => e.code)).toEqual([])
    await expect(sweep).resolves.toBeTypeOf('number')
  })

  it.each(['local', 'shared'])(
    '%s mode: merge with an invalid id rejects, emits and counts TS_INVALID_SID',
    async (mode) => {
      const store =
        mode === 'local' ? createStore().store : await sharedStores(() => ({ url: redis.url })).open('a')
      const errors = errorsOf(store)
      await expect(store.merge('bad id with spaces', { set: {}, unset: [] })).rejects.toMatchObject({
        code: 'TS_INVALID_SID',
      })
      expect(errors.map((e) => e.code)).toEqual(['TS_INVALID_SID'])
      expect(store.stats().errors.TS_INVALID_SID).toBe(1)
    },
  )
})

describe('engine drift, with Redis down', () => {
  // Its own server: this test stops it.
  const redis = useRedis()

  it('shared mode: a touch reading a corrupt disk-cache copy resolves and reports TS_DECODE_FAILED', async () => {
    const { open, clock, dir } = sharedStores(() => ({ url: redis.url }))
    const first = await open('a', TINY_MEMORY)
    await first.set('victim', sharedSession(clock.now(), HOUR, { pad: PAD }))
    for (let i = 0; i < 4; i++) await first.set(`s${i}`, sharedSession(clock.now(), HOUR, { pad: PAD }))
    await first.flush()
    await first.close()
    // The victim (least recently used) was spilled: its row is in the disk cache.
    expect(corrupt(join(dir, 'a.db'), 'victim')).toBe(1)
    await redis.server.stop()

    const store = await open('a', TINY_MEMORY, false)
    const errors = errorsOf(store)
    expect(engineOf(store).connected).toBe(false)
    await expect(store.touch('victim', sharedSession(clock.now(), 2 * HOUR))).resolves.toBeUndefined()
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
    expect(store.stats().errors.TS_DECODE_FAILED).toBe(1)
  })
})

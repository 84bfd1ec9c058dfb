// stats().disk.entries on a large file: the row count is exact up to syncCountRows (counted on the event loop);
// above, the worker thread counts (a count(*) reads a whole index: ~10 ms for a million rows) and the count lags
// by one call.

import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { ManualClock } from './helpers/manual-clock.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

describe('the row count of a large file', () => {
  it('is exact up to syncCountRows; above, it comes from the worker thread, one call late', async () => {
    const dir = makeTempDir()
    const clock = new ManualClock()
    const tier = new DiskTier({
      path: join(dir.path, 'count.db'),
      synchronous: 'normal',
      maxBatchSize: 100,
      clock,
      syncCountRows: 10,
    })
    onTestFinished(() => {
      tier.close()
      dir.remove()
    })
    const put = (from: number, to: number) =>
      Promise.all(
        Array.from({ length: to - from }, (_, i) =>
          tier.write(`c${from + i}`, { payload: '{}', expiresAt: clock.now() + HOUR, userId: null }),
        ),
      )
    await put(0, 8)
    expect(tier.count()).toBe(8)
    await put(8, 20)
    // Counted on the event loop: the last count (8) was small.
    expect(tier.count()).toBe(20)
    await put(20, 25)
    // Above 10: the last count, while the worker counts again.
    expect(tier.count()).toBe(20)
    // The worker's answer is a message: the loop yields until it came (a fresh worker thread first loads SQLite).
    let answered = 0
    const deadline = performance.now() + 10_000
    while (answered !== 25 && performance.now() < deadline) {
      await new Promise((resolve) => setImmediate(resolve))
      answered = tier.count()
    }
    expect(answered).toBe(25)
  })
})

import { describe, expect, it } from 'vitest'
import { openDiskTier } from './helpers/disk-tiers.js'

const HOUR = 3_600_000

describe('the row count of a large file', () => {
  it('is exact up to syncCountRows; above, it comes from the worker thread, one call late', async () => {
    const { tier, clock } = openDiskTier({ syncCountRows: 10 })
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

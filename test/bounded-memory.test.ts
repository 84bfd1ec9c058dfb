import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const MiB = 1024 * 1024
const DAY = 86_400_000

function cartSession(now: number, i: number) {
  return sessionFor(now, DAY, {
    userId: `user-${i % 500}`,
    cart: Array.from({ length: 8 }, (_, k) => ({ sku: `SKU-${i}-${k}`, qty: (k % 3) + 1, price: 1999 })),
    csrf: `csrf-${i}-${'t'.repeat(40)}`,
    note: 'n'.repeat(420),
  })
}

describe('bounded memory', () => {
  it('keeps memory within maxBytes through 20,000 writes of ~1 KiB, and every session reads back', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 2 * MiB } })
    const now = clock.now()
    const sample = JSON.stringify(cartSession(now, 12345))
    expect(Buffer.byteLength(sample)).toBeGreaterThan(900)
    expect(Buffer.byteLength(sample)).toBeLessThan(1300)

    let peak = 0
    for (let start = 0; start < 20_000; start += 500) {
      const batch = []
      for (let i = start; i < start + 500; i++) batch.push(store.set(`sid-${i}`, cartSession(now, i)))
      await Promise.all(batch)
      peak = Math.max(peak, store.stats().memory.bytes)
    }
    await store.flush()
    const afterWrites = store.stats()
    expect(peak).toBeLessThanOrEqual(2 * MiB)
    expect(afterWrites.memory.bytes).toBeLessThanOrEqual(2 * MiB)
    expect(afterWrites.spills).toBeGreaterThan(15_000)
    expect(afterWrites.disk?.entries).toBe(20_000)

    let intact = 0
    for (let i = 0; i < 20_000; i++) {
      const got = await store.get(`sid-${i}`)
      if (JSON.stringify(got) === JSON.stringify(cartSession(now, i))) intact++
      if (i % 1000 === 0) peak = Math.max(peak, store.stats().memory.bytes)
    }
    await store.flush()
    const afterReads = store.stats()
    expect(intact).toBe(20_000)
    expect(peak).toBeLessThanOrEqual(2 * MiB)
    expect(afterReads.memory.bytes).toBeLessThanOrEqual(2 * MiB)
    // Everything spilled came back through a promotion when read.
    expect(afterReads.promotions).toBe(afterReads.hits.disk)
    expect(afterReads.promotions).toBeGreaterThanOrEqual(afterWrites.spills - afterWrites.memory.entries)
    expect(afterReads.misses).toBe(0)
  })
})

// The engine's export in local mode pages through the SQLite file in key order: every live session exactly once,
// a page at a time (the next read only after the caller has written the last), corrupt and expired rows left out.

import { describe, expect, it } from 'vitest'
import { engineOf } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR_MS = 3_600_000

describe('exportRows in local mode', () => {
  it('hands every live session once, in pages of 1,000, each read after the last was handled', async () => {
    const { store, clock } = createStore()
    const writes: Array<Promise<void>> = []
    for (let i = 0; i < 2500; i++) writes.push(store.set(`s-${i}`, sessionFor(clock.now(), HOUR_MS, { i })))
    for (let i = 0; i < 10; i++) writes.push(store.set(`short-${i}`, sessionFor(clock.now(), 1000, { i })))
    await Promise.all(writes)
    clock.advance(2000)

    const sizes: number[] = []
    const seen = new Set<number>()
    let handling = false
    const count = await engineOf(store).exportRows(async (rows) => {
      expect(handling).toBe(false)
      handling = true
      sizes.push(rows.length)
      for (const row of rows) seen.add((row.session as { i: number }).i)
      await new Promise((resolve) => setImmediate(resolve))
      handling = false
    })
    expect(count).toBe(2500)
    expect(sizes).toEqual([1000, 1000, 500])
    expect(seen.size).toBe(2500)
  })
})

import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('promotion', () => {
  it('puts a spilled session back into memory, so its next read is a memory hit', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 8 * 1024 } })
    for (let i = 0; i < 20; i++)
      await store.set(`s${i}`, sessionFor(clock.now(), HOUR, { i, pad: 'x'.repeat(600) }))
    await store.flush()
    const promotions: Array<{ bytes: number }> = []
    store.on('promote', (info) => promotions.push(info))
    const before = store.stats()
    expect(await store.get('s0')).toMatchObject({ i: 0 })
    const afterFirst = store.stats()
    expect(afterFirst.hits.disk).toBe(before.hits.disk + 1)
    expect(promotions).toHaveLength(1)
    expect(promotions[0]?.bytes).toBeGreaterThan(600)
    expect(await store.get('s0')).toMatchObject({ i: 0 })
    expect(store.stats().hits.memory).toBe(afterFirst.hits.memory + 1)
    expect(store.stats().hits.disk).toBe(afterFirst.hits.disk)
  })
})

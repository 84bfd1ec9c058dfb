import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('writes made while a batch is being acknowledged', () => {
  it('never leave memory serving an older value than disk', async () => {
    const fixture = createStore({ memory: { maxBytes: 4096 }, disk: { maxBatchSize: 2 } })
    const { store, clock } = fixture
    await store.set('x', sessionFor(clock.now(), HOUR, { v: 1 }))
    let first = true
    store.on('spill', () => {
      if (!first) return
      first = false
      // Runs inside the commit of the batch below; these writes fill a whole batch of their own.
      void store.set('x', sessionFor(clock.now(), HOUR, { v: 3 }))
      void store.set('y', sessionFor(clock.now(), HOUR, { v: 0 }))
    })
    const big = store.set('big', sessionFor(clock.now(), HOUR, { pad: 'p'.repeat(3500) }))
    const x2 = store.set('x', sessionFor(clock.now(), HOUR, { v: 2 }))
    await Promise.all([big, x2])
    await store.flush()
    expect(await store.get('x')).toMatchObject({ v: 3 })
    await store.close()
    expect(await fixture.reopen().get('x')).toMatchObject({ v: 3 })
  })
})

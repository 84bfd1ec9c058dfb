import { describe, expect, it } from 'vitest'
import { handlesFor } from './helpers/handles.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('after close() and a restart on the same file', () => {
  it('every session is present and expired ones are not returned', async () => {
    const fixture = createStore({ memory: { maxBytes: 64 * 1024 } })
    const { clock } = fixture
    const now = clock.now()
    for (let i = 0; i < 300; i++) {
      await fixture.store.set(`live-${i}`, sessionFor(now, HOUR, { i, pad: 'p'.repeat(300) }))
    }
    for (let i = 0; i < 20; i++) await fixture.store.set(`short-${i}`, sessionFor(now, 1000, { i }))
    // Queued, not yet awaited: close() must commit it.
    const last = fixture.store.set('last', sessionFor(now, HOUR, { last: true }))
    await fixture.store.close()
    await last

    clock.advance(1000)
    const store = fixture.reopen()
    for (let i = 0; i < 300; i++) {
      expect(await store.get(`live-${i}`)).toEqual(sessionFor(now, HOUR, { i, pad: 'p'.repeat(300) }))
    }
    expect(await store.get('last')).toEqual(sessionFor(now, HOUR, { last: true }))
    for (let i = 0; i < 20; i++) expect(await store.get(`short-${i}`)).toBeUndefined()
    expect(await store.length()).toBe(301)
    expect((await store.ids()).sort()).toEqual(
      handlesFor('last', ...Array.from({ length: 300 }, (_, i) => `live-${i}`)),
    )
  })

  it('rejects calls after close() with TS_STORE_CLOSED', async () => {
    expect.assertions(2)
    const { store } = createStore()
    await store.close()
    await store.close()
    await expect(store.get('x')).rejects.toMatchObject({ code: 'TS_STORE_CLOSED' })
    await expect(store.set('x', sessionFor(0, HOUR))).rejects.toMatchObject({ code: 'TS_STORE_CLOSED' })
  })
})

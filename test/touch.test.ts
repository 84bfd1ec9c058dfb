import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('touch', () => {
  it('never shortens a session that a later write gave a longer life', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), 60_000, { n: 1 }))
    const remember = store.set('s', sessionFor(clock.now(), 30 * 24 * HOUR, { n: 1, remember: true }))
    const staleTouch = store.touch('s', sessionFor(clock.now(), 60_000, { n: 1 }))
    await Promise.all([remember, staleTouch])
    clock.advance(61_000)
    expect(await store.get('s')).toMatchObject({ remember: true })
  })

  it('stores the cookie as it was when touch() was called', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), 60_000, { n: 1 }))
    clock.advance(1000)
    const sess = sessionFor(clock.now(), 60_000, { n: 1 })
    const touched = store.touch('s', sess)
    sess.cookie.expires = new Date(clock.now() + 1).toISOString()
    await touched
    clock.advance(59_999)
    expect(await store.get('s')).toMatchObject({
      cookie: { expires: new Date(clock.now() - 59_999 + 60_000).toISOString() },
    })
  })
})

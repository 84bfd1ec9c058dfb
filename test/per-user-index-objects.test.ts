import { describe, expect, it } from 'vitest'
import { handlesFor } from './helpers/handles.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('the per-user index with Passport users stored as objects', () => {
  it('keys the session by the object id', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { passport: { user: { id: 7, name: 'Ann' } } }))
    expect((await store.listByUser(7)).map((s) => s.handle)).toEqual(handlesFor('s'))
    expect(await store.destroyByUser({ id: 7 })).toBe(1)
  })
})

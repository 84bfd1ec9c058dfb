import { describe, expect, it } from 'vitest'
import { handleFor, handlesFor } from './helpers/handles.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

/** A session as Passport leaves it after login. */
function passportSession(now: number, user: unknown, extra: Record<string, unknown> = {}) {
  return sessionFor(now, HOUR, { passport: { user }, ...extra })
}

describe('the per-user index', () => {
  it('lists the live sessions of a Passport user, whether they sit in memory or on disk', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 8 * 1024 } })
    const now = clock.now()
    await store.set('alice-laptop', passportSession(now, 'alice', { ua: 'laptop' }))
    await store.set('alice-phone', passportSession(now, 'alice', { ua: 'phone' }))
    await store.set('bob-1', passportSession(now, 'bob'))
    await store.set('anonymous', sessionFor(now, HOUR, { cart: [] }))
    await store.set('alice-old', sessionFor(now, 10, { passport: { user: 'alice' } }))
    // Push them all out of memory.
    for (let i = 0; i < 20; i++) await store.set(`f${i}`, sessionFor(now, HOUR, { pad: 'x'.repeat(600) }))
    await store.flush()
    clock.advance(10)

    const alice = await store.listByUser('alice')
    expect(alice.map((s) => s.handle).sort()).toEqual(handlesFor('alice-laptop', 'alice-phone'))
    expect(alice.find((s) => s.handle === handleFor('alice-phone'))?.session).toMatchObject({ ua: 'phone' })
    expect(alice[0]?.expiresAt).toBe(now + HOUR)
    expect(await store.listByUser('nobody')).toEqual([])
    expect(await store.listByUser(undefined)).toEqual([])
  })

  it('follows a session that changes hands (login, logout)', async () => {
    const { store, clock } = createStore()
    const now = clock.now()
    await store.set('s', sessionFor(now, HOUR, { cart: ['a'] }))
    expect(await store.listByUser('carol')).toEqual([])
    await store.set('s', passportSession(now, 'carol', { cart: ['a'] }))
    expect((await store.listByUser('carol')).map((s) => s.handle)).toEqual(handlesFor('s'))
    await store.set('s', sessionFor(now, HOUR, { cart: ['a'] }))
    expect(await store.listByUser('carol')).toEqual([])
  })

  it('destroyByUser logs a user out everywhere except the sessions named', async () => {
    const { store, clock } = createStore()
    const now = clock.now()
    for (const sid of ['d1', 'd2', 'd3']) await store.set(sid, passportSession(now, 42))
    await store.set('other', passportSession(now, 43))
    expect(await store.destroyByUser(42, { except: 'd2' })).toBe(2)
    expect(await store.get('d1')).toBeUndefined()
    expect(await store.get('d3')).toBeUndefined()
    expect(await store.get('d2')).toMatchObject({ passport: { user: 42 } })
    expect(await store.get('other')).toBeDefined()
    expect((await store.listByUser('42')).map((s) => s.handle)).toEqual(handlesFor('d2'))
    expect(await store.destroyByUser(42)).toBe(1)
    expect(await store.listByUser(42)).toEqual([])
  })

  it('uses the userId option when given', async () => {
    const { store, clock } = createStore({
      userId: (sess) => (sess.account as { id?: string } | undefined)?.id,
    })
    await store.set('s1', sessionFor(clock.now(), HOUR, { account: { id: 'acct-7' }, userId: 'ignored' }))
    expect((await store.listByUser('acct-7')).map((s) => s.handle)).toEqual(handlesFor('s1'))
    expect(await store.listByUser('ignored')).toEqual([])
  })
})

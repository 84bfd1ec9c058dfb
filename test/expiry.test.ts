import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

function rowCount(dbPath: string): number {
  const db = new Database(dbPath, { readonly: true })
  try {
    return (db.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n
  } finally {
    db.close()
  }
}

describe('expiry', () => {
  it('a session with maxAge 5 ms is gone from memory and from disk once the clock passes it', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 4096 } })
    await store.set('short', sessionFor(clock.now(), 5, { v: 1 }))
    clock.advance(4)
    expect(await store.get('short')).toEqual(sessionFor(clock.now() - 4, 5, { v: 1 }))
    expect(store.stats().hits.memory).toBe(1)
    clock.advance(1)
    expect(await store.get('short')).toBeUndefined()

    // And from disk alone: push it out of memory first, then read.
    await store.set('short2', sessionFor(clock.now(), 5, { v: 2 }))
    for (let i = 0; i < 10; i++)
      await store.set(`filler-${i}`, sessionFor(clock.now(), HOUR, { pad: 'f'.repeat(400) }))
    await store.flush()
    clock.advance(5)
    const before = store.stats()
    expect(await store.get('short2')).toBeUndefined()
    expect(store.stats().misses).toBe(before.misses + 1)
  })

  it('falls back to ttl (seconds) when the cookie has no expires', async () => {
    const { store, clock } = createStore({ ttl: 10 })
    await store.set('no-expires', { cookie: { originalMaxAge: null }, v: 1 })
    clock.advance(9_999)
    expect(await store.get('no-expires')).toMatchObject({ v: 1 })
    clock.advance(1)
    expect(await store.get('no-expires')).toBeUndefined()
  })

  it('takes ttl as a function of the session', async () => {
    const { store, clock } = createStore({ ttl: (sess) => (sess.remember ? 100 : 1) })
    await store.set('a', { remember: true })
    await store.set('b', { remember: false })
    clock.advance(1000)
    expect(await store.get('a')).toMatchObject({ remember: true })
    expect(await store.get('b')).toBeUndefined()
  })

  it('treats a write whose expiry has already passed as a destroy', async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { v: 1 }))
    await store.set('s', sessionFor(clock.now(), -1, { v: 2 }))
    expect(await store.get('s')).toBeUndefined()
    expect(rowCount(dbPath)).toBe(0)
  })

  it('the sweep deletes expired rows in bounded batches and keeps live ones', async () => {
    const { store, clock, dbPath } = createStore({ sweepBatchSize: 100 })
    for (let i = 0; i < 950; i++) await store.set(`old-${i}`, sessionFor(clock.now(), 1000, { i }))
    for (let i = 0; i < 50; i++) await store.set(`new-${i}`, sessionFor(clock.now(), HOUR, { i }))
    clock.advance(1000)
    expect(rowCount(dbPath)).toBe(1000)
    expect(await store.sweep()).toBe(950)
    expect(rowCount(dbPath)).toBe(50)
    expect(store.stats().expired).toBe(950)
    expect(store.stats().memory.entries).toBe(50)
    expect(await store.length()).toBe(50)
  })

  it('touch slides the expiry and persists the new cookie.expires without changing the data', async () => {
    const fixture = createStore()
    const { clock } = fixture
    await fixture.store.set('s', sessionFor(clock.now(), 1000, { cart: ['a'] }))
    clock.advance(900)
    await fixture.store.touch('s', sessionFor(clock.now(), 1000, { cart: ['stale copy'] }))
    clock.advance(900)
    expect(await fixture.store.get('s')).toEqual(sessionFor(clock.now() - 900, 1000, { cart: ['a'] }))
    await fixture.store.close()
    const reopened = fixture.reopen()
    expect(await reopened.get('s')).toEqual(sessionFor(clock.now() - 900, 1000, { cart: ['a'] }))
    clock.advance(100)
    expect(await reopened.get('s')).toBeUndefined()
  })

  it('touch of a missing or expired session does not bring it back', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), 10, {}))
    clock.advance(10)
    await store.touch('s', sessionFor(clock.now(), 1000, {}))
    await store.touch('never', sessionFor(clock.now(), 1000, {}))
    expect(await store.get('s')).toBeUndefined()
    expect(await store.get('never')).toBeUndefined()
  })
})

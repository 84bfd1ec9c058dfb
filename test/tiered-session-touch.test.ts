import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { createStore } from './helpers/stores.js'
import { sidFromSetCookie, tieredApp } from './helpers/tiered-apps.js'

const secret = 'touch test secret'
const HOUR = 3_600_000

describe('throttled touch (touchAfter)', () => {
  it('an unmodified request inside touchAfter writes nothing; past it, one touch slides the expiry', async () => {
    const { store, clock } = createStore()
    clock.set(Date.now())
    const agent = request.agent(tieredApp(express, { secret, store, cookie: { maxAge: HOUR } }))
    const sid = sidFromSetCookie((await agent.get('/views')).headers['set-cookie']) as string
    const expiresAt = Date.parse((await store.get(sid))?.cookie?.expires as never)
    const writes = store.stats().writes

    clock.advance(HOUR / 4)
    await agent.get('/whoami').expect(200)
    clock.advance(HOUR / 4 - 1)
    await agent.get('/whoami').expect(200)
    expect(store.stats().writes).toBe(writes)

    clock.advance(2)
    await agent.get('/whoami').expect(200)
    expect(store.stats().writes).toBe(writes + 1)
    const touched = Date.parse((await store.get(sid))?.cookie?.expires as never)
    expect(touched).toBe(clock.now() + HOUR)
    expect(touched).toBeGreaterThan(expiresAt)
    // The data was not rewritten by the touch.
    expect(await store.get(sid)).toMatchObject({ views: 1 })

    // The slid expiry is what the store enforces: past the old expiry the session is still there.
    clock.set(expiresAt + 1)
    await agent.get('/whoami').expect(200)
    expect(await store.get(sid)).toMatchObject({ views: 1 })
  })

  it('touchAfter: 0 touches on every request', async () => {
    const { store, clock } = createStore()
    clock.set(Date.now())
    const agent = request.agent(
      tieredApp(express, { secret, store, touchAfter: 0, cookie: { maxAge: HOUR } }),
    )
    await agent.get('/views')
    const writes = store.stats().writes
    for (let i = 0; i < 3; i++) {
      clock.advance(1)
      await agent.get('/whoami').expect(200)
    }
    expect(store.stats().writes).toBe(writes + 3)
  })

  it('works for browser-session cookies (no maxAge) using the store ttl as the lifetime', async () => {
    const { store, clock } = createStore({ ttl: 100 })
    clock.set(Date.now())
    const agent = request.agent(tieredApp(express, { secret, store }))
    await agent.get('/views')
    const writes = store.stats().writes
    clock.advance(40_000)
    await agent.get('/whoami').expect(200)
    expect(store.stats().writes).toBe(writes)
    clock.advance(20_000)
    await agent.get('/whoami').expect(200)
    expect(store.stats().writes).toBe(writes + 1)
    clock.advance(90_000)
    expect((await agent.get('/whoami').expect(200)).body.id).toBeTruthy()
    expect(await store.length()).toBe(1)
  })

  it('a modified request writes once (a merge), not a merge plus a touch', async () => {
    const { store, clock } = createStore()
    clock.set(Date.now())
    const agent = request.agent(
      tieredApp(express, { secret, store, touchAfter: 0, cookie: { maxAge: HOUR } }),
    )
    await agent.get('/views')
    const writes = store.stats().writes
    await agent.get('/views')
    expect(store.stats().writes).toBe(writes + 1)
  })
})

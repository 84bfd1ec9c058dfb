import request from 'supertest'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import { systemClock } from '../src/clock.js'
import { expressSessionApp } from './helpers/apps.js'
import { handleFor } from './helpers/handles.js'
import { createStore } from './helpers/stores.js'

function sidFromCookie(setCookie: string[] | string | undefined): string {
  const header = ([] as string[]).concat(setCookie ?? []).find((c) => c.startsWith('connect.sid='))
  const value = decodeURIComponent(header?.split(';')[0]?.slice('connect.sid='.length) ?? '')
  return value.slice(2, value.lastIndexOf('.'))
}

/**
 * express-session reads Date.now() for cookie expiry: fake only Date (no timers) at a fixed instant, restored
 * when the test ends. Returns that instant.
 */
function freezeDate(at = Date.UTC(2026, 5, 1)): number {
  vi.useFakeTimers({ toFake: ['Date'] })
  onTestFinished(() => {
    vi.useRealTimers()
  })
  vi.setSystemTime(at)
  return at
}

describe('express-session with TieredStore (Express 5, supertest)', () => {
  it('creates, reads and modifies a session across requests', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store))
    const first = await agent.get('/views').expect(200, { views: 1 })
    const sid = sidFromCookie(first.headers['set-cookie'])
    await agent.get('/views').expect(200, { views: 2 })
    await agent.get('/views').expect(200, { views: 3 })
    expect(await store.get(sid)).toMatchObject({ views: 3 })
    expect(await store.length()).toBe(1)
  })

  it('a redirect followed by an immediate request sees the saved value', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store))
    for (const item of ['apple', 'pear', 'plum']) {
      await agent.post('/cart').type('form').send({ item }).expect(302)
      // No wait: the store acknowledged the write before express-session ended the response.
      const res = await agent.get('/cart').expect(200)
      expect(res.body.cart.at(-1)).toBe(item)
    }
  })

  it('regenerate on login replaces the id and destroys the old session in the store', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store))
    const before = sidFromCookie(
      (await agent.post('/cart').type('form').send({ item: 'book' })).headers['set-cookie'],
    )
    const login = await agent.post('/login').type('form').send({ user: 'alice' }).expect(200)
    const after = sidFromCookie(login.headers['set-cookie'])
    expect(after).not.toBe(before)
    expect(await store.get(before)).toBeUndefined()
    await agent.get('/whoami').expect(200, { user: 'alice', cart: ['book'], id: after })
    expect((await store.listByUser('alice')).map((s) => s.handle)).toEqual([handleFor(after)])
  })

  it('destroy on logout removes the session from the store', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store))
    const sid = sidFromCookie(
      (await agent.post('/login').type('form').send({ user: 'bob' })).headers['set-cookie'],
    )
    expect(await store.get(sid)).toBeDefined()
    await agent.post('/logout').expect(200)
    expect(await store.get(sid)).toBeUndefined()
    const after = await agent.get('/whoami').expect(200)
    expect(after.body).toMatchObject({ user: null, cart: [] })
    expect(after.body.id).not.toBe(sid)
  })

  it('an unmodified request touches the stored expiry instead of rewriting the session', async () => {
    const t0 = freezeDate()
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store))
    const sid = sidFromCookie((await agent.get('/views')).headers['set-cookie'])
    const writesBefore = store.stats().writes
    expect(Date.parse((await store.get(sid))?.cookie?.expires as string)).toBe(t0 + 60_000)
    vi.setSystemTime(t0 + 10_000)
    await agent.get('/whoami').expect(200)
    expect(store.stats().writes).toBe(writesBefore + 1)
    const after = await store.get(sid)
    expect(after).toMatchObject({ views: 1 })
    expect(Date.parse(after?.cookie?.expires as string)).toBe(t0 + 70_000)
    // The store enforces the slid expiry, not the first one.
    vi.setSystemTime(t0 + 65_000)
    expect(await store.get(sid)).toMatchObject({ views: 1 })
  })

  it('with rolling, sends the cookie on every response and slides the stored expiry', async () => {
    const t0 = freezeDate()
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(expressSessionApp(store, { rolling: true }))
    const first = await agent.get('/views')
    const sid = sidFromCookie(first.headers['set-cookie'])
    vi.setSystemTime(t0 + 30_000)
    const second = await agent.get('/whoami').expect(200)
    expect(sidFromCookie(second.headers['set-cookie'])).toBe(sid)
    expect(second.body.id).toBe(sid)
    expect(Date.parse((await store.get(sid))?.cookie?.expires as string)).toBe(t0 + 90_000)
  })

  it('a session with cookie maxAge 5 ms is gone once the store clock passes it', async () => {
    const { store, clock } = createStore()
    clock.set(Date.now())
    const agent = request.agent(expressSessionApp(store, { cookie: { maxAge: 5 } }))
    const res = await agent.get('/views').expect(200, { views: 1 })
    const sid = sidFromCookie(res.headers['set-cookie'])
    const expires = new Date((await store.get(sid))?.cookie?.expires as unknown as string).getTime()
    clock.set(expires - 1)
    expect(await store.get(sid)).toMatchObject({ views: 1 })
    clock.set(expires)
    expect(await store.get(sid)).toBeUndefined()
    await agent.get('/whoami').expect(200)
    expect(await store.length()).toBe(0)
  })
})

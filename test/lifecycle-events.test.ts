// Lifecycle events: `created`, `destroyed` (destroy, logout, regenerate) and `expired` (read, sweep), each
// exactly once per step, by the instance that made it, with `{ userId, reason }` at most.

import { once } from 'node:events'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import type { TieredStore } from '../src/store.js'
import { expressSessionApp } from './helpers/apps.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { expressVersions, tieredApp } from './helpers/tiered-apps.js'

const HOUR = 3_600_000

type Heard = { event: string; payload: Record<string, unknown> }

/** Records every lifecycle event of `store`, in order. */
function listen(store: TieredStore): Heard[] {
  const heard: Heard[] = []
  for (const event of ['created', 'destroyed', 'expired'])
    store.on(event, (payload: Record<string, unknown>) => heard.push({ event, payload }))
  return heard
}

describe('created', () => {
  it('fires once when a write creates a session, not for later writes, merges or touches of it', async () => {
    const { store, clock } = createStore()
    const heard = listen(store)
    await store.set('s1', sessionFor(clock.now(), HOUR, { userId: 'alice', n: 1 }))
    await store.set('s1', sessionFor(clock.now(), HOUR, { userId: 'alice', n: 2 }))
    await store.merge('s1', { set: { n: '3' }, unset: [] })
    clock.advance(60_000)
    await store.touch('s1', sessionFor(clock.now(), HOUR, { userId: 'alice', n: 3 }))
    await store.set('s2', sessionFor(clock.now(), HOUR, { n: 1 }))
    await store.flush()
    expect(heard).toEqual([
      { event: 'created', payload: { userId: 'alice' } },
      { event: 'created', payload: { userId: null } },
    ])
    expect(store.stats().lifecycle.created).toBe(2)
    expect(store.metrics()).toContain(
      'tiered_session_lifecycle_events_total{event="created",reason="write"} 2',
    )
  })

  it('fires once for a visitor saved through express-session and through tieredSession()', async () => {
    const { store } = createStore()
    const heard = listen(store)
    const agent = request.agent(expressSessionApp(store))
    await agent.get('/views').expect(200)
    await agent.get('/views').expect(200)
    expect(heard).toEqual([{ event: 'created', payload: { userId: null } }])

    const other = createStore()
    const heardOther = listen(other.store)
    const tiered = request.agent(tieredApp(expressVersions[0][1], { secret: 's', store: other.store }))
    await tiered.get('/views').expect(200)
    await tiered.get('/views').expect(200)
    expect(heardOther).toEqual([{ event: 'created', payload: { userId: null } }])
  })
})

describe('destroyed', () => {
  it("says 'destroy' once for destroy(), and nothing for a session that is not there", async () => {
    const { store, clock } = createStore()
    await store.set('s1', sessionFor(clock.now(), HOUR, { userId: 'bob' }))
    const heard = listen(store)
    await store.destroy('s1')
    await store.destroy('s1')
    await store.destroy('never')
    expect(heard).toEqual([{ event: 'destroyed', payload: { userId: 'bob', reason: 'destroy' } }])
    expect(store.stats().lifecycle.destroyed).toEqual({ destroy: 1, logout: 0, regenerate: 0 })
  })

  it('names the user of a session spilled out of memory (read from the file)', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 4096 } })
    await store.set('cold', sessionFor(clock.now(), HOUR, { userId: 'carol', pad: 'x'.repeat(1000) }))
    for (let i = 0; i < 8; i++)
      await store.set(`hot${i}`, sessionFor(clock.now(), HOUR, { pad: 'y'.repeat(600) }))
    await store.flush()
    expect(store.stats().spills).toBeGreaterThan(0)
    const heard = listen(store)
    await store.destroy('cold')
    expect(heard).toEqual([{ event: 'destroyed', payload: { userId: 'carol', reason: 'destroy' } }])
  })

  it("says 'logout' once per session destroyByUser() removes, none for those it keeps", async () => {
    const { store, clock } = createStore()
    for (const sid of ['a1', 'a2', 'a3'])
      await store.set(sid, sessionFor(clock.now(), HOUR, { userId: 'alice' }))
    await store.set('b1', sessionFor(clock.now(), HOUR, { userId: 'bob' }))
    const heard = listen(store)
    expect(await store.destroyByUser('alice', { except: 'a2' })).toBe(2)
    expect(heard).toEqual([
      { event: 'destroyed', payload: { userId: 'alice', reason: 'logout' } },
      { event: 'destroyed', payload: { userId: 'alice', reason: 'logout' } },
    ])
    expect(store.stats().lifecycle.destroyed).toEqual({ destroy: 0, logout: 2, regenerate: 0 })
  })

  it("says 'regenerate' once for express-session's req.session.regenerate(), then the new session is created", async () => {
    const { store } = createStore()
    const agent = request.agent(expressSessionApp(store))
    await agent.post('/cart').type('form').send({ item: 'apple' }).expect(302)
    const heard = listen(store)
    await agent.post('/login').type('form').send({ user: 'dave' }).expect(200)
    expect(heard).toEqual([
      { event: 'destroyed', payload: { userId: null, reason: 'regenerate' } },
      { event: 'created', payload: { userId: 'dave' } },
    ])
    expect(store.stats().lifecycle).toMatchObject({ created: 2, destroyed: { regenerate: 1, destroy: 0 } })
  })

  it.each(expressVersions)(
    "says 'regenerate' once for tieredSession()'s regenerate (%s)",
    async (_name, express) => {
      const { store } = createStore()
      const agent = request.agent(tieredApp(express, { secret: 's', store }))
      await agent.post('/cart').type('form').send({ item: 'apple' }).expect(302)
      const heard = listen(store)
      await agent.post('/login').type('form').send({ user: 'erin' }).expect(200)
      expect(heard.filter((h) => h.event === 'destroyed')).toEqual([
        { event: 'destroyed', payload: { userId: null, reason: 'regenerate' } },
      ])
      expect(heard.filter((h) => h.event === 'created')).toHaveLength(1)
    },
  )
})

describe('expired', () => {
  it("says 'read' once when a read finds the session expired, and the sweep does not count it again", async () => {
    const { store, clock } = createStore()
    await store.set('s1', sessionFor(clock.now(), 60_000, { userId: 'frank' }))
    const heard = listen(store)
    clock.advance(60_000)
    expect(await store.get('s1')).toBeUndefined()
    expect(await store.get('s1')).toBeUndefined()
    await store.flush()
    expect(await store.sweep()).toBe(0)
    expect(heard).toEqual([{ event: 'expired', payload: { userId: 'frank', reason: 'read' } }])
    expect(store.stats().lifecycle.expired).toEqual({ read: 1, sweep: 0 })
  })

  it("says 'sweep' once per session the sweep removes, and a later read adds nothing", async () => {
    const { store, clock } = createStore()
    await store.set('s1', sessionFor(clock.now(), 60_000, { userId: 'grace' }))
    await store.set('s2', sessionFor(clock.now(), 60_000))
    await store.set('live', sessionFor(clock.now(), HOUR))
    const heard = listen(store)
    clock.advance(60_000)
    expect(await store.sweep()).toBe(2)
    expect(await store.get('s1')).toBeUndefined()
    expect(await store.sweep()).toBe(0)
    await store.flush()
    expect(heard).toEqual([
      { event: 'expired', payload: { userId: 'grace', reason: 'sweep' } },
      { event: 'expired', payload: { userId: null, reason: 'sweep' } },
    ])
    expect(store.metrics()).toContain(
      'tiered_session_lifecycle_events_total{event="expired",reason="sweep"} 2',
    )
  })
})

describe('in shared mode', () => {
  const redis = useRedis()

  it('only the instance that made a step emits it, once', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    const heardA = listen(a)
    const heardB = listen(b)
    await a.set('s1', sharedSession(clock.now(), HOUR, { userId: 'heidi', v: 1 }))
    // Another instance writing the session again does not create it.
    // NB: A serves B's write once B's invalidation reached it (Redis may answer B first: a write of one command).
    const invalidated = once(a, 'invalidation')
    await b.set('s1', sharedSession(clock.now(), HOUR, { userId: 'heidi', v: 2 }))
    await invalidated
    expect(await a.get('s1')).toMatchObject({ v: 2 })
    await b.destroy('s1')
    await a.destroy('s1')
    // A session destroyed and written again is created again.
    await a.set('s1', sharedSession(clock.now(), HOUR, { userId: 'heidi', v: 3 }))
    expect(heardA).toEqual([
      { event: 'created', payload: { userId: 'heidi' } },
      { event: 'created', payload: { userId: 'heidi' } },
    ])
    expect(heardB).toEqual([{ event: 'destroyed', payload: { userId: 'heidi', reason: 'destroy' } }])
    expect(a.stats().lifecycle).toMatchObject({ created: 2, destroyed: { destroy: 0 } })
    expect(b.stats().lifecycle).toMatchObject({ created: 0, destroyed: { destroy: 1 } })
  })
})

import express from 'express'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import type { TieredStore } from '../src/store.js'
import { handleFor } from './helpers/handles.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedStores } from './helpers/shared-stores.js'
import { createStore } from './helpers/stores.js'
import { sessionOf, sidFromSetCookie, tieredApp } from './helpers/tiered-apps.js'

const secret = 'merge test secret'

/**
 * A commit either stores the request's whole session (nobody wrote it since the load) or applies the changed
 * keys onto the latest version (somebody did). Both must give the same result a full read-modify-write would.
 */
async function checkMerges(store: TieredStore): Promise<void> {
  const app = tieredApp(express, { secret, store }, (a) => {
    // A write from elsewhere (another request, another instance) lands between this request's load and commit.
    a.post('/race', async (req, res) => {
      const s = sessionOf(req)
      await store.merge(s.id, { set: { other: '"from elsewhere"' }, unset: [] })
      s.mine = 'from this request'
      res.json({ ok: true })
    })
  })
  const agent = request.agent(app)
  const sid = sidFromSetCookie(
    (await agent.post('/login').type('form').send({ user: 'zoe' })).headers['set-cookie'],
  )
  await agent.get('/views').expect(200, { views: 1 })
  await agent.post('/cart').type('form').send({ item: 'tea' })
  await agent.get('/views').expect(200, { views: 2 })
  expect(await store.get(sid as string)).toEqual({
    cookie: expect.objectContaining({ path: '/', httpOnly: true }),
    user: 'zoe',
    userId: 'zoe',
    cart: ['tea'],
    views: 2,
  })
  expect((await store.listByUser('zoe')).map((s) => s.handle)).toEqual([handleFor(sid as string)])

  await agent.post('/race').expect(200)
  expect(await store.get(sid as string)).toMatchObject({
    other: 'from elsewhere',
    mine: 'from this request',
    views: 2,
    cart: ['tea'],
  })
  await agent.post('/set/cart').type('form').send({ value: 'replaced' }).expect(200)
  expect(await store.get(sid as string)).toMatchObject({ other: 'from elsewhere', cart: 'replaced' })
}

describe('tieredSession() commits', () => {
  it('keeps stored keys that req.session cannot hold (reserved names) when the request changes others', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store }))
    const sid = sidFromSetCookie((await agent.get('/views').expect(200)).headers['set-cookie']) as string
    const stored = (await store.get(sid)) as Record<string, unknown>
    await store.set(sid, { ...stored, id: 'written by another app', save: 1 })
    await agent.get('/views').expect(200, { views: 2 })
    expect(await store.get(sid)).toMatchObject({ views: 2, id: 'written by another app', save: 1 })
  })

  it('local mode: whole-session writes and merges onto a version changed meanwhile', async () => {
    await checkMerges(createStore({ clock: systemClock }).store)
  })

  describe('shared mode', () => {
    const redis = useRedis()
    it('whole-session writes and merges onto a version changed meanwhile', async () => {
      const { open } = sharedStores(() => ({ url: redis.url }))
      await checkMerges(await open('a', { clock: systemClock }))
    })
  })
})

import { once } from 'node:events'
import express from 'express'
import { Redis as Redis5 } from 'ioredis5'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { expressSessionApp } from './helpers/apps.js'
import { handlesFor } from './helpers/handles.js'
import { useRedis } from './helpers/redis-server.js'
import { readUntilTracked, sharedStores, sharedStoresWithClients } from './helpers/shared-stores.js'
import { sidFromSetCookie, tieredApp } from './helpers/tiered-apps.js'

describe('two Express apps with their own stores on one Redis', () => {
  const redis = useRedis()

  it('express-session: logged in on app A is logged in on app B; logged out on A is logged out on B', async () => {
    const { open } = sharedStores(() => ({ url: redis.url }))
    const storeA = await open('a', { clock: systemClock })
    const storeB = await open('b', { clock: systemClock })
    const appA = expressSessionApp(storeA)
    const appB = expressSessionApp(storeB)
    const login = await request(appA).post('/login').type('form').send({ user: 'alice' }).expect(200)
    const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string

    expect((await request(appB).get('/whoami').set('Cookie', cookie)).body).toMatchObject({ user: 'alice' })
    // NB: B's first two reads are not tracked (its copy is kept unverified); its third, a version check, is.
    expect((await request(appB).get('/whoami').set('Cookie', cookie)).body).toMatchObject({ user: 'alice' })
    expect((await request(appB).get('/whoami').set('Cookie', cookie)).body).toMatchObject({ user: 'alice' })
    // B now holds the session in its near cache; A's logout must reach it.
    const invalidated = once(storeB, 'invalidation')
    await request(appA).post('/logout').set('Cookie', cookie).expect(200)
    await invalidated
    expect((await request(appB).get('/whoami').set('Cookie', cookie)).body).toMatchObject({ user: null })
  })

  it('tieredSession(): 20 parallel requests on two instances, each setting its own key, all survive', async () => {
    const { open } = sharedStores(() => ({ url: redis.url }))
    const storeA = await open('a', { clock: systemClock })
    const storeB = await open('b', { clock: systemClock })
    const apps = [
      tieredApp(express, { secret: 's', store: storeA }),
      tieredApp(express, { secret: 's', store: storeB }),
    ] as const
    const first = await request(apps[0]).get('/views').expect(200)
    const cookie = ([] as string[]).concat(first.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string
    const sid = sidFromSetCookie(first.headers['set-cookie']) as string
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        request(i % 2 === 0 ? apps[0] : apps[1])
          .post(`/set/k${i}`)
          .set('Cookie', cookie)
          .type('form')
          .send({ value: `v${i}` })
          .expect(200),
      ),
    )
    const stored = (await storeA.get(sid)) as unknown as Record<string, unknown>
    for (let i = 0; i < 20; i++) expect(stored[`k${i}`]).toBe(`v${i}`)
    expect(stored.views).toBe(1)
  })

  it('works with an ioredis 5 client', async () => {
    const { open, clock } = sharedStoresWithClients(() => new Redis5(redis.url))
    const a = await open('a')
    const b = await open('b')
    const session = { cookie: { expires: new Date(clock.now() + 60_000).toISOString() }, userId: 'u5', v: 1 }
    await a.set('s5', session)
    expect(await readUntilTracked(b, 's5')).toMatchObject({ v: 1 })
    const invalidated = once(b, 'invalidation')
    await a.merge('s5', { set: { v: '2' }, unset: [] })
    await invalidated
    expect(await b.get('s5')).toMatchObject({ v: 2 })
    expect((await b.listByUser('u5')).map((s) => s.handle)).toEqual(handlesFor('s5'))
    // NB: A holds a copy: it learns of B's destroy through the invalidation, which is asynchronous.
    const destroyed = once(a, 'invalidation')
    await b.destroyByUser('u5')
    await destroyed
    expect(await a.get('s5')).toBeUndefined()
  })
})

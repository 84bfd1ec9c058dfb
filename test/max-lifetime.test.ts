// `maxLifetime`: a session expires at creation + maxLifetime however active it is. The store records the
// creation time on the first write; no touch or write moves the expiry past it, in memory, on disk or in Redis;
// tieredSession() caps the cookie's expiry at it. Time moves only by the injected clock.

import Database from 'better-sqlite3'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { hashSid } from '../src/at-rest/session-key.js'
import { tieredSession } from '../src/middleware/tiered-session.js'
import type { TieredStoreOptions } from '../src/options.js'
import { TieredStore } from '../src/store.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { sessionOf } from './helpers/tiered-apps.js'

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const MAX_S = 30 * 60 // half an hour

function rowOf(dbPath: string, sid: string) {
  const db = new Database(dbPath, { readonly: true })
  try {
    return db.prepare('SELECT expiresAt, createdAt FROM sessions WHERE sid = ?').get(hashSid(sid)) as
      | { expiresAt: number; createdAt: number | null }
      | undefined
  } finally {
    db.close()
  }
}

describe('maxLifetime options', () => {
  it.each([0, -1, Number.NaN, '60', {}])('refuses %o with TS_INVALID_OPTION naming maxLifetime', (value) => {
    expect(() => new TieredStore({ maxLifetime: value } as unknown as TieredStoreOptions)).toThrow(
      expect.objectContaining({ code: 'TS_INVALID_OPTION', message: expect.stringContaining('maxLifetime') }),
    )
  })

  it('a function gets the whole session; a bad answer refuses the write with TS_INVALID_OPTION', async () => {
    const { store, clock } = createStore({ maxLifetime: (sess) => (sess.admin ? 60 : Number.NaN) })
    const t0 = clock.now()
    await store.set('admin', sessionFor(t0, HOUR, { admin: true }))
    expect(await store.get('admin')).toMatchObject({ admin: true })
    clock.advance(60_000)
    expect(await store.get('admin')).toBeUndefined()
    await expect(store.set('user', sessionFor(clock.now(), HOUR, { admin: false }))).rejects.toMatchObject({
      code: 'TS_INVALID_OPTION',
    })
  })
})

describe('maxLifetime in local mode', () => {
  it('a session touched every minute is gone at creation + maxLifetime, from memory and from disk', async () => {
    const { store, clock, dbPath } = createStore({ maxLifetime: MAX_S })
    const t0 = clock.now()
    const deadline = t0 + MAX_S * 1000
    await store.set('busy', sessionFor(t0, HOUR, { userId: 'u', cart: ['tea'] }))
    await store.flush()
    expect(rowOf(dbPath, 'busy')).toEqual({ expiresAt: deadline, createdAt: t0 })
    for (let minute = 1; minute < 30; minute++) {
      clock.advance(MINUTE)
      expect(await store.get('busy')).toMatchObject({ cart: ['tea'] })
      if (minute % 2 === 0) await store.touch('busy', sessionFor(clock.now(), HOUR, { userId: 'u' }))
      else await store.set('busy', sessionFor(clock.now(), HOUR, { userId: 'u', cart: ['tea'], n: minute }))
    }
    await store.flush()
    expect(rowOf(dbPath, 'busy')).toEqual({ expiresAt: deadline, createdAt: t0 })
    clock.set(deadline - 1)
    expect(await store.get('busy')).toMatchObject({ cart: ['tea'] })
    clock.set(deadline)
    expect(await store.get('busy')).toBeUndefined()
    expect(await store.listByUser('u')).toEqual([])
    // NB: the read that found it expired removed its row (lifecycle `expired`, reason 'read'); the sweep the rest.
    await store.sweep()
    expect(rowOf(dbPath, 'busy')).toBeUndefined()
  })

  it('the creation time survives a restart (memory empty: it is read from disk)', async () => {
    const fixture = createStore({ maxLifetime: MAX_S })
    const t0 = fixture.clock.now()
    await fixture.store.set('s', sessionFor(t0, HOUR, { n: 1 }))
    await fixture.store.close()
    fixture.clock.advance(10 * MINUTE)
    const store = fixture.reopen()
    await store.set('s', sessionFor(fixture.clock.now(), HOUR, { n: 2 }))
    await store.flush()
    expect(rowOf(fixture.dbPath, 's')).toEqual({ expiresAt: t0 + MAX_S * 1000, createdAt: t0 })
  })

  it('a destroyed session comes back as a new one with a new creation time', async () => {
    const { store, clock, dbPath } = createStore({ maxLifetime: MAX_S })
    await store.set('s', sessionFor(clock.now(), HOUR))
    await store.destroy('s')
    clock.advance(10 * MINUTE)
    const t1 = clock.now()
    await store.set('s', sessionFor(t1, HOUR))
    await store.flush()
    expect(rowOf(dbPath, 's')).toEqual({ expiresAt: t1 + MAX_S * 1000, createdAt: t1 })
  })
})

describe('maxLifetime in shared mode', () => {
  const redis = useRedis()

  it('Redis holds the creation time and the capped expiry; no instance serves the session after it', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', { maxLifetime: MAX_S })
    const b = await open('b', { maxLifetime: MAX_S })
    const t0 = clock.now()
    const deadline = t0 + MAX_S * 1000
    const key = `${prefix}${hashSid('busy')}`
    await a.set('busy', sharedSession(t0, HOUR, { cart: ['tea'] }))
    for (let minute = 1; minute < 30; minute++) {
      clock.advance(MINUTE)
      const store = minute % 2 === 0 ? a : b
      expect(await store.get('busy')).toMatchObject({ cart: ['tea'] })
      if (minute % 3 === 0) await store.touch('busy', sharedSession(clock.now(), HOUR))
      else await store.set('busy', sharedSession(clock.now(), HOUR, { cart: ['tea'], n: minute }))
    }
    await a.flush()
    await b.flush()
    expect(await redisCommand(redis.port, ['HMGET', key, 'e', 'a'])).toEqual([String(deadline), String(t0)])
    // An instance that never held the session (no memory copy) keeps the creation time Redis holds.
    const c = await open('c', { maxLifetime: MAX_S })
    await c.set('busy', sharedSession(clock.now(), HOUR, { cart: ['tea'], by: 'c' }))
    expect(await redisCommand(redis.port, ['HMGET', key, 'e', 'a'])).toEqual([String(deadline), String(t0)])
    clock.set(deadline)
    expect(await a.get('busy')).toBeUndefined()
    expect(await b.get('busy')).toBeUndefined()
    expect(await c.get('busy')).toBeUndefined()
  })
})

describe('maxLifetime with tieredSession()', () => {
  it("caps the cookie's expiry at creation + maxLifetime, and the session ends there", async () => {
    const { store, clock } = createStore({ maxLifetime: MAX_S })
    const express = (await import('express')).default
    const app = express()
    app.use(tieredSession({ secret: 's3cret', store, rolling: true, cookie: { maxAge: HOUR } }))
    app.get('/visit', (req, res) => {
      const session = sessionOf(req)
      session.visits = ((session.visits as number | undefined) ?? 0) + 1
      res.json({ visits: session.visits })
    })
    const t0 = clock.now()
    const first = await request(app).get('/visit').expect(200)
    const cookie = String(first.headers['set-cookie']?.[0] ?? '')
    const sid = cookie.split(';')[0] as string
    expect(new Date(/Expires=([^;]+)/.exec(cookie)?.[1] ?? '').getTime()).toBe(
      Math.floor((t0 + MAX_S * 1000) / 1000) * 1000,
    )
    clock.advance(20 * MINUTE)
    const later = await request(app).get('/visit').set('Cookie', sid).expect(200)
    expect(later.body).toEqual({ visits: 2 })
    const rolled = String(later.headers['set-cookie']?.[0] ?? '')
    expect(new Date(/Expires=([^;]+)/.exec(rolled)?.[1] ?? '').getTime()).toBe(
      Math.floor((t0 + MAX_S * 1000) / 1000) * 1000,
    )
    clock.advance(10 * MINUTE)
    const after = await request(app).get('/visit').set('Cookie', sid).expect(200)
    expect(after.body).toEqual({ visits: 1 })
  })
})

// `hashIds` (the default): sessions are stored under SHA-256 of their ids; users see handles, never stored keys;
// sessions stored under plain ids (0.1.0, `hashIds: false`) are still found and moved to hashed keys.

import Database from 'better-sqlite3'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { handleOf, hashSid } from '../src/at-rest/session-key.js'
import { TieredStore } from '../src/store.js'
import { expressSessionApp } from './helpers/apps.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

function sidsOnDisk(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true })
  try {
    return db
      .prepare<[], { sid: string }>('SELECT sid FROM sessions ORDER BY sid')
      .all()
      .map((row) => row.sid)
  } finally {
    db.close()
  }
}

describe('the stored key of an id', () => {
  it('is SHA-256, base64url without padding (a known digest: files written by earlier versions stay readable)', () => {
    expect(hashSid('abc')).toBe('ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0')
    expect(hashSid('abc')).toHaveLength(43)
  })
})

describe('hashIds in local mode', () => {
  it('stores every session under the SHA-256 of its id, and serves it by its id', async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('alpha', sessionFor(clock.now(), HOUR, { n: 1 }))
    await store.flush()
    expect(sidsOnDisk(dbPath)).toEqual([hashSid('alpha')])
    expect(await store.get('alpha')).toMatchObject({ n: 1 })
    expect(await store.get(hashSid('alpha'))).toBeUndefined()
  })

  it('lists a user\'s sessions by handle; destroyByUser takes ids in "except" and handles in "only"', async () => {
    const { store, clock } = createStore()
    for (const sid of ['laptop', 'phone', 'tablet'])
      await store.set(sid, sessionFor(clock.now(), HOUR, { userId: 'ann', device: sid }))
    const listed = await store.listByUser('ann')
    expect(listed.map((entry) => Object.keys(entry).sort())).toEqual(
      Array(3).fill(['expiresAt', 'handle', 'session']),
    )
    const phone = listed.find((entry) => entry.session.device === 'phone')
    expect(phone?.handle).toBe(handleOf(hashSid('phone')))
    expect(phone?.handle).not.toContain('phone')

    expect(await store.destroyByUser('ann', { only: phone?.handle as string })).toBe(1)
    expect(await store.get('phone')).toBeUndefined()
    expect(await store.destroyByUser('ann', { except: 'laptop' })).toBe(1)
    expect(await store.get('tablet')).toBeUndefined()
    expect(await store.get('laptop')).toMatchObject({ device: 'laptop' })
  })

  it('a file of plain ids (0.1.0, or hashIds: false) is moved to hashed keys when opened; nothing is lost', async () => {
    const fixture = createStore({ hashIds: false })
    const { clock, dbPath } = fixture
    for (const sid of ['one', 'two', 'three'])
      await fixture.store.set(sid, sessionFor(clock.now(), HOUR, { userId: 'u', sid }))
    await fixture.store.close()
    expect(sidsOnDisk(dbPath)).toEqual(['one', 'three', 'two'])

    const store = fixture.reopen({ hashIds: true })
    expect(sidsOnDisk(dbPath)).toEqual(['one', 'three', 'two'].map(hashSid).sort())
    for (const sid of ['one', 'two', 'three']) expect(await store.get(sid)).toMatchObject({ sid })
    expect((await store.listByUser('u')).length).toBe(3)
  })

  it('a file of hashed keys opened with hashIds: false is TS_INVALID_OPTION naming hashIds', async () => {
    const fixture = createStore()
    await fixture.store.set('s', sessionFor(fixture.clock.now(), HOUR))
    await fixture.store.close()
    expect(() => fixture.reopen({ hashIds: false })).toThrow(
      expect.objectContaining({ code: 'TS_INVALID_OPTION', message: expect.stringContaining('hashIds') }),
    )
  })

  it('is false by default with migrate, and refused there when asked for', () => {
    expect(
      () =>
        new TieredStore({
          redis: { url: 'redis://127.0.0.1:1' },
          migrate: { from: 'connect-redis' },
          hashIds: true,
        }),
    ).toThrow(
      expect.objectContaining({ code: 'TS_INVALID_OPTION', message: expect.stringContaining('hashIds') }),
    )
  })
})

describe('hashIds with express-session', () => {
  it('a user logged in before hashIds was switched on stays logged in after', async () => {
    const fixture = createStore({ hashIds: false })
    const before = expressSessionApp(fixture.store)
    const login = await request(before).post('/login').type('form').send({ user: 'ann' }).expect(200)
    const cookie = String(login.headers['set-cookie']?.[0] ?? '').split(';')[0] as string
    expect(cookie).toMatch(/^connect\.sid=/)
    await request(before).post('/cart').set('Cookie', cookie).type('form').send({ item: 'tea' }).expect(302)
    await fixture.store.close()

    const after = expressSessionApp(fixture.reopen({ hashIds: true }))
    const me = await request(after).get('/whoami').set('Cookie', cookie).expect(200)
    expect(me.body).toMatchObject({ user: 'ann', cart: ['tea'] })
    expect(sidsOnDisk(fixture.dbPath)).toEqual([hashSid(me.body.id)])
  })
})

describe('hashIds in shared mode', () => {
  const redis = useRedis()

  it('a session Redis holds under its plain id is served and moved to its hashed key on first read', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const old = await open('old', { hashIds: false })
    await old.set('legacy', sharedSession(clock.now(), HOUR, { userId: 'u9', n: 1 }))
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}legacy`])).toBe(1)

    const store = await open('new')
    expect(await store.get('legacy')).toMatchObject({ n: 1 })
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}legacy`])).toBe(0)
    expect(await redisCommand(redis.port, ['HGET', `${prefix}${hashSid('legacy')}`, 'p'])).toContain('"n":1')
    expect(await store.get('legacy')).toMatchObject({ n: 1 })
    expect((await store.listByUser('u9')).map((entry) => entry.handle)).toEqual([handleOf(hashSid('legacy'))])
    expect(store.stats().misses).toBe(0)
  })

  it('destroy removes a session still under its plain id (never read since the switch)', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const old = await open('old', { hashIds: false })
    await old.set('plain', sharedSession(clock.now(), HOUR, { n: 1 }))
    const store = await open('new')
    await store.destroy('plain')
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}plain`])).toBe(0)
    expect(await store.get('plain')).toBeUndefined()
  })

  it('keys, index entries and invalidations name hashed keys only', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('visible-id', sharedSession(clock.now(), HOUR, { userId: 'u1', n: 1 }))
    expect(await b.get('visible-id')).toMatchObject({ n: 1 })
    await a.set('visible-id', sharedSession(clock.now(), HOUR, { userId: 'u1', n: 2 }))
    const keys = (await redisCommand(redis.port, ['KEYS', `${prefix}*`])) as string[]
    expect(keys.some((key) => key.includes('visible-id'))).toBe(false)
    const members = await Promise.all(
      keys
        .filter((key) => key !== `${prefix}${hashSid('visible-id')}`)
        .map((key) => redisCommand(redis.port, ['SMEMBERS', key])),
    )
    expect(JSON.stringify(members)).not.toContain('visible-id')
    expect(JSON.stringify(members)).toContain(hashSid('visible-id'))
  })
})

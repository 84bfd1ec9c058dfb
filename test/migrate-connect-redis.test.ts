// Switching from connect-redis without logging anyone out (option `migrate`): real connect-redis 9 (node-redis
// 5) and connect-redis 8 (ioredis 5) apps log users in on a real redis-server; then the app runs on TieredStore
// (under express-session and under tieredSession()) on the same Redis, with the same secret.

import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { RedisStore as RedisStore9 } from 'connect-redis'
import { RedisStore as RedisStore8 } from 'connect-redis8'
import express from 'express'
import type { Store } from 'express-session'
import { Redis as Redis5 } from 'ioredis5'
import { createClient } from 'redis'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TieredStoreOptions } from '../src/options.js'
import { TieredStore } from '../src/store.js'
import { expressSessionApp } from './helpers/apps.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { redisOf, uniquePrefix } from './helpers/shared-stores.js'
import { makeTempDir } from './helpers/temp-dir.js'
import { sessionOf, tieredApp } from './helpers/tiered-apps.js'

const secret = 'the same secret before and after'
const HOUR_MS = 3_600_000

describe('switching from connect-redis (migrate)', () => {
  const redis = useRedis()

  /** connect-redis `version` on `prefix`, closed when the test ends. */
  async function connectRedis(version: 9 | 8, prefix: string): Promise<Store> {
    if (version === 9) {
      const client = createClient({ url: redis.url })
      await client.connect()
      onTestFinished(async () => {
        await client.close()
      })
      return new RedisStore9({ client, prefix }) as unknown as Store
    }
    const client = new Redis5(redis.url)
    onTestFinished(async () => {
      await client.quit()
    })
    return new RedisStore8({ client, prefix }) as unknown as Store
  }

  /** A TieredStore in shared mode on the test's Redis, closed when the test ends. */
  function tieredStore(options: TieredStoreOptions): TieredStore {
    const dir = makeTempDir()
    const store = new TieredStore({
      disk: { path: join(dir.path, 's.db') },
      redis: { url: redis.url },
      ...options,
    })
    onTestFinished(async () => {
      await store.close()
      dir.remove()
    })
    return store
  }

  /** Logs a user in on an express-session + connect-redis app; returns the cookie and the legacy key. */
  async function loginOnConnectRedis(version: 9 | 8, prefix: string) {
    const old = request.agent(
      expressSessionApp((await connectRedis(version, prefix)) as never, {
        secret,
        cookie: { maxAge: HOUR_MS },
      }),
    )
    const login = await old.post('/login').type('form').send({ user: 'alice' }).expect(200)
    const cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string
    await old.post('/cart').type('form').send({ item: 'book' }).expect(302)
    const who = await old.get('/whoami').expect(200)
    const sid = who.body.id as string
    return { sid, cookie, key: `${prefix}${sid}` }
  }

  for (const version of [9, 8] as const) {
    for (const door of ['express-session + TieredStore', 'tieredSession()'] as const) {
      it(`connect-redis ${version} → ${door}: the user stays logged in with the same data, and the key becomes ours`, async () => {
        const prefix = uniquePrefix('cr')
        const before = await loginOnConnectRedis(version, prefix)
        expect(await redisCommand(redis.port, ['TYPE', before.key])).toBe('string')
        const ttlBefore = Number(await redisCommand(redis.port, ['PTTL', before.key]))
        const errors: unknown[] = []
        const store = tieredStore({ prefix, migrate: { from: 'connect-redis' } })
        store.on('error', (e) => errors.push(e))
        const app =
          door === 'tieredSession()'
            ? tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } })
            : expressSessionApp(store, { secret, cookie: { maxAge: HOUR_MS } })
        const after = await request(app).get('/whoami').set('Cookie', before.cookie).expect(200)
        expect(after.body).toEqual({ user: 'alice', cart: ['book'], id: before.sid })
        // Converted on its first write: express-session's touch at the end of this request; tieredSession()
        // writes an unchanged session only after its touchAfter, so until then it is served as it is.
        const firstWrite = door === 'tieredSession()' ? 'string' : 'hash'
        expect(await redisCommand(redis.port, ['TYPE', before.key])).toBe(firstWrite)
        const cart = await request(app)
          .post('/cart')
          .type('form')
          .send({ item: 'pen' })
          .set('Cookie', before.cookie)
        expect(cart.status).toBe(302)
        // A hash of ours now, with an expiry no earlier than connect-redis's.
        expect(await redisCommand(redis.port, ['TYPE', before.key])).toBe('hash')
        expect(Number(await redisCommand(redis.port, ['PTTL', before.key]))).toBeGreaterThanOrEqual(
          ttlBefore - 1000,
        )
        // A second instance reads the change.
        const other = tieredStore({ prefix, migrate: { from: 'connect-redis' } })
        expect(await other.get(before.sid)).toMatchObject({ user: 'alice', cart: ['book', 'pen'] })
        expect(errors).toEqual([])
      })
    }
  }

  it("a conversion keeps the legacy session's expiry, and a legacy value changed by an old instance between our read and our conversion is not lost", async () => {
    const prefix = uniquePrefix('cr')
    const before = await loginOnConnectRedis(9, prefix)
    const store = tieredStore({ prefix, migrate: { from: 'connect-redis' } })
    const tier = redisOf(store)
    const read = await tier.get(before.sid)
    expect(read?.legacy).toBeDefined()
    const pttl = Number(await redisCommand(redis.port, ['PTTL', before.key]))
    expect(Math.abs((read?.expiresAt ?? 0) - (Date.now() + pttl))).toBeLessThan(1000)
    // An old instance (connect-redis, same format) changes the session after our read, before our write.
    const changed = JSON.stringify({ ...JSON.parse(read?.payload ?? '{}'), byOldInstance: true })
    let calls = 0
    const result = await tier.update(before.sid, (current) => {
      calls++
      if (calls === 1)
        execFileSync('redis-cli', ['-p', String(redis.port), 'SET', before.key, changed, 'KEEPTTL'])
      const session = JSON.parse(current.payload)
      return {
        payload: JSON.stringify({ ...session, byUs: true }),
        expiresAt: current.expiresAt,
        userId: current.userId,
      }
    })
    expect(result.status).toBe('written')
    expect(calls).toBe(2)
    const stored = await tier.get(before.sid)
    expect(stored?.legacy).toBeUndefined()
    expect(JSON.parse(stored?.payload ?? '{}')).toMatchObject({
      user: 'alice',
      byOldInstance: true,
      byUs: true,
    })
    // The expiry stayed the legacy key's: Redis's TTL of our key is about what connect-redis's was.
    const pttlAfter = Number(await redisCommand(redis.port, ['PTTL', before.key]))
    expect(Math.abs(pttlAfter - pttl)).toBeLessThan(1500)
  })

  it('garbage in a legacy key (not JSON, JSON that is no session, another type) is a miss plus TS_DECODE_FAILED, and the key is left in place', async () => {
    const prefix = uniquePrefix('cr')
    const store = tieredStore({ prefix, migrate: { from: 'connect-redis' } })
    const errors: Array<{ code?: string }> = []
    store.on('error', (e) => errors.push(e))
    const garbage = ['not json at all', '[1,2,3]', '"a string"', '{"user":"no cookie"}', 'null']
    for (const [i, value] of garbage.entries()) {
      await redisCommand(redis.port, ['SET', `${prefix}g${i}`, value, 'EX', '600'])
      expect(await store.get(`g${i}`)).toBeUndefined()
      expect(await redisCommand(redis.port, ['GET', `${prefix}g${i}`])).toBe(value)
    }
    await redisCommand(redis.port, ['RPUSH', `${prefix}list`, 'x'])
    expect(await store.get('list')).toBeUndefined()
    expect(await redisCommand(redis.port, ['TYPE', `${prefix}list`])).toBe('list')
    expect(errors.map((e) => e.code)).toEqual(Array(garbage.length + 1).fill('TS_DECODE_FAILED'))
  })

  it('after the deploy, on a new prefix: a legacy session is found on a miss, moved to our key and its legacy key deleted in one step; a destroy removes a legacy session', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const prefix = uniquePrefix('ts')
    const alice = await loginOnConnectRedis(9, legacyPrefix)
    const bob = await loginOnConnectRedis(8, legacyPrefix)
    const store = tieredStore({ prefix, migrate: { from: 'connect-redis', prefix: legacyPrefix } })
    const app = tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } })
    const res = await request(app).get('/whoami').set('Cookie', alice.cookie).expect(200)
    expect(res.body).toEqual({ user: 'alice', cart: ['book'], id: alice.sid })
    await request(app)
      .post('/cart')
      .type('form')
      .send({ item: 'pen' })
      .set('Cookie', alice.cookie)
      .expect(302)
    expect(await redisCommand(redis.port, ['EXISTS', alice.key])).toBe(0)
    expect(await redisCommand(redis.port, ['TYPE', `${prefix}${alice.sid}`])).toBe('hash')
    expect(await store.get(alice.sid)).toMatchObject({ user: 'alice', cart: ['book', 'pen'] })
    // A second legacy session, never converted, is destroyed through the store: its legacy key goes.
    expect(await store.get(bob.sid)).toMatchObject({ user: 'alice' })
    await store.destroy(bob.sid)
    expect(await redisCommand(redis.port, ['EXISTS', bob.key])).toBe(0)
    expect(await store.get(bob.sid)).toBeUndefined()
    // A write that replaces a legacy session (express-session's set) leaves no legacy copy behind either.
    const carol = await loginOnConnectRedis(9, legacyPrefix)
    await store.set(carol.sid, {
      cookie: { originalMaxAge: 1000, expires: new Date(Date.now() + 1000) },
      v: 1,
    })
    expect(await redisCommand(redis.port, ['EXISTS', carol.key])).toBe(0)
  })

  for (const door of ['express-session + TieredStore', 'tieredSession()'] as const) {
    it(`a rolling deploy (dualWrite), ${door}: requests of one user alternate between an old app on connect-redis 9 and a new one on ours; every change and every logout is seen on both`, async () => {
      const legacyPrefix = uniquePrefix('cr')
      const prefix = uniquePrefix('ts')
      const oldApp = expressSessionApp((await connectRedis(9, legacyPrefix)) as never, {
        secret,
        cookie: { maxAge: HOUR_MS },
      })
      const errors: unknown[] = []
      const store = tieredStore({
        prefix,
        migrate: { from: 'connect-redis', prefix: legacyPrefix, dualWrite: true },
      })
      store.on('error', (e) => errors.push(e))
      const newApp =
        door === 'tieredSession()'
          ? tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } })
          : expressSessionApp(store, { secret, cookie: { maxAge: HOUR_MS } })
      const apps = [oldApp, newApp]
      const login = await request(oldApp).post('/login').type('form').send({ user: 'alice' }).expect(200)
      const cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string
      const items: string[] = []
      for (let i = 0; i < 6; i++) {
        const app = apps[(i + 1) % 2] as typeof oldApp
        await request(app)
          .post('/cart')
          .type('form')
          .send({ item: `i${i}` })
          .set('Cookie', cookie)
          .expect(302)
        items.push(`i${i}`)
        for (const reader of apps) {
          const who = await request(reader).get('/whoami').set('Cookie', cookie).expect(200)
          expect(who.body).toMatchObject({ user: 'alice', cart: items })
        }
      }
      // Old instances read connect-redis's key: it holds our writes in connect-redis's format.
      const sid = (await request(oldApp).get('/whoami').set('Cookie', cookie)).body.id as string
      expect(await redisCommand(redis.port, ['TYPE', `${legacyPrefix}${sid}`])).toBe('string')
      expect(Number(await redisCommand(redis.port, ['PTTL', `${legacyPrefix}${sid}`]))).toBeGreaterThan(0)
      // A logout on the new app logs out on the old one, and one on the old app on the new one.
      await request(newApp).post('/logout').set('Cookie', cookie).expect(200)
      expect((await request(oldApp).get('/whoami').set('Cookie', cookie)).body.user).toBeNull()
      expect((await request(newApp).get('/whoami').set('Cookie', cookie)).body.user).toBeNull()
      const again = await request(newApp).post('/login').type('form').send({ user: 'bob' }).expect(200)
      const cookie2 = String(again.headers['set-cookie']?.[0]).split(';')[0] as string
      expect((await request(oldApp).get('/whoami').set('Cookie', cookie2)).body.user).toBe('bob')
      await request(oldApp).post('/logout').set('Cookie', cookie2).expect(200)
      expect((await request(newApp).get('/whoami').set('Cookie', cookie2)).body.user).toBeNull()
      expect(errors).toEqual([])
    })
  }

  it('a rolling deploy (dualWrite): parallel requests through our app changing different keys keep both changes, on both apps', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const prefix = uniquePrefix('ts')
    const oldApp = expressSessionApp((await connectRedis(8, legacyPrefix)) as never, {
      secret,
      cookie: { maxAge: HOUR_MS },
    })
    const store = tieredStore({
      prefix,
      migrate: { from: 'connect-redis', prefix: legacyPrefix, dualWrite: true },
    })
    const newApp = tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } })
    const login = await request(oldApp).post('/login').type('form').send({ user: 'alice' }).expect(200)
    const cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string
    const keys = ['a', 'b', 'c', 'd']
    await Promise.all(
      keys.map((key) =>
        request(newApp)
          .post(`/set/${key}`)
          .type('form')
          .send({ value: key })
          .set('Cookie', cookie)
          .expect(200),
      ),
    )
    const sid = (await request(oldApp).get('/whoami').set('Cookie', cookie)).body.id as string
    const legacy = JSON.parse(String(await redisCommand(redis.port, ['GET', `${legacyPrefix}${sid}`])))
    expect(legacy).toMatchObject({ user: 'alice', a: 'a', b: 'b', c: 'c', d: 'd' })
    expect(await store.get(sid)).toMatchObject({ user: 'alice', a: 'a', b: 'b', c: 'c', d: 'd' })
  })

  it('a rolling deploy (dualWrite): a change an old instance makes while our request is under way is kept by our write', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const prefix = uniquePrefix('ts')
    const oldApp = expressSessionApp((await connectRedis(9, legacyPrefix)) as never, {
      secret,
      cookie: { maxAge: HOUR_MS },
    })
    const store = tieredStore({
      prefix,
      migrate: { from: 'connect-redis', prefix: legacyPrefix, dualWrite: true },
    })
    let cookie = ''
    const newApp = tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } }, (app) => {
      // The request has read the session; an old instance changes it before this request writes.
      app.post('/meanwhile/:key', async (req, res) => {
        await request(oldApp).post('/cart').type('form').send({ item: 'from-old' }).set('Cookie', cookie)
        sessionOf(req)[req.params.key as string] = 'from-new'
        res.json({ ok: true })
      })
    })
    const login = await request(oldApp).post('/login').type('form').send({ user: 'alice' }).expect(200)
    cookie = String(login.headers['set-cookie']?.[0]).split(';')[0] as string
    // Converted and in sync first (our key and connect-redis's hold the same session).
    await request(newApp).post('/cart').type('form').send({ item: 'first' }).set('Cookie', cookie).expect(302)
    await request(newApp).post('/meanwhile/note').set('Cookie', cookie).expect(200)
    for (const reader of [oldApp, newApp]) {
      const who = await request(reader).get('/whoami').set('Cookie', cookie).expect(200)
      expect(who.body).toMatchObject({ user: 'alice', cart: ['first', 'from-old'] })
    }
    const sid = (await request(oldApp).get('/whoami').set('Cookie', cookie)).body.id as string
    expect(await store.get(sid)).toMatchObject({ note: 'from-new', cart: ['first', 'from-old'] })
  })

  it('bad migrate options are TS_INVALID_OPTION naming the option', () => {
    const bad: Array<[TieredStoreOptions, string]> = [
      [{ migrate: { from: 'connect-redis' } }, 'migrate'],
      [{ redis: { url: redis.url }, migrate: { from: 'connect-mongo' as never } }, 'migrate.from'],
      [
        { redis: { url: redis.url }, prefix: 'sess:', migrate: { from: 'connect-redis', dualWrite: true } },
        'migrate.prefix',
      ],
      [
        {
          redis: { url: redis.url },
          prefix: 'sess:new:',
          migrate: { from: 'connect-redis', prefix: 'sess:' },
        },
        'migrate.prefix',
      ],
      [{ redis: { url: redis.url }, migrate: { from: 'connect-redis', prefix: '' } }, 'migrate.prefix'],
      [{ redis: { url: redis.url }, migrate: { from: 'connect-redis', extra: 1 } as never }, 'migrate.extra'],
    ]
    for (const [options, option] of bad) {
      let caught: { code?: string; message?: string } | undefined
      try {
        new TieredStore({ disk: false, ...options })
      } catch (error) {
        caught = error as typeof caught
      }
      expect(caught?.code, option).toBe('TS_INVALID_OPTION')
      expect(caught?.message).toContain(option)
    }
  })
})

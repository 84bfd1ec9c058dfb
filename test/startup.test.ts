// Start-up is not an outage (promise 11): while a store's first connection to Redis is being made, its commands
// wait for it (up to redis.connectTimeout) instead of failing or going to the outbox; store.ready() tells when.

import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import autocannon from 'autocannon'
import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tieredSession } from '../src/middleware/tiered-session.js'
import { TieredStore } from '../src/store.js'
import { freePort, useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores, uniquePrefix } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'
import { makeTempDir } from './helpers/temp-dir.js'
import { sessionOf } from './helpers/tiered-apps.js'

const HOUR = 3_600_000

describe('start-up (shared mode)', () => {
  const redis = useRedis()

  it('two stores used the moment they are made: the write reaches Redis, the other store reads it', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', {}, false)
    const b = await open('b', {}, false)
    expect(engineOf(a).connected).toBe(false)
    const errors: unknown[] = []
    a.on('error', (e) => errors.push(e))
    b.on('error', (e) => errors.push(e))
    await a.set('x', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(a.stats().outbox).toBe(0)
    expect(await b.get('x')).toMatchObject({ v: 1 })
    await a.destroy('x')
    expect(a.stats().outbox).toBe(0)
    const c = await open('c', {}, false)
    expect(await c.get('x')).toBeUndefined()
    expect(errors).toEqual([])
  })

  it('commands called one after another while connecting reach Redis in that order', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', {}, false)
    const writes = [
      a.set('o', sharedSession(clock.now(), HOUR, { v: 1 })),
      a.set('o', sharedSession(clock.now(), HOUR, { v: 2 })),
      a.destroy('gone'),
      a.set('gone', sharedSession(clock.now(), HOUR, { back: true })),
    ]
    await Promise.all(writes)
    const b = await open('b')
    expect(await b.get('o')).toMatchObject({ v: 2 })
    expect(await b.get('gone')).toMatchObject({ back: true })
    expect(a.stats().outbox).toBe(0)
  })

  it('ready() resolves once Redis is connected, and an app-made lazyConnect client is connected for us', async () => {
    const client = new Redis(redis.url, { lazyConnect: true })
    onTestFinished(async () => {
      await client.quit()
    })
    const { open } = sharedStores(() => ({ client: client as never }))
    const store = await open('a', {}, false)
    await store.ready()
    expect(engineOf(store).connected).toBe(true)
    await new Promise<void>((resolve, reject) => store.ready((err) => (err ? reject(err) : resolve())))
  })

  it('against a port where nothing listens, ready() rejects after connectTimeout with TS_REDIS_UNAVAILABLE; then commands fail fast', async () => {
    const port = await freePort()
    const dir = makeTempDir()
    const store = new TieredStore({
      prefix: uniquePrefix(),
      disk: { path: join(dir.path, 's.db') },
      redis: { url: `redis://127.0.0.1:${port}`, connectTimeout: 300, commandTimeout: 200 },
    })
    onTestFinished(async () => {
      await store.close()
      dir.remove()
    })
    store.on('error', () => undefined)
    const started = performance.now()
    // A read of an unknown session waits for the connection, then is an outage (not a miss).
    const read = store.get('nobody').then(
      () => 'served',
      (e: { code?: string }) => e.code,
    )
    await expect(store.ready()).rejects.toMatchObject({ code: 'TS_REDIS_UNAVAILABLE' })
    // NB: 5 ms of slack for timer rounding; the bound under test is "not before connectTimeout".
    expect(performance.now() - started).toBeGreaterThanOrEqual(295)
    expect(await read).toBe('TS_REDIS_UNAVAILABLE')
    // From now on Redis counts as down: a write goes to the outbox at once, as in any outage.
    await store.set('w', sharedSession(Date.now(), HOUR, { v: 1 }))
    expect(store.stats().outbox).toBe(1)
    await expect(store.ready()).rejects.toMatchObject({ code: 'TS_REDIS_UNAVAILABLE' })
  })

  it('ready() on a closed store rejects with TS_STORE_CLOSED', async () => {
    const { open } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    await store.close()
    await expect(store.ready()).rejects.toMatchObject({ code: 'TS_STORE_CLOSED' })
  })

  it('an app on tieredSession() restarted under HTTP load, sessions already in Redis, answers no 5xx', async () => {
    const prefix = uniquePrefix()
    const dir = makeTempDir()
    const stores: TieredStore[] = []
    onTestFinished(async () => {
      for (const store of stores) await store.close()
      dir.remove()
    })
    /** One app instance: a store of its own (a fresh disk: a new machine of the deploy) behind `redisUrl`. */
    const instance = (redisUrl: string) => {
      const store = new TieredStore({
        prefix,
        disk: { path: join(dir.path, `instance-${stores.length}.db`) },
        redis: { url: redisUrl },
      })
      stores.push(store)
      const app = express()
      app.use(tieredSession({ secret: 'restart', store, cookie: { maxAge: HOUR } }))
      app.post('/login/:user', (req, res) => {
        sessionOf(req).user = req.params.user
        res.json({ ok: true })
      })
      app.get('/me', (req, res) => res.json({ user: sessionOf(req).user ?? null }))
      return { store, app }
    }
    let current = instance(redis.url)
    let arrivedWhileConnecting = 0
    let onArrival: (() => void) | undefined
    const server = createServer((req, res) => {
      if (!engineOf(current.store).connected) {
        arrivedWhileConnecting++
        onArrival?.()
      }
      current.app(req, res)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as AddressInfo

    const USERS = 20
    const CONNECTIONS = 10
    const cookies: string[] = []
    for (let i = 0; i < USERS; i++) {
      const res = await request(server).post(`/login/user-${i}`).expect(200)
      cookies.push(([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string)
    }

    // The restarted instance reaches Redis through a proxy that holds its new connections until a request of
    // every load connection has arrived at it: they all come in while its first connection is being made.
    const proxy = await startProxy(redis.port)
    const wrong: string[] = []
    let next = 0
    const load = autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: CONNECTIONS,
      amount: 1500,
      requests: [
        {
          method: 'GET',
          setupRequest: (req: Record<string, unknown>) => {
            const n = next++ % USERS
            return { ...req, path: `/me?u=${n}`, headers: { cookie: cookies[n] } }
          },
          onResponse: (status: number, body: string) => {
            if (status !== 200 || !/"user":"user-\d+"/.test(body)) wrong.push(`${status} ${body}`)
          },
        },
      ],
    })
    let restarted = false
    const restart = (async () => {
      while (next < 300) await new Promise((resolve) => setImmediate(resolve))
      const stall = proxy.stallNewConnections()
      const old = current
      current = instance(proxy.url)
      restarted = true
      await new Promise<void>((resolve) => {
        onArrival = () => {
          if (arrivedWhileConnecting >= CONNECTIONS) resolve()
        }
      })
      onArrival = undefined
      stall.release()
      return old
    })()
    const result = await load
    // NB: the old instance is stopped once its last requests were answered (a deploy drains it first).
    await (await restart).store.close()
    expect(restarted).toBe(true)
    expect(arrivedWhileConnecting).toBeGreaterThanOrEqual(CONNECTIONS)
    expect(wrong.slice(0, 5)).toEqual([])
    expect(result.non2xx).toBe(0)
    expect(result.errors).toBe(0)
    expect(current.store.stats().outbox).toBe(0)
    expect(current.store.stats().errors).toEqual({})
  })
})

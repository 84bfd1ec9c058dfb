// One command timeout per request: the store calls of a request (its read, its write, a confirmation) share
// one redis.commandTimeout, so a slow Redis never holds a request longer than that; the app's own time between
// the calls does not count. A real redis-server behind a proxy that answers late (a slow Redis, not a dead one).

import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tieredSession } from '../src/middleware/tiered-session.js'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'
import { sessionOf } from './helpers/tiered-apps.js'

const HOUR = 3_600_000
// Wide margins (a reply 300 ms inside the timeout, two replies 400 ms past it): on a loaded 2-core CI machine a
// reply can reach the client tens of milliseconds after its timer, and 50 ms of slack was not enough.
const COMMAND_TIMEOUT = 1_000
/** How late the slow Redis answers each command (ms): one fits in a command timeout, two do not. */
const DELAY = 700

describe('one command timeout per request (shared mode)', () => {
  const redis = useRedis()

  /** An app on tieredSession() over `store`; GET /add/:item changes the session after `work` (the app's own). */
  const appOn = (store: Parameters<typeof tieredSession>[0]['store'], work: () => Promise<unknown>) => {
    const app = express()
    app.use(tieredSession({ secret: 'budget', store, cookie: { maxAge: HOUR } }))
    app.get('/add/:item', async (req, res) => {
      await work()
      const s = sessionOf(req)
      s.items = [...(s.items ?? []), req.params.item]
      res.json({ items: s.items })
    })
    return app
  }

  it('a read and a write that each take most of a command timeout: the request ends within one; the write waits in the outbox and reaches Redis', async () => {
    const proxy = await startProxy(redis.port)
    const { open } = sharedStores(() => ({ url: proxy.url, commandTimeout: COMMAND_TIMEOUT }))
    const writer = await open('writer')
    const slow = await open('slow')
    const errors: unknown[] = []
    slow.on('error', (e) => errors.push(e))
    // The session was made on another instance: `slow` must read it from Redis, then write it back.
    const first = await request(appOn(writer, async () => undefined)).get('/add/a')
    const cookie = String(first.headers['set-cookie']?.[0]).split(';')[0] as string
    proxy.delayReplies(DELAY)
    const started = performance.now()
    const res = await request(appOn(slow, async () => undefined))
      .get('/add/b')
      .set('Cookie', cookie)
    const elapsed = performance.now() - started
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ items: ['a', 'b'] })
    // Without a shared budget the read (DELAY) and the merge (DELAY) would both be waited for in full.
    expect(elapsed).toBeLessThan(2 * DELAY)
    // Redis stays up: the write is replayed without a reconnection, and every instance then reads it.
    proxy.delayReplies(0)
    await engineOf(slow).replayed()
    expect(slow.stats().outbox).toBe(0)
    const again = await request(appOn(writer, async () => undefined))
      .get('/add/c')
      .set('Cookie', cookie)
    expect(again.body).toEqual({ items: ['a', 'b', 'c'] })
    expect(errors).toEqual([])
  })

  it("the app's own time between the read and the write does not count against the request's command timeout", async () => {
    const proxy = await startProxy(redis.port)
    const { open } = sharedStores(() => ({ url: proxy.url, commandTimeout: COMMAND_TIMEOUT }))
    const store = await open('a')
    // The app's own slow work: two round trips to the slow Redis, longer than a command timeout in all.
    const appClient = new Redis(proxy.url)
    onTestFinished(() => appClient.disconnect())
    await appClient.ping()
    let slowWork = false
    const agent = request.agent(
      appOn(store, async () => {
        if (!slowWork) return
        await appClient.ping()
        await appClient.ping()
      }),
    )
    expect((await agent.get('/add/a')).status).toBe(200)
    proxy.delayReplies(DELAY)
    slowWork = true
    // The session is trusted in memory: the read costs no Redis time; the merge gets a whole command timeout.
    const started = performance.now()
    const res = await agent.get('/add/b')
    expect(performance.now() - started).toBeGreaterThanOrEqual(3 * DELAY - 5)
    expect(res.body).toEqual({ items: ['a', 'b'] })
    // Written live, not through the outbox (a budget spent by the app's work would have sent it there).
    expect(store.stats().outbox).toBe(0)
    expect(store.stats().errors).toEqual({})
  })
})

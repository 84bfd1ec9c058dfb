import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import autocannon from 'autocannon'
import express from 'express'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { tieredSession } from '../src/middleware/tiered-session.js'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, ready, sharedStores } from './helpers/shared-stores.js'
import { sessionOf, sidFromSetCookie } from './helpers/tiered-apps.js'

const COMMAND_TIMEOUT = 300
/** Two cores shared by autocannon, the app and Redis: the bound is "no offline-queue wait", not a race. */
const MARGIN = 700
const SESSIONS = 40
const REQUESTS = 3000

describe('a Redis outage under HTTP load (shared mode, tieredSession)', () => {
  // An fsync'd append-only file, so the restarted Redis still has what it acknowledged before the kill.
  const redis = useRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })

  it('no request waits past commandTimeout, none fails, and every acknowledged write survives the replay', async () => {
    const { open } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const store = await open('app', { clock: { now: () => Date.now() } })
    const other = await open('other', { clock: { now: () => Date.now() } })

    let served = 0
    let maxOutbox = 0
    let disconnects = 0
    store.on('disconnect', () => disconnects++)
    let killed: Promise<void> | undefined
    let restarted: Promise<void> | undefined
    const app = express()
    app.use(tieredSession({ secret: 'load', store, cookie: { maxAge: 3_600_000 } }))
    app.post('/login', (req, res) => {
      sessionOf(req).user = 'u'
      res.json({ ok: true })
    })
    app.post('/write/:n', (req, res) => {
      served++
      // Redis dies a sixth of the way in and comes back at two thirds: several seconds of the run.
      if (served === REQUESTS / 6) killed = redis.server.kill9()
      if (served === (REQUESTS * 2) / 3)
        restarted = (async () => {
          await killed
          await redis.server.restart()
        })()
      if (killed !== undefined && restarted === undefined)
        maxOutbox = Math.max(maxOutbox, store.stats().outbox)
      sessionOf(req)[`k${req.params.n}`] = Number(req.params.n)
      res.json({ sid: sessionOf(req).id, n: Number(req.params.n) })
    })
    const server = app.listen(0, '127.0.0.1')
    await once(server, 'listening')
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as AddressInfo

    const cookies: string[] = []
    for (let i = 0; i < SESSIONS; i++) {
      const res = await request(server).post('/login').expect(200)
      expect(sidFromSetCookie(res.headers['set-cookie'])).toBeDefined()
      cookies.push(([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string)
    }

    const acknowledged: Array<{ sid: string; n: number }> = []
    let next = 0
    const result = await autocannon({
      url: `http://127.0.0.1:${port}`,
      connections: 10,
      amount: REQUESTS,
      requests: [
        {
          method: 'POST',
          setupRequest: (req: Record<string, unknown>) => {
            const n = next++
            return { ...req, path: `/write/${n}`, headers: { cookie: cookies[n % SESSIONS] } }
          },
          onResponse: (status: number, body: string) => {
            if (status === 200) acknowledged.push(JSON.parse(body))
          },
        },
      ],
    })
    await restarted
    expect(result.non2xx).toBe(0)
    expect(result.errors).toBe(0)
    expect(acknowledged).toHaveLength(REQUESTS)
    expect(result.latency.max).toBeLessThan(COMMAND_TIMEOUT + MARGIN)
    // The outage really happened under load: Redis was seen down and writes went to the outbox.
    expect(disconnects).toBeGreaterThanOrEqual(1)
    expect(maxOutbox).toBeGreaterThan(100)

    await ready(store)
    await engineOf(store).replayed()
    expect(store.stats().outbox).toBe(0)
    await ready(other)
    const lost: number[] = []
    for (const { sid, n } of acknowledged) {
      const got = (await other.get(sid)) as Record<string, unknown> | undefined
      if (got?.[`k${n}`] !== n) lost.push(n)
    }
    expect(lost).toEqual([])
  })
})

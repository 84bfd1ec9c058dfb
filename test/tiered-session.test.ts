import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { systemClock } from '../src/clock.js'
import { tieredSession } from '../src/middleware/tiered-session.js'
import { createStore } from './helpers/stores.js'
import {
  expressVersions,
  requestFields,
  sessionOf,
  sidFromSetCookie,
  tieredApp,
} from './helpers/tiered-apps.js'

const secret = 'middleware test secret'

describe.each(expressVersions)('tieredSession() on %s', (_, express) => {
  it('creates a session only when the request puts something in it, then reads and modifies it', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store }))
    const empty = await agent.get('/whoami').expect(200)
    expect(empty.headers['set-cookie']).toBeUndefined()
    expect(await store.length()).toBe(0)
    const first = await agent.get('/views').expect(200, { views: 1 })
    const sid = sidFromSetCookie(first.headers['set-cookie'])
    expect(sid).toHaveLength(32)
    await agent.get('/views').expect(200, { views: 2 })
    const third = await agent.get('/views').expect(200, { views: 3 })
    // A browser-session cookie (no maxAge) is not re-sent once set, as in express-session.
    expect(third.headers['set-cookie']).toBeUndefined()
    expect(await store.get(sid as string)).toMatchObject({ views: 3 })
  })

  it('sets the cookie with express-session defaults: connect.sid, Path=/, HttpOnly, SameSite=Lax, signed', async () => {
    const { store } = createStore({ clock: systemClock })
    const res = await request(tieredApp(express, { secret, store, cookie: { maxAge: 60_000 } })).get('/views')
    const header = ([] as string[]).concat(res.headers['set-cookie'] ?? [])[0] ?? ''
    expect(header).toMatch(/^connect\.sid=s%3A[\w-]{32}\.[A-Za-z0-9%+/]+; /)
    expect(header).toContain('Path=/')
    expect(header).toContain('HttpOnly')
    expect(header).toContain('SameSite=Lax')
    expect(header).toMatch(/Expires=\w{3}, \d{2} \w{3} \d{4}/)
    expect(header).not.toContain('Secure')
  })

  it('saves before the response goes out: a redirect then an immediate GET sees the write', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store }))
    for (const item of ['apple', 'pear', 'plum']) {
      await agent.post('/cart').type('form').send({ item }).expect(302)
      expect((await agent.get('/cart').expect(200)).body.cart.at(-1)).toBe(item)
    }
  })

  it('has the session durable in the store by the time the response head reaches the client', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
    const { port } = server.address() as AddressInfo
    const seen = await new Promise<unknown>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/views' }, (res) => {
        // Only the head has arrived: ask the store right now.
        const sid = sidFromSetCookie(res.headers['set-cookie'])
        resolve(store.get(sid as string))
        res.resume()
      })
      req.on('error', reject)
      req.end()
    })
    expect(seen).toMatchObject({ views: 1 })
  })

  it('keeps every change of 20 parallel requests that each set a different key', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store })
    const agent = request.agent(app)
    const first = await agent.get('/views').expect(200)
    const sid = sidFromSetCookie(first.headers['set-cookie']) as string
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        agent
          .post(`/set/k${i}`)
          .type('form')
          .send({ value: `v${i}` })
          .expect(200),
      ),
    )
    const stored = (await store.get(sid)) as unknown as Record<string, unknown>
    for (let i = 0; i < 20; i++) expect(stored[`k${i}`]).toBe(`v${i}`)
    expect(stored.views).toBe(1)
  })

  it('regenerate({ keep }) changes the id, destroys the old session and keeps the named keys', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store }))
    const before = sidFromSetCookie(
      (await agent.post('/cart').type('form').send({ item: 'book' })).headers['set-cookie'],
    )
    await agent.get('/views')
    const login = await agent.post('/login').type('form').send({ user: 'alice' }).expect(200)
    const after = sidFromSetCookie(login.headers['set-cookie'])
    expect(after).toBe(login.body.id)
    expect(after).not.toBe(before)
    expect(await store.get(before as string)).toBeUndefined()
    const stored = await store.get(after as string)
    expect(stored).toMatchObject({ cart: ['book'], user: 'alice' })
    expect(stored).not.toHaveProperty('views')
    await agent.get('/whoami').expect(200, { user: 'alice', cart: ['book'], id: after })
  })

  it('destroy() removes the session from the store and from the request', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store }))
    const sid = sidFromSetCookie(
      (await agent.post('/login').type('form').send({ user: 'bob' })).headers['set-cookie'],
    )
    const out = await agent.post('/logout').expect(200)
    expect(out.headers['set-cookie']).toBeUndefined()
    expect(await store.get(sid as string)).toBeUndefined()
    const after = await agent.get('/whoami').expect(200)
    expect(after.body).toMatchObject({ user: null, cart: [] })
    expect(after.body.id).not.toBe(sid)
  })

  it('save(), reload(), touch() and resetMaxAge() work with callbacks and with Promises', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store, cookie: { maxAge: 60_000 } }, (a) => {
      a.get('/api', async (req, res, next) => {
        try {
          const s = sessionOf(req)
          s.a = 1
          await s.save()
          const afterPromise = await store.get(s.id)
          await new Promise<void>((resolve, reject) =>
            s.save((err?: unknown) => (err ? reject(err) : resolve())),
          )
          await store.merge(s.id, { set: { b: '2' }, unset: [] })
          await s.reload()
          const reloaded = sessionOf(req)
          await reloaded.touch()
          await new Promise<void>((resolve) => reloaded.resetMaxAge(() => resolve()))
          res.json({
            saved: afterPromise,
            b: reloaded.b,
            sameId: reloaded.id === requestFields(req).sessionID,
            store: requestFields(req).sessionStore === store,
          })
        } catch (err) {
          next(err)
        }
      })
    })
    const res = await request(app).get('/api').expect(200)
    expect(res.body).toMatchObject({ saved: { a: 1 }, b: 2, sameId: true, store: true })
  })

  it('reload() of a session destroyed meanwhile fails with TS_SESSION_NOT_FOUND', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store }, (a) => {
      a.get('/reload', async (req, res) => {
        await store.destroy(sessionOf(req).id)
        const code = await sessionOf(req)
          .reload()
          .then(
            () => null,
            (error: { code?: string }) => error.code,
          )
        res.json({ code })
      })
    })
    const agent = request.agent(app)
    await agent.get('/views').expect(200)
    expect((await agent.get('/reload').expect(200)).body).toEqual({ code: 'TS_SESSION_NOT_FOUND' })
  })

  it('rolling sends the cookie on every response', async () => {
    const { store } = createStore({ clock: systemClock })
    const agent = request.agent(tieredApp(express, { secret, store, rolling: true }))
    const sid = sidFromSetCookie((await agent.get('/views')).headers['set-cookie'])
    const second = await agent.get('/whoami').expect(200)
    expect(sidFromSetCookie(second.headers['set-cookie'])).toBe(sid)
    const plain = request.agent(tieredApp(express, { secret, store }))
    await plain.get('/views')
    expect((await plain.get('/whoami')).headers['set-cookie']).toBeUndefined()
  })

  it('saveUninitialized stores a new empty session', async () => {
    const { store } = createStore({ clock: systemClock })
    const res = await request(tieredApp(express, { secret, store, saveUninitialized: true })).get('/whoami')
    const sid = sidFromSetCookie(res.headers['set-cookie'])
    expect(sid).toBeDefined()
    expect(await store.get(sid as string)).toMatchObject({ cookie: { path: '/' } })
  })

  it("unset: 'destroy' destroys the session when the request sets req.session = null", async () => {
    const { store } = createStore({ clock: systemClock })
    const build = (unset: 'keep' | 'destroy') =>
      tieredApp(express, { secret, store, unset }, (a) => {
        a.post('/forget', (req, res) => {
          ;(req as { session?: unknown }).session = null
          res.json({ ok: true })
        })
      })
    for (const unset of ['keep', 'destroy'] as const) {
      const agent = request.agent(build(unset))
      const sid = sidFromSetCookie((await agent.get('/views')).headers['set-cookie']) as string
      await agent.post('/forget').expect(200)
      expect((await store.get(sid)) === undefined).toBe(unset === 'destroy')
    }
  })

  it('maps store errors to next(err) with a status: 413 for a session over maxSessionBytes, 500 otherwise', async () => {
    const { store } = createStore({ clock: systemClock, maxSessionBytes: 200 })
    const agent = request.agent(tieredApp(express, { secret, store }))
    await agent.get('/views').expect(200)
    const big = await agent
      .post('/set/blob')
      .type('form')
      .send({ value: 'x'.repeat(500) })
    expect(big.status).toBe(413)
    expect(big.body).toEqual({ code: 'TS_SESSION_TOO_LARGE', status: 413 })
    await store.close()
    const closed = await agent.get('/views')
    expect(closed.status).toBe(500)
    expect(closed.body.code).toBe('TS_STORE_CLOSED')
  })

  it('does not bring back a session destroyed elsewhere while a request that changes it was running', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store }, (a) => {
      a.post('/race', async (req, res) => {
        // "Log out everywhere" lands from another device while this request is running.
        await store.destroy(sessionOf(req).id)
        sessionOf(req).cart = ['late item']
        res.json({ ok: true })
      })
    })
    const agent = request.agent(app)
    const sid = sidFromSetCookie(
      (await agent.post('/login').type('form').send({ user: 'zed' })).headers['set-cookie'],
    )
    const raced = await agent.post('/race').expect(200)
    expect(raced.headers['set-cookie']).toBeUndefined()
    expect(await store.get(sid as string)).toBeUndefined()
    expect(await store.length()).toBe(0)
  })

  it('exposes req.sessionID and req.sessionStore', async () => {
    const middleware = tieredSession({ secret, store: { disk: { path: `${createStore().dbPath}.mw` } } })
    onTestFinished(() => middleware.store.close())
    const app = express()
    app.use(middleware)
    app.get('/', (req, res) => {
      res.json({
        id: requestFields(req).sessionID,
        same: requestFields(req).sessionStore === middleware.store,
      })
    })
    const res = await request(app).get('/').expect(200)
    expect(res.body.id).toHaveLength(32)
    expect(res.body.same).toBe(true)
  })
})

import express from 'express'
import passport from 'passport'
import { Strategy as LocalStrategy } from 'passport-local'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { tieredSession } from '../src/middleware/tiered-session.js'
import type { TieredStore } from '../src/store.js'
import { handleFor } from './helpers/handles.js'
import { createStore } from './helpers/stores.js'
import { sidFromSetCookie } from './helpers/tiered-apps.js'

const users = new Map([
  ['alice', { id: 'alice', password: 'wonderland' }],
  ['bob', { id: 'bob', password: 'builder' }],
])

/** A real Passport (local strategy) login/logout app on tieredSession(). */
function passportApp(store: TieredStore) {
  const auth = new passport.Passport()
  auth.use(
    new LocalStrategy((username, password, done) => {
      const user = users.get(username)
      done(null, user !== undefined && user.password === password ? user : false)
    }),
  )
  auth.serializeUser((user, done) => done(null, (user as { id: string }).id))
  auth.deserializeUser((id: string, done) => done(null, users.get(id) ?? false))

  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(tieredSession({ secret: 'passport secret', store, cookie: { maxAge: 3_600_000 } }))
  app.use(auth.session())
  app.post('/login', auth.authenticate('local', { failWithError: true }), (req, res) => {
    res.json({
      user: (req.user as { id: string }).id,
      sid: (req as unknown as { sessionID: string }).sessionID,
    })
  })
  app.get('/me', (req, res) => res.json({ user: (req.user as { id: string } | undefined)?.id ?? null }))
  app.post('/logout', (req, res, next) => req.logout((err) => (err ? next(err) : res.json({ ok: true }))))
  app.use((err: Error & { status?: number }, _req: unknown, res: express.Response, _next: unknown) => {
    res.status(err.status ?? 500).json({ error: err.message })
  })
  return app
}

describe('Passport (passport-local) on tieredSession()', () => {
  it('logs in with a regenerated session, is found by listByUser, and logs out', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = passportApp(store)
    const agent = request.agent(app)
    await agent.get('/me').expect(200, { user: null })
    await agent.post('/login').type('form').send({ username: 'alice', password: 'nope' }).expect(401)

    const login = await agent
      .post('/login')
      .type('form')
      .send({ username: 'alice', password: 'wonderland' })
      .expect(200)
    const sid = sidFromSetCookie(login.headers['set-cookie'])
    expect(sid).toBe(login.body.sid)
    await agent.get('/me').expect(200, { user: 'alice' })
    expect(await store.get(sid as string)).toMatchObject({ passport: { user: 'alice' } })
    expect((await store.listByUser('alice')).map((s) => s.handle)).toEqual([handleFor(sid as string)])

    await agent.post('/logout').expect(200)
    await agent.get('/me').expect(200, { user: null })
    expect(await store.listByUser('alice')).toEqual([])
  })

  it('destroyByUser logs a user out on every device except the one kept', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = passportApp(store)
    const laptop = request.agent(app)
    const phone = request.agent(app)
    const other = request.agent(app)
    const keep = (await laptop.post('/login').type('form').send({ username: 'bob', password: 'builder' }))
      .body.sid
    await phone.post('/login').type('form').send({ username: 'bob', password: 'builder' }).expect(200)
    await other.post('/login').type('form').send({ username: 'alice', password: 'wonderland' }).expect(200)
    expect(await store.listByUser('bob')).toHaveLength(2)

    expect(await store.destroyByUser('bob', { except: keep })).toBe(1)
    await phone.get('/me').expect(200, { user: null })
    await laptop.get('/me').expect(200, { user: 'bob' })
    await other.get('/me').expect(200, { user: 'alice' })
  })
})

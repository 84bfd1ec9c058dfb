import { createHmac } from 'node:crypto'
import express from 'express'
import session from 'express-session'
import fc from 'fast-check'
import request from 'supertest'
import { describe, expect, it } from 'vitest'
import { systemClock } from '../src/clock.js'
import { tieredSession } from '../src/middleware/tiered-session.js'
import { expressSessionApp } from './helpers/apps.js'
import { createStore } from './helpers/stores.js'
import { expressVersions, sessionOf, sidFromSetCookie, tieredApp } from './helpers/tiered-apps.js'

const secret = 'cookie test secret'

/** express-session's signed cookie value, computed independently. */
function signed(sid: string, key: string): string {
  const mac = createHmac('sha256', key).update(sid).digest('base64').replace(/=+$/, '')
  return encodeURIComponent(`s:${sid}.${mac}`)
}

describe('the session cookie', () => {
  it('accepts a cookie issued by express-session with the same secret and store (switching keeps users logged in)', async () => {
    const { store } = createStore({ clock: systemClock })
    const before = request.agent(expressSessionApp(store, { secret }))
    const login = await before.post('/login').type('form').send({ user: 'alice' }).expect(200)
    const cookie = ([] as string[]).concat(login.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string
    await before.post('/cart').type('form').send({ item: 'tea' }).expect(302)

    const after = tieredApp(express, { secret, store })
    const res = await request(after).get('/whoami').set('Cookie', cookie).expect(200)
    expect(res.body).toMatchObject({ user: 'alice', cart: ['tea'] })
    // And back: a session changed by tieredSession() still loads in express-session.
    await request(after).post('/cart').set('Cookie', cookie).type('form').send({ item: 'cake' }).expect(302)
    const back = await request(expressSessionApp(store, { secret }))
      .get('/whoami')
      .set('Cookie', cookie)
      .expect(200)
    expect(back.body).toMatchObject({ user: 'alice', cart: ['tea', 'cake'] })
  })

  it('signs exactly as express-session does', async () => {
    const { store } = createStore({ clock: systemClock })
    const res = await request(tieredApp(express, { secret, store })).get('/views')
    const sid = sidFromSetCookie(res.headers['set-cookie']) as string
    expect(([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]).toContain(
      `connect.sid=${signed(sid, secret)};`,
    )
  })

  it('verifies with every secret and re-issues a cookie signed by an old one with the first', async () => {
    const { store } = createStore({ clock: systemClock })
    const old = request.agent(tieredApp(express, { secret: 'old secret', store }))
    const sid = sidFromSetCookie((await old.get('/views')).headers['set-cookie']) as string
    const rotated = tieredApp(express, { secret: ['new secret', 'old secret'], store })
    const res = await request(rotated)
      .get('/whoami')
      .set('Cookie', `connect.sid=${signed(sid, 'old secret')}`)
      .expect(200)
    expect(res.body.id).toBe(sid)
    expect(([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]).toContain(
      `connect.sid=${signed(sid, 'new secret')};`,
    )
    // Once re-issued with the first secret, it is not re-sent.
    const again = await request(rotated)
      .get('/whoami')
      .set('Cookie', `connect.sid=${signed(sid, 'new secret')}`)
    expect(again.body.id).toBe(sid)
    expect(again.headers['set-cookie']).toBeUndefined()
  })

  it.each([
    ['forged signature', (sid: string) => `connect.sid=${signed(sid, 'wrong secret')}`],
    ['unsigned value', (sid: string) => `connect.sid=${sid}`],
    ['signature cut short', (sid: string) => `connect.sid=${signed(sid, secret).slice(0, -3)}`],
    [
      'duplicated cookie',
      (sid: string) => `connect.sid=${signed(sid, secret)}; connect.sid=${signed(sid, secret)}`,
    ],
    ['oversized cookie', (sid: string) => `connect.sid=${signed(sid, secret)}${'A'.repeat(5000)}`],
    ['bad percent-encoding', () => 'connect.sid=s%3A%E0%A4%A'],
  ])('treats a %s as no session', async (_, cookieFor) => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store })
    const sid = sidFromSetCookie(
      (await request(app).post('/login').type('form').send({ user: 'eve' })).headers['set-cookie'],
    )
    const res = await request(app)
      .get('/whoami')
      .set('Cookie', cookieFor(sid as string))
      .expect(200)
    expect(res.body.user).toBeNull()
    expect(res.body.id).not.toBe(sid)
  })

  it('survives a few hundred generated malformed cookies: no 5xx, never a session it did not sign', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = tieredApp(express, { secret, store })
    const sid = sidFromSetCookie(
      (await request(app).post('/login').type('form').send({ user: 'x' })).headers['set-cookie'],
    )
    const header = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.string({ unit: 'binary', maxLength: 200 }),
      fc.string({ maxLength: 60 }).map((s) => `connect.sid=${s}`),
      fc.string({ maxLength: 60 }).map((s) => `connect.sid=s%3A${encodeURIComponent(sid as string)}.${s}`),
      fc.string({ maxLength: 60 }).map((s) => `connect.sid=s:${s}.${s}; other=1`),
      fc.uint8Array({ maxLength: 120 }).map((b) => `connect.sid=${Buffer.from(b).toString('latin1')}`),
    )
    await fc.assert(
      fc.asyncProperty(header, async (cookie) => {
        // Node refuses some header bytes outright; those never reach the app, so skip them here.
        if (/[^\t\x20-\x7e\x80-\xff]/.test(cookie)) return
        const res = await request(app).get('/whoami').set('Cookie', cookie)
        expect(res.status).toBe(200)
        expect(res.body.user).toBeNull()
      }),
      { numRuns: 300, seed: 20261127 },
    )
  })

  it('applies the cookie options: name, domain, path, secure, sameSite, partitioned, priority, maxAge', async () => {
    const { store } = createStore({ clock: systemClock })
    const app = express()
    app.set('trust proxy', true)
    app.use(
      tieredSession({
        secret,
        store,
        name: 'shop.sid',
        cookie: {
          maxAge: 3_600_000,
          domain: 'example.test',
          path: '/',
          secure: 'auto',
          sameSite: 'strict',
          partitioned: true,
          priority: 'high',
          httpOnly: false,
        },
      }),
    )
    app.get('/', (req, res) => {
      sessionOf(req).n = 1
      res.json({ ok: true })
    })
    const https = await request(app).get('/').set('X-Forwarded-Proto', 'https').expect(200)
    const header = ([] as string[]).concat(https.headers['set-cookie'] ?? [])[0] ?? ''
    expect(header).toMatch(/^shop\.sid=s%3A/)
    for (const part of [
      'Domain=example.test',
      'Path=/',
      'Secure',
      'SameSite=Strict',
      'Partitioned',
      'Priority=High',
    ]) {
      expect(header).toContain(part)
    }
    expect(header).not.toContain('HttpOnly')
    const expires = Date.parse(/Expires=([^;]+)/.exec(header)?.[1] ?? '')
    expect(Math.abs(expires - (Date.now() + 3_600_000))).toBeLessThan(5_000)
    // Over plain HTTP a secure ('auto' resolves to false) cookie is sent without Secure.
    const plain = await request(app).get('/').expect(200)
    expect(([] as string[]).concat(plain.headers['set-cookie'] ?? [])[0]).not.toContain('Secure')
  })

  it('does not send a secure: true cookie over plain HTTP; proxy: true trusts X-Forwarded-Proto', async () => {
    const { store } = createStore({ clock: systemClock })
    const build = (proxy: boolean | undefined) => {
      const app = express()
      app.use(tieredSession({ secret, store, proxy, cookie: { secure: true } }))
      app.get('/', (req, res) => {
        sessionOf(req).n = 1
        res.json({ ok: true })
      })
      return app
    }
    expect((await request(build(undefined)).get('/')).headers['set-cookie']).toBeUndefined()
    expect(
      (await request(build(false)).get('/').set('X-Forwarded-Proto', 'https')).headers['set-cookie'],
    ).toBeUndefined()
    const proxied = await request(build(true)).get('/').set('X-Forwarded-Proto', 'https')
    expect(([] as string[]).concat(proxied.headers['set-cookie'] ?? [])[0]).toContain('Secure')
  })

  it('uses genid for new ids', async () => {
    const { store } = createStore({ clock: systemClock })
    let n = 0
    const app = tieredApp(express, { secret, store, genid: () => `custom-id-${++n}` })
    const res = await request(app).get('/views')
    expect(sidFromSetCookie(res.headers['set-cookie'])).toBe('custom-id-1')
  })

  it('rejects bad options at registration, naming them', () => {
    expect.assertions(12)
    const cases: Array<[unknown, string]> = [
      [{}, 'secret'],
      [{ secret: '' }, 'secret'],
      [{ secret: [] }, 'secret'],
      [{ secret, name: 'bad name' }, 'name'],
      [{ secret, cookie: { maxAge: -1 } }, 'cookie.maxAge'],
      [{ secret, cookie: { secure: 'yes' } }, 'cookie.secure'],
      [{ secret, cookie: { sameSite: 'sometimes' } }, 'cookie.sameSite'],
      [{ secret, cookie: { colour: 'red' } }, 'cookie.colour'],
      [{ secret, touchAfter: 2 }, 'touchAfter'],
      [{ secret, unset: 'drop' }, 'unset'],
      [{ secret, rolling: 'yes' }, 'rolling'],
      [{ secret, genid: 'uuid' }, 'genid'],
    ]
    for (const [options, name] of cases) {
      try {
        tieredSession(options as never)
      } catch (error) {
        expect((error as Error).message).toContain(`"${name}"`)
      }
    }
  })
})

describe.each(expressVersions)('express-session cookies on %s', (_, expressImpl) => {
  it('are read by tieredSession() on this Express', async () => {
    const { store } = createStore({ clock: systemClock })
    const es = express()
    es.use(session({ store, secret, resave: false, saveUninitialized: false }))
    es.get('/', (req, res) => {
      req.session.views = 41
      res.json({ ok: true })
    })
    const cookie = ([] as string[])
      .concat((await request(es).get('/')).headers['set-cookie'] ?? [])[0]
      ?.split(';')[0]
    const res = await request(tieredApp(expressImpl, { secret, store }))
      .get('/views')
      .set('Cookie', cookie as string)
    expect(res.body).toEqual({ views: 42 })
  })
})

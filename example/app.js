// The shop as an Express 5 app: tieredSession() for the session, log in / out, a cart in the session,
// "my sessions" with "log out everywhere else", and the admin routes (mounted before the session so that
// polling them neither loads sessions nor skews the hit counters they show).

import { randomBytes } from 'node:crypto'
import express from 'express'
import { tieredSession } from 'tiered-session'
import { createAdmin } from './admin.js'
import { MAX_QUANTITY, parseQuantity, productOf } from './catalog.js'
import { renderHtml } from './html.js'
import { createUsers, DEMO_USERS } from './users.js'
import { errorPage, loginPage, sessionsPage, shopPage } from './views.js'

/** "Last seen" is rewritten at most this often, so browsing does not turn every request into a write. */
const LAST_SEEN_EVERY_MS = 60_000
const MAX_USER_AGENT = 256
const COOKIE_MAX_AGE_MS = 7 * 24 * 60 * 60_000

/** Sets a CSP nonce for our inline style and script, and the usual hardening headers. */
function securityHeaders(_req, res, next) {
  const nonce = randomBytes(16).toString('base64')
  res.locals.nonce = nonce
  res.set({
    'Content-Security-Policy': [
      "default-src 'none'",
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
      "connect-src 'self'",
      "img-src 'self'",
      "form-action 'self'",
      "frame-ancestors 'none'",
      "base-uri 'none'",
    ].join('; '),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
  })
  next()
}

/**
 * Cross-site request forgery: the session cookie is SameSite=Lax, so browsers do not send it with a
 * cross-site POST; on top of that a POST whose Origin is another site is refused.
 */
function sameOriginPosts(req, res, next) {
  const origin = req.get('origin')
  if (req.method === 'POST' && origin !== undefined && hostOf(origin) !== req.get('host')) {
    res.status(403).type('text').send('cross-site request refused')
    return
  }
  next()
}

/** The host:port of an Origin header (only the host is compared: behind a TLS proxy the scheme differs). */
function hostOf(origin) {
  return URL.canParse(origin) ? new URL(origin).host : undefined
}

/** A local path to go to after logging in; anything else (another site, "//host") is "/". */
function safeNext(value) {
  return typeof value === 'string' && /^\/(?![/\\])/.test(value) ? value : '/'
}

function currentUser(req) {
  return req.session.userId === undefined ? undefined : { id: req.session.userId, name: req.session.userName }
}

function send(res, markup) {
  res.type('html').send(renderHtml(markup))
}

/**
 * Builds the app around a TieredStore (`memory`: the store's memory options, shown on /admin/tiers);
 * returns `{ app, close }` (close stops the admin's timers and load).
 */
export function createApp({ store, secret, mode, memory }) {
  const users = createUsers()
  const admin = createAdmin({
    store,
    mode,
    highWatermark: memory.highWatermark,
    lowWatermark: memory.lowWatermark,
  })
  const app = express()
  app.disable('x-powered-by')
  app.use(securityHeaders)
  app.use(express.urlencoded({ extended: false, limit: '16kb' }))
  app.use(sameOriginPosts)
  app.use(admin.router)

  app.use(
    tieredSession({
      secret,
      store,
      cookie: { maxAge: COOKIE_MAX_AGE_MS, sameSite: 'lax', httpOnly: true, secure: 'auto' },
    }),
  )

  // Keeps "last seen" roughly current without a write per request.
  app.use((req, _res, next) => {
    const session = req.session
    const last = typeof session.lastSeenAt === 'number' ? session.lastSeenAt : 0
    if (session.userId !== undefined && Date.now() - last >= LAST_SEEN_EVERY_MS)
      session.lastSeenAt = Date.now()
    next()
  })

  app.get('/', (req, res) => {
    send(res, shopPage({ nonce: res.locals.nonce, user: currentUser(req), cart: req.session.cart }))
  })

  app.post('/cart/add', (req, res) => {
    const product = productOf(req.body?.sku)
    if (product) {
      req.session.cart ??= {}
      // NB: an in-place change; tieredSession() sees it by comparing the cart's JSON at the end of the request.
      req.session.cart[product.sku] = Math.min(MAX_QUANTITY, (req.session.cart[product.sku] ?? 0) + 1)
    }
    res.redirect(303, '/')
  })

  app.post('/cart/update', (req, res) => {
    const product = productOf(req.body?.sku)
    const quantity = parseQuantity(req.body?.quantity)
    if (product && quantity !== undefined && req.session.cart) {
      if (quantity === 0) delete req.session.cart[product.sku]
      else req.session.cart[product.sku] = quantity
    }
    res.redirect(303, '/')
  })

  app.post('/cart/remove', (req, res) => {
    const product = productOf(req.body?.sku)
    if (product && req.session.cart) delete req.session.cart[product.sku]
    res.redirect(303, '/')
  })

  app.get('/login', (req, res) => {
    if (currentUser(req)) return res.redirect(303, safeNext(req.query.next))
    send(
      res,
      loginPage({
        nonce: res.locals.nonce,
        next: safeNext(req.query.next),
        login: '',
        demoUsers: DEMO_USERS,
      }),
    )
  })

  app.post('/login', async (req, res) => {
    const login = typeof req.body?.login === 'string' ? req.body.login.trim() : ''
    const next = safeNext(req.body?.next)
    const user = await users.verify(login, req.body?.password)
    if (!user) {
      res.status(401)
      send(
        res,
        loginPage({
          nonce: res.locals.nonce,
          error: 'Wrong user name or password.',
          login: login.slice(0, 64),
          next,
          demoUsers: DEMO_USERS,
        }),
      )
      return
    }
    // A new session id on login (no session fixation); the cart comes along.
    await req.session.regenerate({ keep: ['cart'] })
    const now = Date.now()
    Object.assign(req.session, {
      userId: user.id,
      userName: user.name,
      createdAt: now,
      lastSeenAt: now,
      userAgent: String(req.get('user-agent') ?? '').slice(0, MAX_USER_AGENT),
    })
    res.redirect(303, next)
  })

  app.post('/logout', async (req, res) => {
    await req.session.destroy()
    res.redirect(303, '/')
  })

  const requireUser = (req, res, next) => {
    if (currentUser(req)) return next()
    res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`)
  }

  app.get('/account/sessions', requireUser, async (req, res) => {
    const listed = await req.sessionStore.listByUser(req.session.userId)
    // NB: the store keeps no session ids (hashIds): sessions are named by handle, safe to put in a page.
    const mine = req.sessionStore.handleOf(req.sessionID)
    const sessions = listed
      .map(({ handle, session, expiresAt }) => ({
        handle,
        current: handle === mine,
        createdAt: session.createdAt,
        lastSeenAt: session.lastSeenAt,
        expiresAt,
        userAgent: typeof session.userAgent === 'string' ? session.userAgent : '',
      }))
      .sort((a, b) => Number(b.current) - Number(a.current) || (b.lastSeenAt ?? 0) - (a.lastSeenAt ?? 0))
    const ended = /^\d{1,6}$/.test(String(req.query.ended ?? '')) ? Number(req.query.ended) : undefined
    send(res, sessionsPage({ nonce: res.locals.nonce, user: currentUser(req), sessions, ended }))
  })

  app.post('/account/sessions/logout-device', requireUser, async (req, res) => {
    const handle = String(req.body.handle ?? '')
    // NB: only among this user's own sessions, and never this one (that is "Log out").
    const ended =
      handle === req.sessionStore.handleOf(req.sessionID)
        ? 0
        : await req.sessionStore.destroyByUser(req.session.userId, { only: handle })
    res.redirect(303, `/account/sessions?ended=${ended}`)
  })

  app.post('/account/sessions/logout-others', requireUser, async (req, res) => {
    const ended = await req.sessionStore.destroyByUser(req.session.userId, { except: req.sessionID })
    res.redirect(303, `/account/sessions?ended=${ended}`)
  })

  app.use((_req, res) => {
    res.status(404)
    send(res, errorPage({ nonce: res.locals.nonce, status: 404, title: 'Not found' }))
  })

  // Store errors arrive with err.status (503 when Redis is unavailable, 413 for an oversized session).
  app.use((err, req, res, next) => {
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status < 600 ? err.status : 500
    console.error(`${req.method} ${req.path}: ${status} ${err.code ?? err.name ?? 'error'}`)
    if (res.headersSent) return next(err)
    res.status(status)
    const title = status === 503 ? 'Sessions are unavailable, try again shortly' : 'Something went wrong'
    send(res, errorPage({ nonce: res.locals.nonce, status, title }))
  })

  return { app, close: () => admin.close() }
}

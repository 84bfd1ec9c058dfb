// Express apps for integration tests: express-session over a TieredStore, with routes that read and
// change the session the way a login + cart app does.

import express from 'express'
import session from 'express-session'
import type { TieredStore } from '../../src/store.js'

declare module 'express-session' {
  interface SessionData {
    views?: number
    cart?: string[]
    user?: string
    passport?: { user?: string }
  }
}

/** An Express 5 app using express-session with `store`. */
export function expressSessionApp(store: TieredStore, options: Partial<session.SessionOptions> = {}) {
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(
    session({
      store,
      secret: 'test secret',
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: 60_000 },
      ...options,
    }),
  )
  app.get('/views', (req, res) => {
    req.session.views = (req.session.views ?? 0) + 1
    res.json({ views: req.session.views })
  })
  app.get('/whoami', (req, res) => {
    res.json({ user: req.session.user ?? null, cart: req.session.cart ?? [], id: req.sessionID })
  })
  app.post('/cart', (req, res) => {
    req.session.cart = [...(req.session.cart ?? []), String(req.body.item)]
    res.redirect('/cart')
  })
  app.get('/cart', (req, res) => {
    res.json({ cart: req.session.cart ?? [] })
  })
  app.post('/login', (req, res, next) => {
    const cart = req.session.cart
    req.session.regenerate((err) => {
      if (err) return next(err)
      req.session.user = String(req.body.user)
      req.session.passport = { user: String(req.body.user) }
      if (cart) req.session.cart = cart
      res.json({ ok: true })
    })
  })
  app.post('/logout', (req, res, next) => {
    req.session.destroy((err) => (err ? next(err) : res.json({ ok: true })))
  })
  return app
}

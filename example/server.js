// A minimal demo: express-session over TieredStore, in local mode (memory + SQLite, no Redis needed) or, with
// REDIS_URL set, in shared mode. Run it with `npm run example`, then open http://localhost:3000.

import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import express from 'express'
import session from 'express-session'
import { TieredStore } from 'tiered-session'

const port = Number(process.env.PORT ?? 3000)
const sessionDir = process.env.SESSION_DIR ?? './.sessions'
const maxBytes = Number(process.env.MEMORY_MAX_BYTES ?? 64 * 1024 * 1024)
let secret = process.env.SESSION_SECRET
if (!secret) {
  secret = randomBytes(32).toString('hex')
  console.warn('SESSION_SECRET is not set: using a random secret, so sessions end when the server restarts.')
}

const redisUrl = process.env.REDIS_URL
const store = new TieredStore({
  disk: { path: join(sessionDir, 'sessions.db') },
  memory: { maxBytes },
  ...(redisUrl ? { redis: { url: redisUrl } } : {}),
})
store.on('error', (err) => console.error(`session store: ${err.code}: ${err.message}`))
store.on('disconnect', () => console.warn('session store: Redis is down; writes go to the local outbox'))
store.on('connect', () => console.log('session store: Redis connected'))

const app = express()
app.use(express.urlencoded({ extended: false }))
app.use(session({ store, secret, resave: false, saveUninitialized: false, cookie: { maxAge: 86_400_000 } }))

const products = { apple: 120, bread: 250, cheese: 480 }
const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

app.get('/', (req, res) => {
  const cart = req.session.cart ?? []
  const total = cart.reduce((sum, item) => sum + (products[item] ?? 0), 0)
  res.type('html').send(`<!doctype html><meta charset="utf-8"><title>tiered-session demo</title>
<h1>tiered-session demo</h1>
<p>${req.session.user ? `Signed in as <b>${escapeHtml(req.session.user)}</b>` : 'Not signed in.'}</p>
<form method="post" action="/login"><input name="user" placeholder="name" required> <button>Sign in</button></form>
<form method="post" action="/logout"><button>Sign out</button></form>
<h2>Products</h2>
${Object.entries(products)
  .map(
    ([name, cents]) =>
      `<form method="post" action="/cart" style="display:inline"><input type="hidden" name="item" value="${name}"><button>Add ${name} (${(cents / 100).toFixed(2)})</button></form>`,
  )
  .join(' ')}
<h2>Cart</h2><ul>${cart.map((i) => `<li>${escapeHtml(i)}</li>`).join('')}</ul><p>Total: ${(total / 100).toFixed(2)}</p>
<p><a href="/admin/stats">store stats</a> · <a href="/metrics">metrics</a></p>`)
})

app.post('/cart', (req, res) => {
  if (Object.hasOwn(products, req.body.item)) req.session.cart = [...(req.session.cart ?? []), req.body.item]
  res.redirect('/')
})

app.post('/login', (req, res, next) => {
  const cart = req.session.cart
  // A new id on login (session fixation), keeping the cart.
  req.session.regenerate((err) => {
    if (err) return next(err)
    req.session.user = String(req.body.user ?? '').slice(0, 64)
    req.session.userId = req.session.user
    if (cart) req.session.cart = cart
    res.redirect('/')
  })
})

app.post('/logout', (req, res, next) => {
  req.session.destroy((err) => (err ? next(err) : res.redirect('/')))
})

app.get('/admin/stats', (_req, res) => res.json(store.stats()))
app.get('/metrics', (_req, res) => res.type('text/plain; version=0.0.4').send(store.metrics()))

const server = app.listen(port, () => {
  const mode = redisUrl ? 'shared mode, Redis' : 'local mode'
  console.log(`tiered-session demo on http://localhost:${server.address().port} (${mode}, ${sessionDir})`)
})

function shutdown(signal) {
  console.log(`${signal}: closing`)
  server.close(() => {
    store.close().then(
      () => process.exit(0),
      (err) => {
        console.error(err)
        process.exit(1)
      },
    )
  })
}
process.on('SIGTERM', () => shutdown('SIGTERM'))
process.on('SIGINT', () => shutdown('SIGINT'))

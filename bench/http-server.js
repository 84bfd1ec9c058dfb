// One contender's Express 5 app for bench/http-read-mostly.js, run in its own child process (forked by it).
//
//   node bench/http-server.js <contender> <port> <tmp-root>
//
// contender: 'tiered'      tieredSession() over a TieredStore (local mode)
//            'es-memory'   express-session + its built-in MemoryStore
//            'es-tiered'   express-session + TieredStore (local mode)
// port: 0 picks a free one. A TieredStore gets a fresh SQLite file in its own mkdtemp() directory under
// <tmp-root> (which the parent creates and deletes).
//
// IPC (process.send / 'message'):
//   child -> parent  { type: 'listening', port }                  once the server listens
//   parent -> child  { type: 'sample' }                            -> { type: 'sample', cpu, counts, heap }
//   parent -> child  { type: 'shutdown' }                          -> { type: 'closed', stats } then exit(0)
// If the parent goes away (IPC disconnect), the child closes its store and exits.
//
// Routes (identical for every contender):
//   POST /login?user=N  a login: sets userId, a cart (~1 KiB of session in all) and counter = 0
//   GET  /read          reads the session only; { items: cart.length }, 401 without a logged-in session
//   POST /write         changes one key: counter += 1; { counter }, 401 without a logged-in session

import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import express from 'express'
import session from 'express-session'
import { TieredStore, tieredSession } from 'tiered-session'

const [contender, portArg, tmpRoot] = process.argv.slice(2)
const SECRET = 'bench-http-read-mostly-secret'
const DAY_MS = 86_400_000
const MEMORY_MAX_BYTES = 64 * 1024 * 1024

if (typeof process.send !== 'function') {
  console.error('bench/http-server.js is meant to be forked by bench/http-read-mostly.js (needs IPC)')
  process.exit(2)
}

function newTieredStore() {
  const dir = mkdtempSync(join(tmpRoot, `${contender}-`))
  const store = new TieredStore({
    disk: { path: join(dir, 'sessions.db') },
    memory: { maxBytes: MEMORY_MAX_BYTES },
  })
  store.on('error', (err) => console.error(`[${contender}] store error`, err.code, err.message))
  return store
}

let store
let sessionMiddleware
switch (contender) {
  case 'tiered':
    store = newTieredStore()
    sessionMiddleware = tieredSession({ secret: SECRET, store, cookie: { maxAge: DAY_MS }, touchAfter: 0.5 })
    break
  case 'es-memory':
    store = new session.MemoryStore()
    sessionMiddleware = session({
      secret: SECRET,
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: DAY_MS },
    })
    break
  case 'es-tiered':
    store = newTieredStore()
    sessionMiddleware = session({
      secret: SECRET,
      store,
      resave: false,
      saveUninitialized: false,
      cookie: { maxAge: DAY_MS },
    })
    break
  default:
    console.error(`unknown contender ${JSON.stringify(contender)}`)
    process.exit(2)
}

/** A cart of 6 items: with userId, counter and the cookie, the stored session is ~1 KiB of JSON. */
function cartFor(user) {
  const items = []
  for (let i = 0; i < 6; i++) {
    items.push({
      sku: `SKU-${String(user * 7 + i * 13).padStart(8, '0')}`,
      name: `Product ${user}-${i} with a reasonably descriptive name`,
      qty: 1 + ((user + i) % 4),
      priceCents: 499 + ((user * 31 + i * 17) % 9000),
      addedAt: 1_700_000_000_000 + user * 1000 + i,
    })
  }
  return items
}

const counts = { login: 0, read: 0, write: 0, unauthorized: 0 }

const app = express()
app.disable('x-powered-by')
app.use(sessionMiddleware)

app.post('/login', (req, res) => {
  const user = Number(req.query.user)
  req.session.userId = `user-${user}`
  req.session.cart = cartFor(user)
  req.session.counter = 0
  counts.login++
  // Size of the session as a store would serialize it (express-session's and ours: JSON with the cookie).
  res.json({ items: req.session.cart.length, bytes: Buffer.byteLength(JSON.stringify(req.session)) })
})

app.get('/read', (req, res) => {
  const cart = req.session?.cart
  if (req.session?.userId === undefined || !Array.isArray(cart)) {
    counts.unauthorized++
    res.status(401).json({ error: 'not logged in' })
    return
  }
  counts.read++
  res.json({ items: cart.length })
})

app.post('/write', (req, res) => {
  if (req.session?.userId === undefined) {
    counts.unauthorized++
    res.status(401).json({ error: 'not logged in' })
    return
  }
  counts.write++
  req.session.counter = (req.session.counter ?? 0) + 1
  res.json({ counter: req.session.counter })
})

const server = app.listen(Number(portArg ?? 0), '127.0.0.1', () => {
  process.send({ type: 'listening', port: server.address().port, pid: process.pid })
})

let closing
function shutdown() {
  closing ??= (async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    const stats = typeof store.stats === 'function' ? store.stats() : null
    if (typeof store.close === 'function') await store.close()
    return stats
  })()
  return closing
}

process.on('message', (msg) => {
  if (msg?.type === 'sample') {
    process.send({
      type: 'sample',
      cpu: process.cpuUsage(),
      counts: { ...counts },
      heapUsed: process.memoryUsage().heapUsed,
    })
  } else if (msg?.type === 'shutdown') {
    shutdown().then(
      (stats) => process.send({ type: 'closed', stats, counts }, () => process.exit(0)),
      (err) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
})

// The parent died or hung up: do not linger.
process.on('disconnect', () => {
  shutdown().finally(() => process.exit(0))
})

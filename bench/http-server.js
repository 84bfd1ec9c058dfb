// One contender's Express 5 app, in its own process (forked by bench/http.js):
//
//   node bench/http-server.js '<json>'   json: { id, store, middleware, tmpRoot, redisUrl, prefix, memorystoreMax }
//
// middleware 'es': express-session (resave false, saveUninitialized false) over the store `store`
//   (bench/lib/stores.js: memory, memorystore, file, local, shared, cr9, cr8);
// middleware 'ts': tieredSession() (touchAfter 0.5, its default) over a TieredStore (`local` or `shared`).
// Every contender: cookie maxAge 1 day; our stores get memory.maxBytes 64 MiB and a fresh SQLite file.
//
// Routes (identical for every contender):
//   POST /login?user=N  a login: userId, a 6-item cart and counter = 0 (~1 KiB of session JSON)
//   GET  /read          reads the session only; { items }; 401 without a logged-in session
//   POST /write         changes one key: counter += 1; { counter }; 401 without a logged-in session
//   GET  /visit         a new visitor (no cookie): puts a cart into a brand-new session (~1 KiB); { items }
//
// IPC: child → parent { type: 'listening', port } once it listens;
//      parent → child { type: 'sample' } → { type: 'sample', cpu, counts, heapUsed, rss };
//      parent → child { type: 'shutdown' } → { type: 'closed', stats, counts }, then exit.
// If the parent goes away (IPC disconnect), the child closes its store and exits.

import { readdirSync, readFileSync } from 'node:fs'
import express from 'express'
import session from 'express-session'
import { tieredSession } from 'tiered-session'
import { cartFor, DAY_MS, MiB } from './lib/sessions.js'
import { openStore } from './lib/stores.js'

const SECRET = 'bench-http-secret'

if (typeof process.send !== 'function') {
  console.error('bench/http-server.js is meant to be forked by bench/http.js (needs IPC)')
  process.exit(2)
}

const cfg = JSON.parse(process.argv[2])
const errors = []
const opened = await openStore(cfg.store, {
  tmpRoot: cfg.tmpRoot,
  redisUrl: cfg.redisUrl,
  prefix: cfg.prefix,
  maxBytes: 64 * MiB,
  memorystoreMax: cfg.memorystoreMax,
  errors,
})
const store = opened.store

const sessionMiddleware =
  cfg.middleware === 'ts'
    ? tieredSession({ secret: SECRET, store, cookie: { maxAge: DAY_MS } })
    : session({ secret: SECRET, store, resave: false, saveUninitialized: false, cookie: { maxAge: DAY_MS } })

const counts = { login: 0, read: 0, write: 0, visit: 0, unauthorized: 0 }
let visitors = 0

const app = express()
app.disable('x-powered-by')
app.use(sessionMiddleware)

app.post('/login', (req, res) => {
  const user = Number(req.query.user)
  req.session.userId = `user-${user}`
  req.session.cart = cartFor(user)
  req.session.counter = 0
  counts.login++
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

app.get('/visit', (req, res) => {
  const n = 1_000_000 + visitors++
  req.session.userId = `visitor-${n}`
  req.session.cart = cartFor(n)
  req.session.counter = 0
  counts.visit++
  res.json({ items: req.session.cart.length })
})

app.use((err, _req, res, _next) => {
  errors.push(String(err?.message ?? err))
  res.status(err?.status ?? 500).json({ error: String(err?.code ?? err?.message ?? err) })
})

const server = app.listen(0, '127.0.0.1', () => {
  process.send({ type: 'listening', port: server.address().port, pid: process.pid })
})
server.keepAliveTimeout = 60_000

// Linux: run time and run-queue wait (ns, /proc/self/task/<tid>/schedstat) of the main thread and of all the
// other threads together (V8's GC helpers, libuv's pool, our file worker), to tell a slower path from a main
// thread that waits for a core. null elsewhere.
function threadTimes() {
  try {
    const out = { mainRunNs: 0, mainWaitNs: 0, otherRunNs: 0, otherWaitNs: 0 }
    for (const tid of readdirSync('/proc/self/task')) {
      const [run, wait] = readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ').map(Number)
      if (Number(tid) === process.pid) {
        out.mainRunNs += run
        out.mainWaitNs += wait
      } else {
        out.otherRunNs += run
        out.otherWaitNs += wait
      }
    }
    return out
  } catch {
    return null
  }
}

let closing
function shutdown() {
  closing ??= (async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    const stats = opened.stats()
    await opened.close()
    return stats
  })()
  return closing
}

process.on('message', (msg) => {
  if (msg?.type === 'sample') {
    const mem = process.memoryUsage()
    process.send({
      type: 'sample',
      cpu: process.cpuUsage(),
      counts: { ...counts },
      heapUsed: mem.heapUsed,
      rss: mem.rss,
      threads: threadTimes(),
      errors: errors.length,
      lastError: errors[errors.length - 1],
    })
  } else if (msg?.type === 'shutdown') {
    shutdown().then(
      (stats) =>
        process.send({ type: 'closed', stats, counts, errors: errors.slice(0, 10) }, () => process.exit(0)),
      (err) => {
        console.error(err)
        process.exit(1)
      },
    )
  }
})

process.on('disconnect', () => {
  shutdown().finally(() => process.exit(0))
})

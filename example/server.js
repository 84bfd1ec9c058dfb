// The example shop's entry point: reads the environment, opens the store (local mode, or shared mode with
// REDIS_URL), listens, and shuts down cleanly on SIGTERM / SIGINT. Run it with `npm run example`.

import { join } from 'node:path'
import { defaults, TieredStore } from 'tiered-session'
import { createApp } from './app.js'
import { readConfig } from './config.js'

/** In shared mode, how long to wait for Redis (and the invalidation channel) before serving anyway. */
const REDIS_WAIT_MS = 5000
/** How long a shutdown waits for requests in flight before it closes their connections. */
const SHUTDOWN_GRACE_MS = 5000

let config
try {
  config = readConfig()
} catch (err) {
  console.error(`example: ${err.message}`)
  process.exit(2)
}
for (const warning of config.warnings) console.warn(`example: ${warning}`)

const mode = config.redisUrl ? 'shared' : 'local'
const dbPath = join(config.sessionDir, 'sessions.db')
const memory = { ...defaults.memory, maxBytes: config.maxBytes }
let store
try {
  store = new TieredStore({
    memory,
    disk: { path: dbPath },
    ...(config.redisUrl ? { redis: { url: config.redisUrl } } : {}),
  })
} catch (err) {
  console.error(`example: cannot open the session store: ${err.code ?? err.name}: ${err.message}`)
  process.exit(1)
}
store.on('error', (err) => console.error(`session store: ${err.code}: ${err.message}`))
store.on('disconnect', () => console.warn('session store: Redis is down; writes go to the local outbox'))
store.on('connect', () => console.log('session store: Redis connected'))
store.on('coherence', ({ live }) =>
  console.log(`session store: invalidation channel ${live ? 'live' : 'lost; local copies are re-checked'}`),
)

// NB: before waiting for Redis, so the admin page sees the store's first events.
const { app, close: closeApp } = createApp({ store, secret: config.secret, mode, memory })

if (mode === 'shared') {
  // Serve once Redis answers and invalidations flow, so a first login is shared at once. If Redis is not
  // there, start anyway: the store serves what it holds locally and queues writes in its outbox.
  // NB: not events.once(), which rejects on the store's 'error' events (they are logged above).
  const event = (name) => new Promise((resolve) => store.once(name, resolve))
  const ready = Promise.all([event('connect'), event('coherence')])
  const timeout = new Promise((resolve) => setTimeout(resolve, REDIS_WAIT_MS, 'timeout').unref())
  if ((await Promise.race([ready, timeout])) === 'timeout') {
    console.warn(`example: Redis not ready after ${REDIS_WAIT_MS} ms; starting anyway`)
  }
}

const server = app.listen(config.port)
server.on('error', (err) => {
  console.error(`example: cannot listen on port ${config.port}: ${err.code ?? err.message}`)
  process.exit(1)
})
server.on('listening', () => {
  const where = mode === 'shared' ? 'shared mode with Redis' : 'local mode'
  console.log(
    `tiered-session example shop listening on http://localhost:${server.address().port} (${where}, sessions in ${dbPath}, memory budget ${config.maxBytes} bytes)`,
  )
})

let shuttingDown = false
async function shutdown(signal) {
  if (shuttingDown) {
    console.warn(`${signal} again: exiting now`)
    process.exit(1)
  }
  shuttingDown = true
  console.log(`${signal}: closing`)
  const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS)
  force.unref()
  try {
    // Stop taking requests (idle keep-alive connections close now), let those in flight finish, stop the
    // admin's sampler and load, then commit and close the store.
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeIdleConnections()
    await closed
    await closeApp()
    await store.close()
    console.log('closed')
    process.exit(0)
  } catch (err) {
    console.error(`example: shutdown failed: ${err.code ?? err.name}: ${err.message}`)
    process.exit(1)
  }
}
process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))

// Store-level benchmark (no HTTP): tiered-session against connect-redis, get / set / touch.
// Run with `npm run bench:store` (builds dist/, then runs this file). Uses only the public API.
//
// Contenders (all in this process, all connected at once, each on its own key prefix):
//   ours      TieredStore shared mode: new TieredStore({ prefix, redis: { url }, disk: { path } })
//   cr9       connect-redis 9 over a node-redis 5 client (createClient({ url }), await client.connect())
//   cr8       connect-redis 8 over an ioredis 5 client (the client its own tests use; --cr8-ioredis 6 to
//             give it ioredis 6, the client our store uses)
//   local     TieredStore local mode (memory over SQLite, no Redis), for reference
// connect-redis 8 and 9 both export `RedisStore` (named); their get/set/touch are async and resolve when no
// callback is given, so every store here is driven the same way: `await store.op(...)`.
//
// Redis: our own redis-server (--save '' --appendonly no) on a free loopback port, started here, PINGed
// until it answers, and killed by PID at the end (the shared Redis on 6379 is never touched). Two passes:
//   loopback   every client connects straight to it
//   +1 ms      every client connects through a TCP proxy (a forked child running this file with --proxy)
//              that holds each chunk for --delay-ms (1) in each direction (one setTimeout per chunk; Node
//              fires equal-delay timers in insertion order, and the proxy checks a sequence number per
//              direction), like a Redis one network hop away. The measured PING round trip is reported.
//
// Sessions: --sessions (100) hot sessions per contender, ~1 KiB of JSON shaped like login + cart (cookie
// with expires 1 day ahead, userId, csrf token, a cart of 3-5 items, ...), written before the rounds.
// Operations, each awaited in turn (sequential, one in flight), the sids taken round-robin:
//   get    store.get(sid) of a hot session (the figure that matters most)
//   set    store.set(sid, session) with lastSeenAt and cookie.expires (now + 1 day) refreshed per op
//   touch  store.touch(sid, session) with cookie.expires = now + 1 day, as express-session passes it after
//          resetting the cookie's maxAge: the expiry grows every time, so our store really writes (it skips
//          a touch that would not extend the session; stats().writes is checked)
// Timing: each op timed alone with process.hrtime.bigint() (the session object is built before t0).
// ops/s = ops / (sum of the per-op times), i.e. sequential throughput of the store call itself; p50/p99 are
// nearest-rank. Per (contender, op) in a round: an untimed warm-up of max(sessions, ops/10) ops (covers
// every hot sid), then --ops (20,000) timed ops; --proxy-ops (500) in the +1 ms pass, where a Redis round
// trip costs ~2 ms. --rounds (3) rounds per pass, the contender order rotated each round; the figure per
// contender and op is the median over rounds (of ops/s, p50 and p99 separately).
//
// Evidence, per timed loop: Redis `INFO commandstats` before/after (from a direct admin connection; the
// INFO calls themselves excluded), so Redis commands per op (commands run inside Lua scripts included),
// and for our stores the stats() deltas (hits.memory / hits.disk / hits.redis, misses, writes).
// Round-trip census (loopback pass, before the rounds): a MONITOR connection records --census (50) ops
// of each kind per contender (untimed); commands sent by clients (not those run inside scripts) per op
// is the number of Redis round trips each op costs, by command name.
//
// Loopback round trip: on a VM it swings with the vCPUs' idle state (here ~18 µs with a core kept busy,
// ~55-75 µs when idle), which moves every Redis-bound figure by ~3x. So PING p50 is measured on the
// contenders' path just before every timed loop and printed next to each round's hot get, and the goal line
// also gives ours' median hot get against each peer's fastest round.
//
// Output: markdown tables on stdout, bench/results/store-level-<timestamp>.json.
// Options: --rounds N --ops N --proxy-ops N --sessions N --delay-ms MS --census N --cr8-ioredis 5|6
//          --skip-proxy

import { execFileSync, fork, spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { RedisStore as RedisStore9 } from 'connect-redis'
import { RedisStore as RedisStore8 } from 'connect-redis8'
import { Redis as Redis6 } from 'ioredis'
import { Redis as Redis5 } from 'ioredis5'
import { createClient } from 'redis'
import { TieredStore } from 'tiered-session'

const SELF = fileURLToPath(import.meta.url)
const BENCH_DIR = dirname(SELF)
const RESULTS_DIR = join(BENCH_DIR, 'results')
const DAY_MS = 86_400_000
const GOAL_HOT_GET_RATIO = 10

// ---------------------------------------------------------------------------------------------------------
// The delaying proxy (child process): `node store-level.js --proxy <upstreamPort> <delayMs>`

function runProxy(upstreamPort, delayMs) {
  let broken = 0
  const pipe = (from, to) => {
    let sent = 0
    let delivered = 0
    from.on('data', (chunk) => {
      const seq = sent++
      setTimeout(() => {
        if (seq !== delivered++) broken++
        if (!to.destroyed) to.write(chunk)
      }, delayMs)
    })
    from.on('end', () => setTimeout(() => to.end(), delayMs))
    from.on('error', () => to.destroy())
    from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1))
  }
  const server = net.createServer((client) => {
    client.setNoDelay(true)
    const upstream = net.connect(upstreamPort, '127.0.0.1')
    upstream.setNoDelay(true)
    pipe(client, upstream)
    pipe(upstream, client)
  })
  server.listen(0, '127.0.0.1', () => process.send({ port: server.address().port }))
  process.on('message', (m) => {
    if (m === 'stats') process.send({ outOfOrder: broken })
  })
  process.on('disconnect', () => process.exit(0))
}

// ---------------------------------------------------------------------------------------------------------
// Sessions (deterministic per index, ~1 KiB of JSON)

function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

function token(r, n) {
  let s = ''
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(r() * 64)]
  return s
}

/** A logged-in shopper's session with index i, its cookie expiring 1 day after `now`. */
function sessionFor(i, now = Date.now()) {
  const r = rng(Math.imul(i + 1, 2654435761))
  const items = 3 + Math.floor(r() * 3)
  const cart = []
  for (let k = 0; k < items; k++) {
    cart.push({
      sku: `SKU-${token(r, 8).toUpperCase()}`,
      name: `Product ${Math.floor(r() * 100000)} ${token(r, 12)}`,
      qty: 1 + Math.floor(r() * 4),
      price: Math.round(r() * 20000) / 100,
      currency: 'EUR',
    })
  }
  const loginAt = now - Math.floor(r() * 3_600_000)
  return {
    cookie: {
      originalMaxAge: DAY_MS,
      expires: new Date(now + DAY_MS).toISOString(),
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
      path: '/',
    },
    userId: `user-${i}`,
    csrfToken: token(r, 43),
    cart,
    createdAt: loginAt,
    lastSeenAt: loginAt + Math.floor(r() * 600_000),
    locale: 'en-GB',
    flash: {},
    returnTo: `/checkout/${token(r, 10)}`,
    ip: `203.0.113.${Math.floor(r() * 255)}`,
    authMethod: 'password',
    mfa: r() < 0.5,
    shipping: {
      country: 'GB',
      postcode: `SW${1 + Math.floor(r() * 20)} ${token(r, 3).toUpperCase()}`,
      method: 'standard',
    },
    recentlyViewed: [0, 1, 2, 3].map(() => `SKU-${token(r, 8).toUpperCase()}`),
    ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
  }
}

const sidFor = (i) => `sl-${i.toString(36).padStart(4, '0')}-${(Math.imul(i, 40503) >>> 0).toString(36)}`

/** The session as a request would hand it over for a write: cookie.expires = now + 1 day, lastSeenAt = now. */
function refreshed(base) {
  const now = Date.now()
  return {
    ...base,
    lastSeenAt: now,
    cookie: { ...base.cookie, expires: new Date(now + DAY_MS).toISOString() },
  }
}

// ---------------------------------------------------------------------------------------------------------
// Helpers

const nowNs = () => process.hrtime.bigint()
const msSince = (t0) => Number(nowNs() - t0) / 1e6
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function percentile(sorted, p) {
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** One PING over a raw socket; resolves true on +PONG. */
function pingOnce(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => {
      reply += d.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

async function startRedis() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    )
    let exited = false
    proc.on('exit', () => {
      exited = true
    })
    proc.on('error', () => {
      exited = true
    })
    const deadline = Date.now() + 5000
    while (!exited && Date.now() < deadline) {
      if (await pingOnce(port)) {
        const version = execFileSync('redis-server', ['--version'], { encoding: 'utf8' }).trim()
        return { proc, port, version }
      }
      await sleep(50)
    }
    if (!exited) proc.kill('SIGKILL')
  }
  throw new Error('could not start redis-server')
}

async function stopProcess(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  process.kill(proc.pid, 'SIGTERM')
  const timer = setTimeout(() => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL')
  }, 3000)
  await exited
  clearTimeout(timer)
}

async function startProxy(upstreamPort, delayMs) {
  const child = fork(SELF, ['--proxy', String(upstreamPort), String(delayMs)], { stdio: 'inherit' })
  const { port } = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code) => reject(new Error(`proxy exited (${code})`)))
    }),
    5000,
    'proxy start',
  )
  return {
    child,
    port,
    async outOfOrder() {
      child.send('stats')
      const m = await withTimeout(new Promise((resolve) => child.once('message', resolve)), 2000, 'proxy')
      return m.outOfOrder
    },
  }
}

/** `INFO commandstats` as { command: calls }. */
async function commandStats(admin) {
  const text = await admin.info('commandstats')
  const out = {}
  for (const line of text.split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

function commandDelta(before, after) {
  const out = {}
  for (const [cmd, calls] of Object.entries(after)) {
    if (cmd === 'info') continue
    const d = calls - (before[cmd] ?? 0)
    if (d > 0) out[cmd] = d
  }
  return out
}

const sumValues = (o) => Object.values(o).reduce((a, b) => a + b, 0)

/** Records every command Redis runs while `fn` runs (MONITOR), split into sent-by-a-client and in-a-script. */
async function monitor(port, admin, fn) {
  const socket = net.connect(port, '127.0.0.1')
  let buffer = ''
  let ready
  const okSeen = new Promise((resolve) => {
    ready = resolve
  })
  socket.on('data', (d) => {
    buffer += d.toString('utf8')
    if (buffer.startsWith('+OK\r\n')) ready()
  })
  await new Promise((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  socket.write('MONITOR\r\n')
  await withTimeout(okSeen, 2000, 'MONITOR')
  const start = buffer.length
  await fn()
  const marker = `census-end-${Math.random().toString(36).slice(2)}`
  await admin.echo(marker)
  const deadline = Date.now() + 5000
  while (!buffer.includes(marker) && Date.now() < deadline) await sleep(5)
  socket.destroy()
  const client = {}
  const script = {}
  for (const line of buffer.slice(start).split('\r\n')) {
    const m = /^\+[\d.]+ \[\d+ ([^\]]+)\] "([^"]+)"/.exec(line)
    if (!m || line.includes(marker)) continue
    const cmd = m[2].toLowerCase()
    const bucket = m[1] === 'lua' ? script : client
    bucket[cmd] = (bucket[cmd] ?? 0) + 1
  }
  return { client, script }
}

// ---------------------------------------------------------------------------------------------------------
// Contenders

const CONTENDERS = [
  { id: 'ours', label: 'tiered-session shared (ioredis 6)' },
  { id: 'cr9', label: 'connect-redis 9 + node-redis 5' },
  { id: 'cr8', label: 'connect-redis 8 + ioredis' },
  { id: 'local', label: 'tiered-session local (no Redis)' },
]
const LABEL = Object.fromEntries(CONTENDERS.map((c) => [c.id, c.label]))
const OPS = ['get', 'set', 'touch']
const PEERS = ['cr9', 'cr8']

function waitForEvent(emitter, event, predicate = () => true) {
  return new Promise((resolve) => {
    const on = (arg) => {
      if (!predicate(arg)) return
      emitter.off(event, on)
      resolve(arg)
    }
    emitter.on(event, on)
  })
}

async function openContender(id, { url, tmp, cr8Ioredis, errors }) {
  const onError = (error) => errors.push(`${id}: ${error?.message ?? error}`)
  if (id === 'ours' || id === 'local') {
    const path = join(mkdtempSync(join(tmp, `${id}-`)), 'sessions.db')
    const shared = id === 'ours'
    const store = new TieredStore(
      shared ? { prefix: 'bench:ours:', redis: { url }, disk: { path } } : { disk: { path } },
    )
    store.on('error', onError)
    if (shared) {
      // Attached synchronously after construction: the client connects asynchronously, so neither has fired.
      const connected = waitForEvent(store, 'connect')
      const live = waitForEvent(store, 'coherence', (c) => c?.live === true)
      await withTimeout(Promise.all([connected, live]), 10_000, 'our store connect + coherence')
    }
    return { id, store, stats: () => store.stats(), close: () => store.close() }
  }
  if (id === 'cr9') {
    const client = createClient({ url })
    client.on('error', onError)
    await client.connect()
    const store = new RedisStore9({ client, prefix: 'bench:cr9:' })
    return { id, store, stats: null, close: () => client.close() }
  }
  if (id === 'cr8') {
    const Redis = cr8Ioredis === '6' ? Redis6 : Redis5
    const client = new Redis(url)
    client.on('error', onError)
    if (client.status !== 'ready') await withTimeout(waitForEvent(client, 'ready'), 10_000, 'ioredis ready')
    const store = new RedisStore8({ client, prefix: 'bench:cr8:' })
    return { id, store, stats: null, close: () => client.quit() }
  }
  throw new Error(`unknown contender ${id}`)
}

/** Runs `count` ops of `op` on the contender's store, round-robin over the hot sids, from sid index `from`. */
async function runOps(c, op, count, sessions, bases, from, samples) {
  const store = c.store
  let misses = 0
  for (let k = 0; k < count; k++) {
    const i = (from + k) % sessions
    const sid = sidFor(i)
    if (op === 'get') {
      const t0 = nowNs()
      const got = await store.get(sid)
      const t1 = nowNs()
      if (samples) samples[k] = Number(t1 - t0) / 1000
      if (got == null || got.userId !== bases[i].userId) misses++
    } else {
      const session = refreshed(bases[i])
      const t0 = nowNs()
      if (op === 'set') await store.set(sid, session)
      else await store.touch(sid, session)
      const t1 = nowNs()
      if (samples) samples[k] = Number(t1 - t0) / 1000
    }
  }
  return misses
}

function storeDelta(before, after) {
  if (before === null) return null
  return {
    memoryHits: after.hits.memory - before.hits.memory,
    diskHits: after.hits.disk - before.hits.disk,
    redisHits: after.hits.redis - before.hits.redis,
    misses: after.misses - before.misses,
    writes: after.writes - before.writes,
    promotions: after.promotions - before.promotions,
  }
}

/** One (contender, op) measurement: warm-up, then `ops` timed ops, with Redis and stats() evidence. */
async function measure(c, op, { ops, sessions, bases, admin, cursor, pinger, pings }) {
  const warmup = Math.max(sessions, Math.floor(ops / 10))
  const warmMisses = await runOps(c, op, warmup, sessions, bases, cursor, null)
  const rtt = await pingRtt(pinger, pings)
  const samples = new Float64Array(ops)
  const cmdBefore = await commandStats(admin)
  const statsBefore = c.stats ? c.stats() : null
  const misses = await runOps(c, op, ops, sessions, bases, cursor + warmup, samples)
  const statsAfter = c.stats ? c.stats() : null
  const cmdAfter = await commandStats(admin)
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of samples) sum += v
  const commands = commandDelta(cmdBefore, cmdAfter)
  return {
    ops,
    warmup,
    pingP50Us: rtt.p50Us,
    opsPerSec: ops / (sum / 1e6),
    meanUs: sum / ops,
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    maxUs: sorted[sorted.length - 1],
    getMisses: op === 'get' ? misses + warmMisses : undefined,
    redisCommands: commands,
    redisCommandsPerOp: sumValues(commands) / ops,
    store: storeDelta(statsBefore, statsAfter),
  }
}

/** PING round trips over `client` (ioredis 6, on the same path as the contenders). */
async function pingRtt(client, count) {
  const us = []
  for (let k = 0; k < count; k++) {
    const t0 = nowNs()
    await client.ping()
    us.push(Number(nowNs() - t0) / 1000)
  }
  us.sort((a, b) => a - b)
  return { p50Us: percentile(us, 50), p99Us: percentile(us, 99) }
}

/** One pass: open every contender on `redisPort` (direct or the proxy), census, rounds, close. */
async function runPass(pass, { redisPort, connectPort, ops, args, admin, tmp }) {
  const url = `redis://127.0.0.1:${connectPort}`
  const errors = []
  const sessions = Number(args.sessions)
  const rounds = Number(args.rounds)
  // PINGs on the contenders' path: 500 at the start, then `pings` just before every timed loop (the
  // loopback round trip of a VM swings with its vCPUs' idle state, so it is recorded next to each figure).
  const pinger = new Redis6({ port: connectPort, host: '127.0.0.1' })
  const pings = Math.max(20, Math.min(200, Math.floor(ops / 100)))
  const contenders = []
  const bases = Array.from({ length: sessions }, (_, i) => sessionFor(i))
  try {
    await withTimeout(waitForEvent(pinger, 'ready'), 5000, 'ping client')
    await pingRtt(pinger, 50)
    const rtt = await pingRtt(pinger, 500)
    console.error(`[${pass}] PING round trip p50 ${rtt.p50Us.toFixed(1)} µs, p99 ${rtt.p99Us.toFixed(1)} µs`)
    for (const { id } of CONTENDERS) {
      contenders.push(await openContender(id, { url, tmp, cr8Ioredis: args['cr8-ioredis'], errors }))
    }
    // The hot sessions, written once per contender.
    for (const c of contenders) {
      for (let i = 0; i < sessions; i++) await c.store.set(sidFor(i), bases[i])
    }
    const sessionBytes = median(bases.map((b) => Buffer.byteLength(JSON.stringify(b))))

    // Round-trip census (MONITOR), untimed.
    let census = null
    if (args.census !== '0' && pass === 'loopback') {
      census = {}
      const n = Number(args.census)
      for (const c of contenders) {
        if (c.id === 'local') continue
        census[c.id] = {}
        for (const op of OPS) {
          // A pass over every hot sid first, so a get census sees hot (verified) copies only.
          await runOps(c, op, sessions, sessions, bases, 0, null)
          const seen = await monitor(redisPort, admin, () => runOps(c, op, n, sessions, bases, 0, null))
          census[c.id][op] = {
            ops: n,
            roundTripsPerOp: sumValues(seen.client) / n,
            clientCommands: seen.client,
            scriptCommands: seen.script,
          }
        }
      }
    }

    const perRound = []
    let cursor = 0
    for (let r = 0; r < rounds; r++) {
      const order = contenders.map((_, k) => contenders[(k + r) % contenders.length])
      const round = { order: order.map((c) => c.id), results: {} }
      for (const c of order) {
        round.results[c.id] = {}
        for (const op of OPS) {
          const m = await measure(c, op, { ops, sessions, bases, admin, cursor, pinger, pings })
          cursor += 7 // start each loop at a different hot sid
          round.results[c.id][op] = m
          console.error(
            `[${pass}] round ${r + 1}/${rounds} ${c.id.padEnd(5)} ${op.padEnd(5)} ` +
              `${Math.round(m.opsPerSec).toLocaleString('en-US').padStart(9)} ops/s  ` +
              `p50 ${m.p50Us.toFixed(1)} µs  p99 ${m.p99Us.toFixed(1)} µs  ` +
              `redis cmds/op ${m.redisCommandsPerOp.toFixed(2)}  PING p50 ${m.pingP50Us.toFixed(1)} µs` +
              (m.store ? `  memHits ${m.store.memoryHits} redisHits ${m.store.redisHits}` : ''),
          )
        }
      }
      perRound.push(round)
    }

    const summary = {}
    for (const { id } of CONTENDERS) {
      summary[id] = {}
      for (const op of OPS) {
        const list = perRound.map((round) => round.results[id][op])
        summary[id][op] = {
          opsPerSec: median(list.map((m) => m.opsPerSec)),
          p50Us: median(list.map((m) => m.p50Us)),
          p99Us: median(list.map((m) => m.p99Us)),
          redisCommandsPerOp: median(list.map((m) => m.redisCommandsPerOp)),
          getMisses: op === 'get' ? list.reduce((a, m) => a + m.getMisses, 0) : undefined,
          store: list[0].store === null ? null : list.map((m) => m.store),
        }
      }
    }
    const ratios = {}
    for (const op of OPS) {
      ratios[op] = {}
      for (const peer of PEERS) ratios[op][peer] = summary.ours[op].opsPerSec / summary[peer][op].opsPerSec
    }
    const loopPings = perRound.flatMap((round) =>
      Object.values(round.results).flatMap((byOp) => Object.values(byOp).map((m) => m.pingP50Us)),
    )
    const pingsDuring = {
      medianUs: median(loopPings),
      minUs: Math.min(...loopPings),
      maxUs: Math.max(...loopPings),
    }
    return {
      pass,
      url,
      rtt,
      pingsDuring,
      ops,
      rounds,
      sessions,
      sessionBytes,
      census,
      summary,
      ratios,
      perRound,
      errors,
    }
  } finally {
    pinger.disconnect()
    for (const c of contenders) {
      try {
        await c.close()
      } catch (error) {
        errors.push(`${c.id} close: ${error?.message ?? error}`)
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------------
// Report

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtUs = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1))
const fmtRatio = (x) => (x >= 10 ? `${x.toFixed(0)}x` : `${x.toFixed(2)}x`)

function markdown(rows) {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)))
  const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`
  return [
    line(rows[0]),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n')
}

function passTable(p) {
  const rows = [
    ['Op', ...CONTENDERS.map((c) => `${c.id}: ops/s (p50 / p99 µs)`), ...PEERS.map((id) => `ours/${id}`)],
  ]
  for (const op of OPS) {
    rows.push([
      op === 'get' ? 'get (hot)' : op,
      ...CONTENDERS.map(({ id }) => {
        const s = p.summary[id][op]
        return `${fmtInt(s.opsPerSec)} (${fmtUs(s.p50Us)} / ${fmtUs(s.p99Us)})`
      }),
      ...PEERS.map((id) => fmtRatio(p.ratios[op][id])),
    ])
  }
  return markdown(rows)
}

function evidenceTable(p) {
  const rows = [['Op', ...CONTENDERS.filter((c) => c.id !== 'local').map((c) => `${c.id}: Redis cmds/op`)]]
  for (const op of OPS) {
    rows.push([
      op,
      ...CONTENDERS.filter((c) => c.id !== 'local').map(({ id }) => {
        const timed = p.summary[id][op].redisCommandsPerOp.toFixed(2)
        const census = p.census?.[id]?.[op]
        if (!census) return timed
        const names = Object.entries(census.clientCommands)
          .map(([cmd, n]) => `${cmd} ${(n / census.ops).toFixed(0)}`)
          .join(', ')
        return `${timed} (round trips ${census.roundTripsPerOp.toFixed(2)}${names ? `: ${names}` : ''})`
      }),
    ])
  }
  return markdown(rows)
}

function oursStatsLine(p) {
  const get = p.summary.ours.get.store
  const timed = p.ops * p.rounds
  const sum = (k) => get.reduce((a, s) => a + s[k], 0)
  return (
    `ours get over ${fmtInt(timed)} timed ops: stats() hits.memory +${fmtInt(sum('memoryHits'))}, ` +
    `hits.disk +${sum('diskHits')}, hits.redis +${sum('redisHits')}, misses +${sum('misses')}; ` +
    `Redis commands during those loops: ${fmtInt(p.perRound.reduce((a, r) => a + sumValues(r.results.ours.get.redisCommands), 0))}`
  )
}

/** The hot get of each round, with the PING p50 taken just before it: loopback RTT swings on a VM. */
function getRoundsLine(p) {
  const parts = CONTENDERS.filter((c) => c.id !== 'local').map(({ id }) => {
    const rounds = p.perRound.map((r) => r.results[id].get)
    return `${id} ${rounds.map((m) => `${fmtUs(m.p50Us)}@${fmtUs(m.pingP50Us)}`).join(', ')}`
  })
  return `hot get p50 per round (µs, @ PING p50 µs just before): ${parts.join('; ')}`
}

/** ours' median hot get against each peer's fastest round (the least favourable pairing for ours). */
function conservativeRatios(p) {
  return Object.fromEntries(
    PEERS.map((id) => [
      id,
      p.summary.ours.get.opsPerSec / Math.max(...p.perRound.map((r) => r.results[id].get.opsPerSec)),
    ]),
  )
}

function gitInfo() {
  try {
    const cwd = join(BENCH_DIR, '..')
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd,
      encoding: 'utf8',
    }).trim()
    return { commit, srcDirty: dirty.length > 0 }
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main() {
  const { values: args } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      ops: { type: 'string', default: '20000' },
      'proxy-ops': { type: 'string', default: '500' },
      sessions: { type: 'string', default: '100' },
      'delay-ms': { type: 'string', default: '1' },
      census: { type: 'string', default: '50' },
      'cr8-ioredis': { type: 'string', default: '5' },
      'skip-proxy': { type: 'boolean', default: false },
    },
  })
  if (!['5', '6'].includes(args['cr8-ioredis'])) throw new Error('--cr8-ioredis must be 5 or 6')
  LABEL.cr8 = `connect-redis 8 + ioredis ${args['cr8-ioredis']}`
  const started = new Date()
  const t0 = nowNs()
  const tmp = mkdtempSync(join(os.tmpdir(), 'tiered-session-store-bench-'))
  const redis = await startRedis()
  console.error(
    `redis-server ${redis.version.split(' ')[2]} on 127.0.0.1:${redis.port} (pid ${redis.proc.pid})`,
  )
  let proxy
  let admin
  const passes = []
  try {
    admin = new Redis6({ port: redis.port, host: '127.0.0.1' })
    await withTimeout(waitForEvent(admin, 'ready'), 5000, 'admin client')
    passes.push(
      await runPass('loopback', {
        redisPort: redis.port,
        connectPort: redis.port,
        ops: Number(args.ops),
        args,
        admin,
        tmp,
      }),
    )
    if (!args['skip-proxy']) {
      proxy = await startProxy(redis.port, Number(args['delay-ms']))
      const p = await runPass(`+${args['delay-ms']} ms each way`, {
        redisPort: redis.port,
        connectPort: proxy.port,
        ops: Number(args['proxy-ops']),
        args,
        admin,
        tmp,
      })
      p.proxyOutOfOrderChunks = await proxy.outOfOrder()
      passes.push(p)
    }
  } finally {
    if (admin) await admin.quit().catch(() => admin.disconnect())
    if (proxy) await stopProcess(proxy.child)
    await stopProcess(redis.proc)
    rmSync(tmp, { recursive: true, force: true })
  }

  const cpu = os.cpus()
  const header = `tiered-session store-level benchmark (node ${process.version}, ${cpu.length} x ${cpu[0]?.model.trim()}, ${redis.version.split(' ').slice(0, 3).join(' ')})`
  const legend = CONTENDERS.map(({ id }) => `${id} = ${LABEL[id]}`).join('; ')
  const sections = [
    `Contenders: ${legend}. ours/peer = ours ops/s ÷ peer ops/s (> 1: ours faster). ` +
      'ops/s = ops ÷ summed per-op time (one op in flight).',
  ]
  for (const p of passes) {
    const lines = [
      `### Redis ${p.pass === 'loopback' ? 'on loopback' : `behind a proxy, ${p.pass}`} ` +
        `(PING RTT p50 ${fmtUs(p.rtt.p50Us)} µs at the start, ${fmtUs(p.pingsDuring.minUs)}-${fmtUs(p.pingsDuring.maxUs)} µs ` +
        `just before the timed loops; ${fmtInt(p.ops)} timed ops per op per round, ` +
        `median of ${p.rounds} rounds; ${p.sessions} hot sessions of ~${p.sessionBytes} B)`,
      '',
      passTable(p),
      '',
      'Redis commands per op in the timed loops (INFO commandstats, in-script commands included); ' +
        'census (MONITOR): round trips per op, by command:',
      '',
      evidenceTable(p),
      '',
      oursStatsLine(p),
      getRoundsLine(p),
    ]
    if (p.proxyOutOfOrderChunks !== undefined)
      lines.push(`proxy chunks out of order: ${p.proxyOutOfOrderChunks}`)
    if (p.errors.length > 0) lines.push(`store/client errors: ${p.errors.join('; ')}`)
    sections.push(lines.join('\n'))
  }
  const loop = passes[0]
  const goal = Math.min(...PEERS.map((id) => loop.ratios.get[id]))
  const conservative = conservativeRatios(loop)
  const verdict =
    `Goal: a hot get of ours >= ${GOAL_HOT_GET_RATIO}x connect-redis on loopback: ` +
    `${goal >= GOAL_HOT_GET_RATIO ? 'met' : '**not met**'} on medians (ours/cr9 ${fmtRatio(loop.ratios.get.cr9)}, ` +
    `ours/cr8 ${fmtRatio(loop.ratios.get.cr8)}); against each peer's fastest round: ` +
    `ours/cr9 ${fmtRatio(conservative.cr9)}, ours/cr8 ${fmtRatio(conservative.cr8)}`
  const text = [header, '', ...sections.flatMap((s) => [s, '']), verdict].join('\n')
  console.log(`\n${text}`)

  mkdirSync(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, `store-level-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  const report = {
    benchmark: 'store-level',
    startedAt: started.toISOString(),
    totalSeconds: msSince(t0) / 1000,
    options: args,
    contenders: LABEL,
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      arch: os.arch(),
      cpus: cpu.length,
      cpuModel: cpu[0]?.model.trim(),
      redis: redis.version,
      git: gitInfo(),
    },
    goal: {
      hotGetRatioVsConnectRedis: GOAL_HOT_GET_RATIO,
      met: goal >= GOAL_HOT_GET_RATIO,
      medianRatios: loop.ratios.get,
      ratiosVsPeersFastestRound: conservative,
    },
    passes,
    text,
  }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\nresults: ${file} (total ${report.totalSeconds.toFixed(1)} s)`)
}

if (process.argv[2] === '--proxy') {
  runProxy(Number(process.argv[3]), Number(process.argv[4]))
} else {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}

// 2. HTTP level: an Express 5 app per contender, each in its own process (bench/http-server.js), driven by
// autocannon from this process.
//
// Scenarios (the same routes for every contender):
//   read   read-mostly: 90% GET /read (reads the session), 10% POST /write (changes one key)
//   write  every request changes the session (POST /write)
//   new    every request is a new visitor (GET /visit, no cookie): a new ~1 KiB session is stored
// For `read` and `write`, every request carries the cookie of one of `sessions` logged-in users, picked
// uniformly at random (seeded). `connections` keep-alive connections, no pipelining.
//
// Contenders: express-session over MemoryStore, memorystore, session-file-store, TieredStore local and
// tieredSession() local; then, for each network (Redis on loopback, and Redis behind a proxy that adds
// `delayMs` each way), express-session over connect-redis 9 (node-redis), connect-redis 8 (ioredis),
// TieredStore shared, and tieredSession() shared. Each Redis-backed contender has its own key prefix (so
// its own invalidation channel). One redis-server and one proxy process serve them all. Only when named with
// --http-only: the at-rest variants (`-local+plain`, `-local+enc`, ...), and `es-memory+sqlite`, MemoryStore with
// a bare SQLite write behind every set (bench/lib/sqlite-floor-store.js: the floor of event-loop durability).
//
// Order: all servers start and log their users in first; then per scenario a warm-up run per contender
// (discarded), then `rounds` rounds in which the contenders are rotated (a b c | b c a | ...), each run
// `duration` s. A figure is the median over rounds; a req/s ratio (ours ÷ peer) is the median over rounds of
// the ratio within each round (pairedRatio), since the machine's speed drifts more between rounds than
// between the runs of one round. Server figures per run also split the server's CPU by thread (Linux:
// /proc/self/task/*/schedstat): the main thread's run time and its wait for a core, and all other threads.
// Latencies come from autocannon's per-response events
// (hrtime, float ms), percentiles computed here (nearest rank); req/s = responses / run time.
// Server CPU: process.cpuUsage() of the server child before/after each run → µs per request.
// Checks per run: non-2xx, errors, timeouts, 401s (a lost session) must be 0; the server's own counts must
// match autocannon's (within the requests in flight at the stop); the write share must be as configured.
// After the `new` scenario, fresh visitors are checked end to end (cookie issued, session read back).
//
// NB: the load generator, the server under test, redis-server and the proxy share the machine's cores.

import { fork } from 'node:child_process'
import http from 'node:http'
import { join } from 'node:path'
import autocannon from 'autocannon'
import { BENCH_DIR, cpuMsOf, startRedis, track } from './lib/procs.js'
import { startProxy } from './lib/proxy.js'
import { fmtInt, fmtMs, fmtNum, fmtRatio, table, verdict } from './lib/report.js'
import { rng } from './lib/sessions.js'
import { median, percentile, ratio } from './lib/stats.js'

const SERVER = join(BENCH_DIR, 'http-server.js')
const EXPECTED_ITEMS = 6
const LOGIN_CONCURRENCY = 20

const STORE_SHORT = {
  memory: 'MemoryStore',
  memorystore: 'memorystore',
  'memory+sqlite': 'MemoryStore + bare SQLite write',
  file: 'session-file-store',
  local: 'TieredStore local',
  shared: 'TieredStore shared',
  cr9: 'connect-redis 9 (node-redis)',
  cr8: 'connect-redis 8 (ioredis)',
  'local+plain': 'TieredStore local, hashIds off',
  'local+enc': 'TieredStore local, encrypted',
  'shared+plain': 'TieredStore shared, hashIds off',
  'shared+enc': 'TieredStore shared, encrypted',
}

export const SCENARIOS = {
  read: { label: 'read-mostly (90% read, 10% write)', writeRatio: 0.1 },
  // Latency without saturation: the same read-mostly mix at a fixed offered rate every contender sustains,
  // open loop (paced() below), latency from the scheduled send time. Before `write` and `new`, which grow
  // every store (and Redis) and would leave their state behind.
  paced: {
    label: 'read-mostly at a fixed 1,000 req/s, open loop (latency without saturation), Redis +1 ms each way',
    writeRatio: 0.1,
    rate: 1000,
    only: (c) => c.net === 'proxy',
  },
  write: { label: 'every request writes', writeRatio: 1 },
  // Last: it leaves tens of thousands of sessions in every store.
  new: { label: 'every request a new visitor', writeRatio: null },
}

/**
 * The contender list; `net` is null (no Redis), 'lo' (loopback) or 'proxy'. With `baseline` (a checkout with a
 * built dist/), es-local-base and ts-local-base run that checkout's server instead of ours, and so does
 * es-shared-base@lo (Redis on loopback) when named in --http-only.
 */
export function contenders({ proxy, baseline = null }) {
  const list = [
    { id: 'es-memory', middleware: 'es', store: 'memory', net: null },
    { id: 'es-memorystore', middleware: 'es', store: 'memorystore', net: null },
    { id: 'es-file', middleware: 'es', store: 'file', net: null },
    { id: 'es-local', middleware: 'es', store: 'local', net: null },
    { id: 'ts-local', middleware: 'ts', store: 'local', net: null },
  ]
  // The floor of event-loop SQLite durability (bench/lib/sqlite-floor-store.js): only when named with --http-only.
  list.push({ id: 'es-memory+sqlite', middleware: 'es', store: 'memory+sqlite', net: null, optional: true })
  for (const net of proxy ? ['lo', 'proxy'] : ['lo']) {
    for (const [mw, store] of [
      ['es', 'cr9'],
      ['es', 'cr8'],
      ['es', 'shared'],
      ['ts', 'shared'],
    ]) {
      list.push({ id: `${mw}-${store}@${net}`, middleware: mw, store, net })
    }
  }
  // The at-rest variants (hashed ids off, encryption on): run only when named with --http-only.
  for (const variant of ['plain', 'enc']) {
    for (const mw of ['es', 'ts']) {
      list.push({
        id: `${mw}-local+${variant}`,
        middleware: mw,
        store: `local+${variant}`,
        net: null,
        optional: true,
      })
      list.push({
        id: `${mw}-shared+${variant}@lo`,
        middleware: mw,
        store: `shared+${variant}`,
        net: 'lo',
        optional: true,
      })
    }
  }
  if (baseline !== null) {
    const server = join(baseline, 'bench', 'http-server.js')
    list.push({ id: 'es-local-base', middleware: 'es', store: 'local', net: null, server })
    list.push({ id: 'ts-local-base', middleware: 'ts', store: 'local', net: null, server })
    list.push({
      id: 'es-shared-base@lo',
      middleware: 'es',
      store: 'shared',
      net: 'lo',
      server,
      optional: true,
    })
  }
  for (const c of list) {
    const net = c.net === null ? '' : c.net === 'lo' ? ', Redis on loopback' : ', Redis +1 ms each way'
    c.label =
      c.middleware === 'ts'
        ? `tieredSession() ${c.store}${net}`
        : `express-session + ${STORE_SHORT[c.store]}${net}`
    c.mwLabel = c.middleware === 'ts' ? 'tieredSession()' : 'express-session'
    c.storeLabel = STORE_SHORT[c.store]
    c.netLabel = c.net === null ? '–' : c.net === 'lo' ? 'loopback' : '+1 ms each way'
    c.short = c.middleware === 'ts' ? `tieredSession() ${c.store}` : STORE_SHORT[c.store]
    if (c.server !== undefined) {
      c.label += ' (baseline)'
      c.short += ' (baseline)'
      c.storeLabel += ' (baseline)'
    }
  }
  return list
}

// ---------------------------------------------------------------------------------------------------------
// Children

function nextMessage(child, type) {
  return new Promise((resolve, reject) => {
    const onMessage = (msg) => {
      if (msg?.type !== type) return
      cleanup()
      resolve(msg)
    }
    const onExit = (code, signal) => {
      cleanup()
      reject(new Error(`server child ${child.pid} exited (${code ?? signal}) while waiting for '${type}'`))
    }
    const cleanup = () => {
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.on('exit', onExit)
  })
}

async function startServer(c, { tmpRoot, redisUrl, memorystoreMax, profileDir }) {
  const execArgv = []
  // NB: a directory per server and Node's own file names (pid and thread id in them): the server's worker
  // threads (the checkpoint worker) inherit --cpu-prof and would overwrite one fixed name. The main thread's
  // profile is the one whose name has thread id 0 (`CPU.<date>.<time>.<pid>.0.<seq>.cpuprofile`).
  if (profileDir)
    execArgv.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      join(profileDir, `http-${c.id.replace('@', '-')}-${Date.now()}`),
    )
  const arg = {
    id: c.id,
    store: c.store,
    middleware: c.middleware,
    tmpRoot,
    redisUrl,
    prefix: `bench:http:${c.id}:`,
    memorystoreMax,
  }
  const child = track(
    fork(c.server ?? SERVER, [JSON.stringify(arg)], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    }),
  )
  const { port } = await nextMessage(child, 'listening')
  return { child, port }
}

async function sample(server) {
  const reply = nextMessage(server.child, 'sample')
  server.child.send({ type: 'sample' })
  return reply
}

async function stopServer(server) {
  const { child } = server
  if (child.exitCode !== null || child.signalCode !== null) return null
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const closed = nextMessage(child, 'closed')
  child.send({ type: 'shutdown' })
  const msg = await closed
  await exited
  return msg
}

// ---------------------------------------------------------------------------------------------------------
// HTTP helpers

function request(agent, port, method, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () =>
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }),
      )
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

async function pool(n, limit, fn) {
  let next = 0
  const worker = async () => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
}

const cookieOf = (res) => {
  const setCookie = res.headers['set-cookie']
  return Array.isArray(setCookie) && setCookie.length === 1 ? setCookie[0].split(';')[0] : undefined
}

/** Logs `n` users in; returns their Cookie header values and the session sizes. */
async function login(c, server, n) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOGIN_CONCURRENCY })
  const cookies = new Array(n)
  const bytes = []
  await pool(n, LOGIN_CONCURRENCY, async (i) => {
    const res = await request(agent, server.port, 'POST', `/login?user=${i}`)
    const cookie = cookieOf(res)
    if (res.status !== 200 || cookie === undefined)
      throw new Error(`${c.id}: login ${i} failed: ${res.status} ${res.body}`)
    cookies[i] = cookie
    bytes.push(JSON.parse(res.body).bytes)
  })
  agent.destroy()
  return { cookies, bytes }
}

/** Reads every session back (200, 6 items); new visitors: issued a cookie that reads back. */
async function verify(server, cookies, visitors) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOGIN_CONCURRENCY })
  let failures = 0
  await pool(cookies.length, LOGIN_CONCURRENCY, async (i) => {
    const res = await request(agent, server.port, 'GET', '/read', { cookie: cookies[i] })
    if (res.status !== 200 || JSON.parse(res.body).items !== EXPECTED_ITEMS) failures++
  })
  let visitorFailures = 0
  await pool(visitors, LOGIN_CONCURRENCY, async () => {
    const res = await request(agent, server.port, 'GET', '/visit')
    const cookie = cookieOf(res)
    if (res.status !== 200 || cookie === undefined) {
      visitorFailures++
      return
    }
    const back = await request(agent, server.port, 'GET', '/read', { cookie })
    if (back.status !== 200 || JSON.parse(back.body).items !== EXPECTED_ITEMS) visitorFailures++
  })
  agent.destroy()
  return { failures, visitorFailures }
}

// ---------------------------------------------------------------------------------------------------------
// One run

/**
 * An open-loop load generator: request k is sent at t0 + k / rate (whatever the replies), on keep-alive
 * sockets (as many as are needed). Latency is taken from the *scheduled* send time, so a stall of the
 * server or of this process is not hidden (no coordinated omission). autocannon's own rate limit sends each
 * connection's share of a second in a burst at the start of the second, which measures queueing, not latency.
 */
function paced(port, setupRequest, rate, seconds, latencies, byPath) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })
  const total = Math.round(rate * seconds)
  const t0 = performance.now() + 5
  let sent = 0
  let done = 0
  let non2xx = 0
  let errors = 0
  return new Promise((resolve) => {
    const finish = () => {
      if (++done < total) return
      agent.destroy()
      resolve({
        duration: (performance.now() - t0) / 1000,
        completed: total - errors,
        non2xx,
        errors,
        timeouts: 0,
      })
    }
    const fire = (scheduled) => {
      const spec = setupRequest({ method: 'GET', path: '/', headers: {} })
      const req = http.request(
        { host: '127.0.0.1', port, method: spec.method, path: spec.path, headers: spec.headers, agent },
        (res) => {
          res.resume()
          res.on('end', () => {
            const ms = performance.now() - scheduled
            latencies.push(ms)
            byPath[spec.path] ??= []
            byPath[spec.path].push(ms)
            if (res.statusCode < 200 || res.statusCode >= 300) non2xx++
            finish()
          })
        },
      )
      req.on('error', () => {
        errors++
        finish()
      })
      req.end()
    }
    const tick = () => {
      const now = performance.now()
      while (sent < total && t0 + (sent * 1000) / rate <= now) fire(t0 + (sent++ * 1000) / rate)
      if (sent < total) setTimeout(tick, Math.max(0, t0 + (sent * 1000) / rate - performance.now()))
    }
    setTimeout(tick, 5)
  })
}

async function drive(c, server, cookies, scenario, seconds, seed, connections, side = {}) {
  const random = rng(seed)
  const latencies = []
  const writeRatio = SCENARIOS[scenario].writeRatio
  const before = await sample(server)
  const parentCpuBefore = process.cpuUsage()
  const redisCpuBefore = side.redisPid ? cpuMsOf(side.redisPid) : Number.NaN
  const proxyCpuBefore = side.proxyPid ? cpuMsOf(side.proxyPid) : Number.NaN
  const setupRequest =
    scenario === 'new'
      ? (req) => {
          req.method = 'GET'
          req.path = '/visit'
          delete req.headers.cookie
          return req
        }
      : (req) => {
          req.headers.cookie = cookies[Math.floor(random() * cookies.length)]
          if (writeRatio >= 1 || random() < writeRatio) {
            req.method = 'POST'
            req.path = '/write'
            req.headers['content-length'] = '0'
          } else {
            req.method = 'GET'
            req.path = '/read'
            delete req.headers['content-length']
          }
          return req
        }
  const rate = SCENARIOS[scenario].rate
  const byPath = {}
  let result
  if (rate === undefined) {
    const instance = autocannon({
      url: `http://127.0.0.1:${server.port}`,
      connections,
      pipelining: 1,
      duration: seconds,
      timeout: 10,
      requests: [{ setupRequest }],
    })
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime))
    const r = await instance
    result = {
      duration: r.duration,
      completed: r.requests.total,
      non2xx: r.non2xx,
      errors: r.errors,
      timeouts: r.timeouts,
    }
  } else {
    result = await paced(server.port, setupRequest, rate, seconds, latencies, byPath)
  }
  const parentCpu = process.cpuUsage(parentCpuBefore)
  const redisCpuMs = side.redisPid ? cpuMsOf(side.redisPid) - redisCpuBefore : Number.NaN
  const proxyCpuMs = side.proxyPid ? cpuMsOf(side.proxyPid) - proxyCpuBefore : Number.NaN
  const after = await sample(server)
  const sorted = Float64Array.from(latencies).sort()
  const d = (k) => after.counts[k] - before.counts[k]
  const handled = d('read') + d('write') + d('visit')
  const serverCpuUs = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system)
  const wallS = result.duration
  const run = {
    contender: c.id,
    scenario,
    seconds: wallS,
    completed: result.completed,
    reqPerSec: result.completed / wallS,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      p999: percentile(sorted, 99.9),
      max: sorted.length > 0 ? sorted[sorted.length - 1] : Number.NaN,
      // Paced runs only: per route (read vs write), to see where the tail comes from.
      byPath: Object.fromEntries(
        Object.entries(byPath).map(([path, list]) => {
          const sortedPath = Float64Array.from(list).sort()
          return [path, { n: list.length, p50: percentile(sortedPath, 50), p99: percentile(sortedPath, 99) }]
        }),
      ),
    },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    server: {
      handled,
      writes: d('write'),
      visits: d('visit'),
      unauthorized: d('unauthorized'),
      errors: after.errors - before.errors,
      lastError: after.lastError,
      cpuUsPerRequest: handled > 0 ? serverCpuUs / handled : Number.NaN,
      // The same split into user and kernel time (all threads): the kernel's share is the sockets' work.
      systemUsPerRequest: handled > 0 ? (after.cpu.system - before.cpu.system) / handled : Number.NaN,
      cpuShareOfOneCore: serverCpuUs / 1e6 / wallS,
      heapUsedMiB: after.heapUsed / 1024 / 1024,
      // µs per request: the main thread's run time and its wait for a core; the other threads' run time.
      threads:
        before.threads && after.threads && handled > 0
          ? {
              mainRunUs: (after.threads.mainRunNs - before.threads.mainRunNs) / 1000 / handled,
              mainWaitUs: (after.threads.mainWaitNs - before.threads.mainWaitNs) / 1000 / handled,
              otherRunUs: (after.threads.otherRunNs - before.threads.otherRunNs) / 1000 / handled,
            }
          : null,
      rssMiB: after.rss / 1024 / 1024,
    },
    loadGenCpuShareOfOneCore: (parentCpu.user + parentCpu.system) / 1e6 / wallS,
    redisCpuUsPerRequest: handled > 0 ? (redisCpuMs * 1000) / handled : Number.NaN,
    proxyCpuUsPerRequest: handled > 0 ? (proxyCpuMs * 1000) / handled : Number.NaN,
  }
  run.problems = problemsOf(run, connections)
  return run
}

function problemsOf(run, connections) {
  const problems = []
  if (run.non2xx !== 0) problems.push(`${run.non2xx} non-2xx`)
  if (run.errors !== 0) problems.push(`${run.errors} errors`)
  if (run.timeouts !== 0) problems.push(`${run.timeouts} timeouts`)
  if (run.server.unauthorized !== 0) problems.push(`${run.server.unauthorized} requests without a session`)
  if (run.server.errors !== 0) problems.push(`${run.server.errors} server errors (${run.server.lastError})`)
  const gap = run.server.handled - run.completed
  if (gap < 0 || gap > connections)
    problems.push(`server handled ${run.server.handled}, client saw ${run.completed}`)
  const wr = SCENARIOS[run.scenario].writeRatio
  if (wr !== null && run.server.handled > 200) {
    const share = run.server.writes / run.server.handled
    if (Math.abs(share - wr) > 0.03) problems.push(`write share ${(share * 100).toFixed(1)}%`)
  }
  return problems
}

// ---------------------------------------------------------------------------------------------------------
// The section

export async function runHttp(cfg, ctx) {
  const list = contenders({ proxy: cfg.proxy !== null, baseline: cfg.baseline ?? null }).filter((c) =>
    cfg.only ? cfg.only.includes(c.id) : !c.optional,
  )
  const needsRedis = list.some((c) => c.net !== null)
  const redis = needsRedis ? await startRedis() : null
  const proxy = needsRedis && cfg.proxy ? await startProxy(redis.port, cfg.proxy.delayMs) : null
  const servers = new Map()
  const sideOf = (c) => ({
    redisPid: c.net === null ? undefined : redis.proc.pid,
    proxyPid: c.net === 'proxy' ? proxy.pid : undefined,
  })
  const users = {}
  const runs = []
  const warmups = []
  const verifyResults = {}
  const closed = {}
  try {
    if (redis)
      ctx.log(`  [http] redis-server ${redis.version} on 127.0.0.1:${redis.port} (pid ${redis.proc.pid})`)
    const started = await Promise.all(
      list.map((c) =>
        startServer(c, {
          tmpRoot: ctx.tmpRoot,
          redisUrl: c.net === 'lo' ? redis.url : c.net === 'proxy' ? proxy.url : undefined,
          memorystoreMax: cfg.memorystoreMax,
          profileDir: cfg.profile?.split(',').includes(c.id) ? ctx.resultsDir : undefined,
        }),
      ),
    )
    for (const [k, c] of list.entries()) servers.set(c.id, started[k])
    for (const c of list) {
      users[c.id] = await login(c, servers.get(c.id), cfg.sessions)
    }
    const bytes = Object.values(users).flatMap((u) => u.bytes)
    ctx.log(
      `  [http] ${list.length} servers up, ${fmtInt(cfg.sessions)} users each logged in (session JSON ${Math.min(...bytes)}-${Math.max(...bytes)} B)`,
    )
    for (const [n, scenario] of cfg.scenarios.entries()) {
      const here = list.filter(SCENARIOS[scenario].only ?? (() => true))
      if (n === 0 || cfg.warmupEveryScenario) {
        for (const c of here) {
          const w = await drive(
            c,
            servers.get(c.id),
            users[c.id].cookies,
            scenario,
            cfg.warmup,
            0xfeed,
            cfg.connections,
            sideOf(c),
          )
          warmups.push(w)
          if (w.problems.length > 0) ctx.log(`  [http ${scenario}] warm-up ${c.id}: ${w.problems.join('; ')}`)
        }
      }
      for (let round = 0; round < cfg.rounds; round++) {
        for (let k = 0; k < here.length; k++) {
          const c = here[(round + k) % here.length]
          const run = await drive(
            c,
            servers.get(c.id),
            users[c.id].cookies,
            scenario,
            cfg.duration,
            1000 + round,
            cfg.connections,
            sideOf(c),
          )
          run.round = round + 1
          runs.push(run)
          ctx.log(
            `  [http ${scenario}] round ${round + 1}/${cfg.rounds} ${c.id.padEnd(20)} ${fmtInt(run.reqPerSec).padStart(6)} req/s ` +
              `p50 ${fmtMs(run.latencyMs.p50)} p99 ${fmtMs(run.latencyMs.p99)} ms, server ${fmtInt(run.server.cpuUsPerRequest)} µs/req ` +
              `(kernel ${fmtInt(run.server.systemUsPerRequest)}) ` +
              `(${fmtInt(run.server.cpuShareOfOneCore * 100)}% of a core; load generator ${fmtInt(run.loadGenCpuShareOfOneCore * 100)}%` +
              (run.server.threads
                ? `; main thread ${fmtInt(run.server.threads.mainRunUs)} + waits ${fmtInt(run.server.threads.mainWaitUs)}, other threads ${fmtInt(run.server.threads.otherRunUs)} µs/req`
                : '') +
              (Number.isFinite(run.redisCpuUsPerRequest)
                ? `; Redis ${fmtInt(run.redisCpuUsPerRequest)} µs/req`
                : '') +
              (Number.isFinite(run.proxyCpuUsPerRequest)
                ? `; proxy ${fmtInt(run.proxyCpuUsPerRequest)} µs/req`
                : '') +
              ')' +
              (Object.keys(run.latencyMs.byPath).length > 0
                ? ` [${Object.entries(run.latencyMs.byPath)
                    .map(([path, b]) => `${path} p99 ${fmtMs(b.p99)}`)
                    .join(', ')}]`
                : '') +
              (run.problems.length > 0 ? `  PROBLEMS: ${run.problems.join('; ')}` : ''),
          )
        }
      }
    }
    for (const c of list)
      verifyResults[c.id] = await verify(servers.get(c.id), users[c.id].cookies, cfg.verifyVisitors)
    for (const c of list) closed[c.id] = await stopServer(servers.get(c.id))
  } finally {
    for (const s of servers.values())
      if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill('SIGKILL')
    const proxyStats = proxy ? await proxy.stats().catch(() => null) : null
    if (proxy) await proxy.stop()
    if (redis) await redis.stop()
    ctx.proxyStats = proxyStats
  }

  const summary = {}
  for (const scenario of cfg.scenarios) {
    summary[scenario] = {}
    for (const c of list.filter(SCENARIOS[scenario].only ?? (() => true))) {
      const mine = runs.filter((r) => r.contender === c.id && r.scenario === scenario)
      summary[scenario][c.id] = {
        reqPerSec: median(mine.map((r) => r.reqPerSec)),
        reqPerSecMin: Math.min(...mine.map((r) => r.reqPerSec)),
        reqPerSecMax: Math.max(...mine.map((r) => r.reqPerSec)),
        p50Ms: median(mine.map((r) => r.latencyMs.p50)),
        p99Ms: median(mine.map((r) => r.latencyMs.p99)),
        p999Ms: median(mine.map((r) => r.latencyMs.p999)),
        byPath: Object.fromEntries(
          Object.keys(mine[0]?.latencyMs.byPath ?? {}).map((path) => [
            path,
            {
              p50Ms: median(mine.map((r) => r.latencyMs.byPath[path]?.p50)),
              p99Ms: median(mine.map((r) => r.latencyMs.byPath[path]?.p99)),
            },
          ]),
        ),
        serverCpuUsPerRequest: median(mine.map((r) => r.server.cpuUsPerRequest)),
        redisCpuUsPerRequest: median(mine.map((r) => r.redisCpuUsPerRequest)),
        proxyCpuUsPerRequest: median(mine.map((r) => r.proxyCpuUsPerRequest)),
        loadGenCpuShare: median(mine.map((r) => r.loadGenCpuShareOfOneCore)),
        problems: mine.flatMap((r) => r.problems.map((p) => `round ${r.round}: ${p}`)),
      }
    }
  }
  const goals = httpGoals(summary, runs)
  return {
    cfg,
    contenders: list,
    sessionBytes: {
      min: Math.min(...Object.values(users).flatMap((u) => u.bytes)),
      max: Math.max(...Object.values(users).flatMap((u) => u.bytes)),
    },
    summary,
    goals,
    verify: verifyResults,
    storeStats: Object.fromEntries(Object.entries(closed).map(([id, m]) => [id, m?.stats ?? null])),
    serverErrors: Object.fromEntries(Object.entries(closed).map(([id, m]) => [id, m?.errors ?? []])),
    proxy: ctx.proxyStats,
    warmups,
    runs,
  }
}

/**
 * ours ÷ peer as the median over rounds of the ratio within each round (`pick` of a run, req/s by default).
 * The two runs of a round are minutes apart at most while the machine's speed drifts over a run (the same
 * contender's main thread took 220 to 520 µs per request in one run of 12 rounds), so a ratio of two runs of
 * one round is the better-paired estimate; the ratio of the two medians is shown beside it in the tables.
 */
export function pairedRatio(runs, scenario, ours, peer, pick = (r) => r.reqPerSec) {
  const byRound = new Map()
  for (const r of runs) {
    if (r.scenario !== scenario || (r.contender !== ours && r.contender !== peer)) continue
    const entry = byRound.get(r.round) ?? {}
    entry[r.contender === ours ? 'ours' : 'peer'] = pick(r)
    byRound.set(r.round, entry)
  }
  return median([...byRound.values()].map((e) => ratio(e.ours, e.peer)))
}

/** The goals of the issue, from the paired ratios (req/s) and the medians (p99). */
function httpGoals(summary, runs) {
  const get = (scenario, id) => summary[scenario]?.[id]
  const rps = (scenario, ours, peer) => pairedRatio(runs, scenario, ours, peer)
  const out = []
  const read = (id) => get('read', id)
  if (read('ts-local') && read('es-memory'))
    out.push({
      goal: 'read-mostly, local: tieredSession() ≥ 0.95× express-session + MemoryStore (req/s)',
      value: rps('read', 'ts-local', 'es-memory'),
      target: 0.95,
      met: rps('read', 'ts-local', 'es-memory') >= 0.95,
    })
  if (read('ts-local') && read('es-file'))
    out.push({
      goal: 'read-mostly, local: tieredSession() ≥ 3× express-session + session-file-store (req/s)',
      value: rps('read', 'ts-local', 'es-file'),
      target: 3,
      met: rps('read', 'ts-local', 'es-file') >= 3,
    })
  if (read('ts-shared@proxy') && read('es-cr9@proxy')) {
    const v = rps('read', 'ts-shared@proxy', 'es-cr9@proxy')
    const p99 = ratio(read('ts-shared@proxy').p99Ms, read('es-cr9@proxy').p99Ms)
    out.push({
      goal: 'read-mostly, shared, +1 ms proxy: tieredSession() ≥ 2× connect-redis 9 (req/s)',
      value: v,
      target: 2,
      met: v >= 2,
    })
    out.push({
      goal: 'read-mostly, shared, +1 ms proxy: tieredSession() p99 ≤ 0.5× connect-redis 9',
      value: p99,
      target: 0.5,
      met: p99 <= 0.5,
      lowerIsBetter: true,
    })
  }
  const paced = (id) => get('paced', id)
  if (paced('ts-shared@proxy') && paced('es-cr9@proxy')) {
    const p99 = ratio(paced('ts-shared@proxy').p99Ms, paced('es-cr9@proxy').p99Ms)
    out.push({
      goal: '(same p99, at a fixed 1,000 req/s instead of saturation)',
      value: p99,
      target: 0.5,
      met: p99 <= 0.5,
      lowerIsBetter: true,
    })
  }
  const write = (id) => get('write', id)
  if (write('ts-shared@lo') && write('es-cr9@lo')) {
    const v = rps('write', 'ts-shared@lo', 'es-cr9@lo')
    out.push({
      goal: 'every request writes, shared, loopback: tieredSession() ≥ 1.0× connect-redis 9 (req/s)',
      value: v,
      target: 1,
      met: v >= 1,
    })
  }
  // The drop-in door: express-session + TieredStore against the store it replaces.
  const dropIn = (scenario, ours, peer, target, label) => {
    const a = get(scenario, ours)
    const b = get(scenario, peer)
    if (!a || !b) return
    const v = rps(scenario, ours, peer)
    out.push({ goal: label, value: v, target, met: v >= target })
  }
  if (read('ts-local') && read('es-memory')) {
    const v = rps('read', 'ts-local', 'es-memory')
    out.push({
      goal: 'read-mostly, local: tieredSession() keeps its lead, ≥ 1.3× express-session + MemoryStore (req/s)',
      value: v,
      target: 1.3,
      met: v >= 1.3,
    })
  }
  const SCENARIO_LABEL = {
    read: 'read-mostly',
    write: 'every request writes',
    new: 'every request a new visitor',
  }
  for (const [scenario, target] of [
    ['read', 1],
    ['write', 0.95],
    ['new', 0.95],
  ]) {
    dropIn(
      scenario,
      'es-local',
      'es-memory',
      target,
      `${SCENARIO_LABEL[scenario]}, local: express-session + TieredStore ≥ ${target}× express-session + MemoryStore (req/s)`,
    )
  }
  for (const scenario of ['read', 'write', 'new']) {
    dropIn(
      scenario,
      'es-shared@lo',
      'es-cr9@lo',
      1,
      `${SCENARIO_LABEL[scenario]}, shared, loopback: express-session + TieredStore ≥ 1× connect-redis 9 (req/s)`,
    )
  }
  dropIn(
    'read',
    'es-shared@proxy',
    'es-cr9@proxy',
    2.5,
    'read-mostly, shared, +1 ms proxy: express-session + TieredStore ≥ 2.5× connect-redis 9 (req/s)',
  )
  // At rest (issue 16), when the variants ran: encryption against none, hashed ids against plain ones.
  for (const [mw, mwLabel] of [
    ['es', 'express-session + TieredStore'],
    ['ts', 'tieredSession()'],
  ]) {
    for (const [mode, suffix] of [
      ['local', ''],
      ['shared', '@lo'],
    ]) {
      const base = `${mw}-${mode}${suffix}`
      for (const [scenario, target] of [
        ['read', 0.95],
        ['write', 0.9],
      ])
        dropIn(
          scenario,
          `${mw}-${mode}+enc${suffix}`,
          base,
          target,
          `${SCENARIO_LABEL[scenario]}, ${mode}: ${mwLabel} encrypted ≥ ${target}× unencrypted (req/s)`,
        )
      for (const scenario of ['read', 'write', 'new'])
        dropIn(
          scenario,
          base,
          `${mw}-${mode}+plain${suffix}`,
          0.98,
          `${SCENARIO_LABEL[scenario]}, ${mode}: ${mwLabel} with hashed ids ≥ 0.98× plain ids (req/s)`,
        )
    }
  }
  return out
}

// ---------------------------------------------------------------------------------------------------------
// Report

const OURS = new Set([
  'es-local',
  'ts-local',
  'es-shared@lo',
  'ts-shared@lo',
  'es-shared@proxy',
  'ts-shared@proxy',
])

function ratioPairs(list) {
  const ids = new Set(list.map((c) => c.id))
  const pairs = []
  for (const ours of ['ts-local', 'es-local'])
    for (const peer of ['es-memory', 'es-memorystore', 'es-file', 'es-memory+sqlite'])
      if (ids.has(ours) && ids.has(peer)) pairs.push([ours, peer])
  if (ids.has('es-memory+sqlite') && ids.has('es-memory')) pairs.push(['es-memory+sqlite', 'es-memory'])
  for (const net of ['lo', 'proxy'])
    for (const ours of [`ts-shared@${net}`, `es-shared@${net}`])
      for (const peer of [`es-cr9@${net}`, `es-cr8@${net}`])
        if (ids.has(ours) && ids.has(peer)) pairs.push([ours, peer])
  return pairs
}

export function httpMarkdown(h) {
  const out = [
    `${h.cfg.connections} connections, ${fmtInt(h.cfg.sessions)} logged-in users per contender (session JSON ${h.sessionBytes.min}-${h.sessionBytes.max} B), ` +
      `median of ${h.cfg.rounds} rounds of ${h.cfg.duration} s per contender and scenario (contenders rotated each round; ` +
      'ratios "paired": the median over rounds of the ratio within a round, which the goals use; ' +
      `${h.cfg.warmup} s warm-up each). Our stores: memory.maxBytes 64 MiB.`,
    '',
  ]
  for (const scenario of h.cfg.scenarios) {
    const s = h.summary[scenario]
    out.push(`**${SCENARIOS[scenario].label}**`)
    out.push('')
    const rows = [
      [
        'middleware',
        'store',
        'Redis',
        'req/s',
        'min–max',
        'p50 ms',
        'p99 ms',
        'server CPU µs/req',
        'Redis CPU µs/req',
        'checks',
      ],
    ]
    const here = h.contenders.filter((c) => c.id in s)
    for (const c of here) {
      const r = s[c.id]
      const bold = (t) => (OURS.has(c.id) ? `**${t}**` : t)
      rows.push([
        bold(c.mwLabel),
        bold(c.storeLabel),
        c.netLabel,
        fmtInt(r.reqPerSec),
        `${fmtInt(r.reqPerSecMin)}–${fmtInt(r.reqPerSecMax)}`,
        fmtMs(r.p50Ms),
        fmtMs(r.p99Ms),
        fmtInt(r.serverCpuUsPerRequest),
        Number.isFinite(r.redisCpuUsPerRequest) ? fmtInt(r.redisCpuUsPerRequest) : '–',
        r.problems.length === 0 ? 'ok' : `${r.problems.length} problem(s)`,
      ])
    }
    out.push(table(rows, 'lllrrrrrrrl'))
    out.push('')
    if (SCENARIOS[scenario].rate !== undefined) {
      const routes = here.map((c) => {
        const b = s[c.id].byPath
        const part = (path) => (b[path] ? `${path} ${fmtMs(b[path].p50Ms)} / ${fmtMs(b[path].p99Ms)}` : '')
        return `${c.short}: ${part('/read')}; ${part('/write')}`
      })
      out.push(`Per route, p50 / p99 ms: ${routes.join(' — ')}.`)
      out.push('')
    }
    const ratioRows = [
      [
        'ours / peer',
        'Redis',
        'req/s, paired (> 1 better)',
        'req/s, medians',
        'p99 (< 1 better)',
        'server CPU/req (< 1 better)',
      ],
    ]
    const byId = Object.fromEntries(here.map((c) => [c.id, c]))
    for (const [ours, peer] of ratioPairs(here)) {
      ratioRows.push([
        `${byId[ours].short} / ${byId[peer].short}`,
        byId[ours].netLabel,
        fmtRatio(pairedRatio(h.runs, scenario, ours, peer)),
        fmtRatio(ratio(s[ours].reqPerSec, s[peer].reqPerSec)),
        fmtRatio(ratio(s[ours].p99Ms, s[peer].p99Ms)),
        fmtRatio(ratio(s[ours].serverCpuUsPerRequest, s[peer].serverCpuUsPerRequest)),
      ])
    }
    out.push(table(ratioRows, 'llrrrr'))
    out.push('')
  }
  const problems = []
  for (const scenario of h.cfg.scenarios)
    for (const [id, r] of Object.entries(h.summary[scenario]))
      for (const p of r.problems) problems.push(`${scenario} ${id} ${p}`)
  // memorystore bounds a session *count* and evicts the least recently used silently: losing the logged-in
  // users once the new-visitor scenario has pushed more than `max` sessions through it is what it does.
  const evicts = (id) => id === 'es-memorystore'
  const verifyFailures = Object.entries(h.verify).filter(
    ([id, v]) => !evicts(id) && v.failures + v.visitorFailures > 0,
  )
  out.push(
    problems.length === 0 && verifyFailures.length === 0
      ? `- Checks: every run 0 non-2xx, 0 errors/timeouts, 0 requests without their session, server counts match; after all the runs every contender but memorystore still had every logged-in user's session intact, and ${h.cfg.verifyVisitors} fresh visitors per contender got a cookie that reads back.`
      : `- **CHECKS FAILED**: ${[...problems, ...verifyFailures.map(([id, v]) => `${id}: ${v.failures} users / ${v.visitorFailures} visitors failed read-back`)].join('; ')}`,
  )
  for (const [id, v] of Object.entries(h.verify)) {
    if (!evicts(id)) continue
    out.push(
      v.failures > 0
        ? `- memorystore (\`max\` ${fmtInt(h.cfg.memorystoreMax)} sessions ≈ 64 MiB): after all the runs ${fmtInt(v.failures)} of ${fmtInt(h.cfg.sessions)} logged-in users had lost their session — the new-visitor scenario pushed more than \`max\` sessions through it and it evicted them silently.`
        : `- memorystore (\`max\` ${fmtInt(h.cfg.memorystoreMax)} sessions ≈ 64 MiB) kept every logged-in user: fewer than \`max\` sessions went through it in this run.`,
    )
  }
  if (h.proxy) out.push(`- Proxy: ${h.proxy.outOfOrder} chunks out of order of ${fmtInt(h.proxy.chunks)}.`)
  out.push(
    '- express-session calls `store.touch()` on every request that does not change the session (resave false); tieredSession() writes an unchanged session only once half its lifetime has passed (touchAfter 0.5), and merges only the changed keys.',
  )
  return out.join('\n')
}

export function httpGoalRows(h) {
  return h.goals
    .filter((g) => g.met !== null)
    .map((g) => [
      g.goal,
      fmtRatio(g.value),
      `${g.lowerIsBetter ? '≤' : '≥'} ${fmtNum(g.target, 2)}×`,
      verdict(g.met),
    ])
}

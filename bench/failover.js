// Redis failover under HTTP load: what a SIGKILL of the Redis master costs an app on tieredSession() in shared
// mode, with and without `redis.waitForReplicas`.
//
//   npm run build && node bench/failover.js [--topologies sentinel,cluster] [--requests N] [--rate R]
//
// Per topology (Sentinel: 1 master, 1 replica, 3 sentinels, quorum 2, down-after 500 ms, failover-timeout
// 1000 ms; Cluster: 3 masters with 1 replica each, cluster-node-timeout 1000 ms) and per waitForReplicas (0, 1),
// on a fresh set of redis-server processes:
//   1. Write latency before any failure: an app on a waitForReplicas 0 store and one on a waitForReplicas 1
//      store (same Redis, same run), driven in alternating rounds by autocannon (10 connections, every request
//      changes the session); median and p99 of each, and their ratio 1 ÷ 0.
//   2. Failover under load: `--requests` writes at `--rate` req/s over 10 connections to the app of this
//      row's waitForReplicas; a sixth of the way in, the master (for Cluster: one of the masters) is SIGKILLed.
//      The failover window runs from the kill until the sentinels (every one) report the replica as master, or
//      every live cluster node serves the killed master's slots from a live master with cluster_state:ok,
//      polled every 20 ms. With waitForReplicas 1 the killed master is then restarted as a replica of the new
//      one (so writes can be confirmed again; its rejoin time is shown apart).
//   3. Afterwards: the outbox replayed, then every acknowledged write read back by a fresh store instance.
// Columns: failed requests (non-2xx + errors), outbox writes (sum of the rises of the outbox depth seen at each
// response, ≈ writes that went to the outbox), lost writes (acknowledged, not found afterwards).
//
// Every process is started here on a free loopback port (never 6379) and killed by PID; files live in one
// mkdtemp() directory, deleted at the end. Output: markdown on stdout, progress on stderr.

import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import express from 'express'
import { Cluster, Redis } from 'ioredis'
import { TieredStore, tieredSession } from 'tiered-session'
import { freePort, killAll, pingOnce, redisVersion, track } from './lib/procs.js'
import { fmtInt, fmtMs, fmtRatio, table } from './lib/report.js'
import { median, percentile } from './lib/stats.js'

const { values: args } = parseArgs({
  options: {
    topologies: { type: 'string', default: 'sentinel,cluster' },
    requests: { type: 'string', default: '6000' },
    rate: { type: 'string', default: '600' },
    'latency-rounds': { type: 'string', default: '4' },
    'latency-requests': { type: 'string', default: '1500' },
  },
})
const TOPOLOGIES = args.topologies.split(',')
for (const t of TOPOLOGIES)
  if (!['sentinel', 'cluster'].includes(t)) throw new Error(`--topologies: unknown ${t}`)
const REQUESTS = Number(args.requests)
const RATE = Number(args.rate)
const LATENCY_ROUNDS = Number(args['latency-rounds'])
const LATENCY_REQUESTS = Number(args['latency-requests'])
const COMMAND_TIMEOUT = 300
const SESSIONS = 40
const CONNECTIONS = 10
const POLL_MS = 20
const DEADLINE_MS = 20_000

const WORK = mkdtempSync(join(os.tmpdir(), 'tiered-session-failover-'))
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`)
const tick = () => new Promise((resolve) => setTimeout(resolve, POLL_MS))

async function poll(what, check) {
  const deadline = Date.now() + DEADLINE_MS
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what}`)
    await tick()
  }
}

// ---------------------------------------------------------------------------------------------------------
// Admin commands: one short-lived connection each (the servers come and go under us).

async function call(port, ...command) {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    connectTimeout: 500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  client.on('error', () => undefined)
  try {
    await client.connect()
    return await client.call(...command)
  } finally {
    client.disconnect()
  }
}

function infoFields(text) {
  const out = new Map()
  for (const line of String(text).split('\r\n')) {
    const i = line.indexOf(':')
    if (i > 0) out.set(line.slice(0, i), line.slice(i + 1))
  }
  return out
}

async function replicaOnline(masterPort, replicaPort) {
  const info = infoFields(await call(masterPort, 'INFO', 'replication'))
  return [...info].some(
    ([k, v]) => /^slave\d+$/.test(k) && v.includes(`port=${replicaPort},`) && v.includes('state=online'),
  )
}

// ---------------------------------------------------------------------------------------------------------
// redis-server processes

async function startServer(extraArgs = []) {
  let port = await freePort()
  while (port === 6379) port = await freePort()
  const dir = mkdtempSync(join(WORK, 'redis-'))
  // biome-ignore format: one option per line
  const argv = [
    '--port', String(port),
    '--bind', '127.0.0.1',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--protected-mode', 'no',
    '--repl-diskless-sync-delay', '0',
    ...extraArgs,
  ]
  const server = {
    port,
    proc: null,
    async start() {
      const proc = track(spawn('redis-server', argv, { stdio: 'ignore' }))
      server.proc = proc
      await poll(`redis-server on ${port}`, () => pingOnce(port))
    },
    async kill9() {
      const { proc } = server
      if (proc.exitCode !== null || proc.signalCode !== null) return
      const exited = once(proc, 'exit')
      process.kill(proc.pid, 'SIGKILL')
      await exited
    },
    restart() {
      return server.start()
    },
  }
  await server.start()
  return server
}

async function startSentinel(masterPort, name) {
  const port = await freePort()
  const dir = mkdtempSync(join(WORK, 'sentinel-'))
  const conf = join(dir, 'sentinel.conf')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${name} 500`,
      `sentinel failover-timeout ${name} 1000`,
      '',
    ].join('\n'),
  )
  const proc = track(spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'ignore'] }))
  let output = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sentinel did not start:\n${output}`)), DEADLINE_MS)
    proc.stdout.on('data', (chunk) => {
      output += chunk
      if (output.includes('+monitor master')) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  proc.stdout.resume()
  return { port, proc }
}

// ---------------------------------------------------------------------------------------------------------
// Topologies: each returns { client(), victim, awaitPromotion() -> port, rejoin() }

async function sentinelTopology() {
  const name = 'bench-master'
  const master = await startServer()
  const replica = await startServer(['--replicaof', '127.0.0.1', String(master.port)])
  await poll('the replica to sync', () => replicaOnline(master.port, replica.port))
  const sentinels = await Promise.all([1, 2, 3].map(() => startSentinel(master.port, name)))
  for (const s of sentinels) {
    await poll('the sentinels to discover each other', async () => {
      const flat = await call(s.port, 'SENTINEL', 'MASTER', name)
      const view = new Map()
      for (let i = 0; i + 1 < flat.length; i += 2) view.set(flat[i], flat[i + 1])
      return view.get('num-other-sentinels') === '2' && view.get('num-slaves') === '1'
    })
  }
  const reported = async (s) => Number((await call(s.port, 'SENTINEL', 'get-master-addr-by-name', name))[1])
  return {
    victim: master,
    client: () =>
      new Redis({
        sentinels: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
        name,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        connectTimeout: 1000,
        retryStrategy: () => 50,
        sentinelRetryStrategy: () => 50,
      }),
    awaitPromotion: () =>
      poll('the sentinels to promote the replica', async () => {
        const ports = await Promise.all(sentinels.map(reported))
        if (!ports.every((p) => p === replica.port)) return undefined
        const role = await call(replica.port, 'ROLE')
        return role[0] === 'master' ? replica.port : undefined
      }),
    async rejoin(newMasterPort) {
      // NB: Sentinel would reconfigure the restarted old master itself, but only after 8 s; do it at once.
      await master.restart()
      await call(master.port, 'REPLICAOF', '127.0.0.1', String(newMasterPort))
      await poll('the old master to rejoin as a replica', () => replicaOnline(newMasterPort, master.port))
    },
  }
}

function parseNodes(text) {
  return String(text)
    .split('\n')
    .map((line) => line.trim().split(' '))
    .filter((f) => f.length >= 8)
    .map(([id, address, flags, master, , , , , ...slots]) => ({
      id,
      port: Number(/:(\d+)/.exec(address)?.[1]),
      flags: flags.split(','),
      master,
      slots: slots.filter((s) => !s.startsWith('[')).map((s) => s.split('-').map(Number)),
    }))
}

async function clusterTopology() {
  const servers = []
  for (let i = 0; i < 6; i++) {
    const bus = await freePort()
    // biome-ignore format: one option per line
    servers.push(await startServer([
      '--cluster-enabled', 'yes',
      '--cluster-config-file', 'nodes.conf',
      '--cluster-node-timeout', '1000',
      '--cluster-port', String(bus),
    ]))
  }
  await new Promise((resolve, reject) =>
    execFile(
      'redis-cli',
      [
        '--cluster',
        'create',
        ...servers.map((s) => `127.0.0.1:${s.port}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { timeout: 30_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`${error.message}\n${stdout}${stderr}`)) : resolve(),
    ),
  )
  for (const s of servers) {
    await poll('the cluster to agree', async () => {
      const info = infoFields(await call(s.port, 'CLUSTER', 'INFO'))
      if (info.get('cluster_state') !== 'ok' || info.get('cluster_known_nodes') !== '6') return false
      const repl = infoFields(await call(s.port, 'INFO', 'replication'))
      return repl.get('role') === 'master' || repl.get('master_link_status') === 'up'
    })
  }
  const nodes = parseNodes(await call(servers[0].port, 'CLUSTER', 'NODES'))
  const victimNode = nodes.find((n) => n.flags.includes('master') && n.slots.length > 0)
  const victim = servers.find((s) => s.port === victimNode.port)
  const covers = (ranges, slot) => ranges.some(([a, b = a]) => slot >= a && slot <= b)
  return {
    victim,
    client: () =>
      new Cluster(
        servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
        {
          enableOfflineQueue: false,
          retryDelayOnFailover: 50,
          retryDelayOnClusterDown: 50,
          retryDelayOnTryAgain: 50,
          slotsRefreshTimeout: 500,
          slotsRefreshInterval: 1000,
          clusterRetryStrategy: () => 100,
          redisOptions: { connectTimeout: 500, maxRetriesPerRequest: 0 },
        },
      ),
    awaitPromotion: () =>
      poll("a replica to take over the killed master's slots", async () => {
        const live = servers.filter((s) => s !== victim)
        const views = await Promise.all(live.map((s) => call(s.port, 'CLUSTER', 'NODES')))
        const infos = await Promise.all(live.map((s) => call(s.port, 'CLUSTER', 'INFO')))
        if (!infos.every((i) => infoFields(i).get('cluster_state') === 'ok')) return undefined
        const owners = views.map((view) => {
          const owner = parseNodes(view).find(
            (n) =>
              n.id !== victimNode.id &&
              n.flags.includes('master') &&
              !n.flags.some((f) => f.startsWith('fail')) &&
              victimNode.slots.every(([a, b = a]) => covers(n.slots, a) && covers(n.slots, b)),
          )
          return owner?.port
        })
        return owners[0] !== undefined && owners.every((p) => p === owners[0]) ? owners[0] : undefined
      }),
    async rejoin(newMasterPort) {
      // Its nodes.conf is kept: the cluster makes it a replica of whoever took its slots.
      await victim.restart()
      await poll('the old master to rejoin as a replica', () => replicaOnline(newMasterPort, victim.port))
    },
  }
}

// ---------------------------------------------------------------------------------------------------------
// The app

let storeCount = 0
function openStore(topology, prefix, waitForReplicas, clients) {
  const client = topology.client()
  clients.push(client)
  const dir = join(WORK, `store-${++storeCount}`)
  mkdirSync(dir)
  const store = new TieredStore({
    prefix,
    disk: { path: join(dir, 'sessions.db') },
    redis: { client, commandTimeout: COMMAND_TIMEOUT, waitForReplicas },
  })
  // NB: the failover makes the store report errors (Redis unavailable, unconfirmed writes); counted elsewhere.
  store.on('error', () => undefined)
  return store
}

async function startApp(store, onWrite) {
  const responses = []
  const app = express()
  app.use((req, res, next) => {
    // NB: every write request, also one that failed before its route ran (a session that could not be loaded).
    const n = /^\/write\/(\d+)$/.exec(req.path)?.[1]
    if (n !== undefined) {
      res.on('finish', () =>
        responses.push({
          n: Number(n),
          sid: res.locals.sid,
          status: res.statusCode,
          at: performance.now(),
          outbox: store.stats().outbox,
        }),
      )
    }
    next()
  })
  app.use(tieredSession({ secret: 'bench-failover', store, cookie: { maxAge: 3_600_000 } }))
  app.post('/login', (req, res) => {
    req.session.user = 'u'
    res.json({ ok: true })
  })
  app.post('/write/:n', (req, res) => {
    onWrite?.()
    const n = Number(req.params.n)
    req.session[`k${n}`] = n
    res.locals.sid = req.session.id
    res.json({ ok: true })
  })
  // NB: a failed request is counted from its status; Express's default handler would print every stack.
  app.use((error, _req, res, _next) => res.status(error.status ?? 500).end())
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const url = `http://127.0.0.1:${server.address().port}`
  const cookies = []
  for (let i = 0; i < SESSIONS; i++) {
    const res = await fetch(`${url}/login`, { method: 'POST' })
    if (res.status !== 200) throw new Error(`login failed: ${res.status}`)
    cookies.push(res.headers.getSetCookie()[0].split(';')[0])
  }
  return { url, cookies, responses, close: () => new Promise((resolve) => server.close(resolve)) }
}

function load(app, amount, { rate, latencies } = {}) {
  let next = 0
  const instance = autocannon({
    url: app.url,
    connections: CONNECTIONS,
    amount,
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const n = next++
          return { ...req, path: `/write/${n}`, headers: { cookie: app.cookies[n % SESSIONS] } }
        },
      },
    ],
  })
  if (latencies) instance.on('response', (_c, _s, _b, responseTime) => latencies.push(responseTime))
  return instance
}

// ---------------------------------------------------------------------------------------------------------
// One row

async function scenario(kind, waitForReplicas) {
  log(`${kind}, waitForReplicas ${waitForReplicas}: starting the servers`)
  const topology = kind === 'sentinel' ? await sentinelTopology() : await clusterTopology()
  const clients = []
  const stores = []
  const apps = []
  try {
    const open = async (prefix, wfr) => {
      const store = openStore(topology, prefix, wfr, clients)
      stores.push(store)
      await store.ready()
      return store
    }

    // 1. write latency, waitForReplicas 1 vs 0, alternating rounds, nothing failing
    log('  write latency, waitForReplicas 0 and 1')
    const latApps = [await startApp(await open('lat0:', 0)), await startApp(await open('lat1:', 1))]
    apps.push(...latApps)
    const latencies = [[], []]
    for (let round = 0; round < LATENCY_ROUNDS; round++) {
      for (const i of round % 2 === 0 ? [0, 1] : [1, 0])
        await load(latApps[i], LATENCY_REQUESTS, { latencies: latencies[i] })
    }
    const sorted = latencies.map((l) => Float64Array.from(l).sort())
    const lat = sorted.map((s) => ({ p50: median(s), p99: percentile(s, 99) }))

    // 2. the failover under load
    log(`  failover under load: ${REQUESTS} writes at ${RATE}/s, SIGKILL of the master at ${REQUESTS / 6}`)
    const prefix = `fo${waitForReplicas}:`
    const store = await open(prefix, waitForReplicas)
    const times = {}
    let served = 0
    let failover
    const app = await startApp(store, () => {
      if (++served !== REQUESTS / 6) return
      times.killed = performance.now()
      failover = (async () => {
        await topology.victim.kill9()
        const port = await topology.awaitPromotion()
        times.promoted = performance.now()
        if (waitForReplicas > 0) {
          await topology.rejoin(port)
          times.rejoined = performance.now()
        }
        return port
      })()
    })
    apps.push(app)
    const result = await load(app, REQUESTS, { rate: RATE })
    await failover

    // 3. replay, then every acknowledged write from a fresh instance
    await poll('the outbox to be replayed', async () => store.stats().outbox === 0)
    const fresh = await open(prefix, 0)
    const acknowledged = app.responses.filter((r) => r.status >= 200 && r.status < 300)
    let lost = 0
    for (const r of acknowledged) if ((await fresh.get(r.sid))?.[`k${r.n}`] !== r.n) lost++
    let outboxWrites = 0
    let peak = 0
    let previous = 0
    for (const r of app.responses) {
      if (r.outbox > previous) outboxWrites += r.outbox - previous
      previous = r.outbox
      peak = Math.max(peak, r.outbox)
    }
    const row = {
      kind,
      waitForReplicas,
      windowMs: times.promoted - times.killed,
      rejoinMs: times.rejoined === undefined ? undefined : times.rejoined - times.promoted,
      failed: result.non2xx + result.errors,
      outboxWrites,
      peak,
      lost,
      acknowledged: acknowledged.length,
      maxLatency: result.latency.max,
      lat,
    }
    log(`  ${JSON.stringify(row)}`)
    return row
  } finally {
    for (const app of apps) await app.close()
    for (const store of stores) await store.close().catch(() => undefined)
    for (const client of clients) client.disconnect()
    killAll()
  }
}

// ---------------------------------------------------------------------------------------------------------

const rows = []
try {
  for (const kind of TOPOLOGIES) for (const wfr of [0, 1]) rows.push(await scenario(kind, wfr))
} finally {
  killAll()
  rmSync(WORK, { recursive: true, force: true })
}

const out = [
  `## Redis failover under HTTP load (redis-server ${redisVersion()}, Node ${process.version}, ${os.cpus().length} cores)`,
  '',
  `${REQUESTS} writes at ${RATE} req/s over ${CONNECTIONS} connections, ${SESSIONS} sessions, commandTimeout ${COMMAND_TIMEOUT} ms; ` +
    `SIGKILL of the master after ${REQUESTS / 6}. Write latency: ${LATENCY_ROUNDS} alternating rounds of ` +
    `${LATENCY_REQUESTS} writes per setting, closed loop, before the kill.`,
  '',
  table([
    [
      'topology',
      'waitForReplicas',
      'failover window (ms)',
      'rejoin (ms)',
      'failed requests',
      'outbox writes (peak)',
      'lost writes',
      'max latency (ms)',
      'write p50 1÷0',
      'write p99 1÷0',
    ],
    ...rows.map((r) => [
      r.kind,
      String(r.waitForReplicas),
      fmtInt(r.windowMs),
      r.rejoinMs === undefined ? '–' : fmtInt(r.rejoinMs),
      fmtInt(r.failed),
      `${fmtInt(r.outboxWrites)} (${fmtInt(r.peak)})`,
      `${fmtInt(r.lost)} of ${fmtInt(r.acknowledged)}`,
      fmtInt(r.maxLatency),
      `${fmtRatio(r.lat[1].p50 / r.lat[0].p50)} (${fmtMs(r.lat[1].p50)} / ${fmtMs(r.lat[0].p50)} ms)`,
      `${fmtRatio(r.lat[1].p99 / r.lat[0].p99)} (${fmtMs(r.lat[1].p99)} / ${fmtMs(r.lat[0].p99)} ms)`,
    ]),
  ]),
  '',
]
process.stdout.write(`${out.join('\n')}\n`)

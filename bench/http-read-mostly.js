// HTTP benchmark of a read-mostly Express 5 route: tieredSession() against express-session.
// Run with `npm run bench:http` (builds dist/, then runs this file). Uses only the public API.
//
// Contenders, each an Express 5 app in its own child process (bench/http-server.js, forked here, port 0,
// reporting its port over IPC):
//   tiered     tieredSession() over a TieredStore in local mode (fresh SQLite file in a mkdtemp dir)
//   es-memory  express-session + its built-in MemoryStore
//   es-tiered  express-session + TieredStore in local mode (fresh SQLite file in a mkdtemp dir)
// All three use cookie maxAge 1 day, saveUninitialized false (express-session: resave false too);
// tieredSession() uses touchAfter 0.5 (its default), so an unmodified session is not rewritten, while
// express-session calls store.touch() on every request of an unmodified session (that is how it works).
//
// Method:
// 1. Sessions. For each contender, --sessions (1,000) logins (POST /login?user=N, 20 in flight): each sets
//    userId, a 6-item cart and counter = 0 (~1 KiB of session JSON with the cookie; the size is reported).
//    The Set-Cookie of each login is kept.
// 2. Load. autocannon (programmatic API, in this process), --connections (20) keep-alive connections, no
//    pipelining. One request template with setupRequest(): every request picks one of the contender's
//    cookies uniformly at random (seeded PRNG) and is GET /read (90%: reads the session, returns the cart
//    length) or POST /write (10%: counter += 1). Latencies are taken from autocannon's per-response
//    'response' events (hrtime, float ms; autocannon's own histogram has 1 ms resolution) and percentiles
//    computed here (nearest rank). req/s = completed responses / measured duration.
// 3. Order. One warm-up run per contender (--warmup s, discarded), then --rounds (3) rounds of --duration
//    (10 s) per contender, rotated so each contender runs first, second and third once:
//    a b c | b c a | c a b. The figure per contender is the median over its rounds.
// 4. Server CPU. Before and after each run the child reports process.cpuUsage() and how many requests it
//    handled: server CPU µs per request and the server's share of one core (100% = one core saturated).
// 5. Checks. non-2xx, errors and timeouts must be 0 in every run (a 401 means a session was lost); the
//    server's own read/write counts must match autocannon's (within the requests in flight at the stop)
//    and the write share must be ~10%; after the rounds every cookie is read back once (200, 6 items).
//
// The load generator (this process) and the server under test share the machine's cores (2 here): the
// figures are for that set-up, not for a server with the cores to itself. The other two servers sit idle
// meanwhile. Temp dirs are deleted and the children shut down over IPC at the end (killed on failure).
//
// Options: --rounds N --duration S --warmup S --connections N --sessions N --write-ratio F
//          --profile <contender>   run that child with --cpu-prof (profile lands in bench/results/;
//                                  its figures are then skewed by the profiler, so they are flagged)
// Output: a markdown table on stdout, and bench/results/http-read-mostly-<timestamp>.json.

import { fork } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'

const BENCH_DIR = dirname(fileURLToPath(import.meta.url))
const SERVER = join(BENCH_DIR, 'http-server.js')
const RESULTS_DIR = join(BENCH_DIR, 'results')

const CONTENDERS = [
  { id: 'tiered', label: 'tieredSession() + TieredStore' },
  { id: 'es-memory', label: 'express-session + MemoryStore' },
  { id: 'es-tiered', label: 'express-session + TieredStore' },
]
const LABEL = Object.fromEntries(CONTENDERS.map((c) => [c.id, c.label]))

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    connections: { type: 'string', default: '20' },
    sessions: { type: 'string', default: '1000' },
    'write-ratio': { type: 'string', default: '0.1' },
    profile: { type: 'string' },
  },
})
const ROUNDS = Number(args.rounds)
const DURATION_S = Number(args.duration)
const WARMUP_S = Number(args.warmup)
const CONNECTIONS = Number(args.connections)
const SESSIONS = Number(args.sessions)
const WRITE_RATIO = Number(args['write-ratio'])
const PROFILE = args.profile
if (PROFILE !== undefined && !(PROFILE in LABEL)) {
  throw new Error(`--profile must be one of ${Object.keys(LABEL).join(', ')}`)
}
const LOGIN_CONCURRENCY = 20
const EXPECTED_ITEMS = 6

// ---------------------------------------------------------------------------------------------------------
// Helpers

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

function median(values) {
  const s = [...values].sort((x, y) => x - y)
  const mid = s.length >> 1
  return s.length % 2 === 1 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Nearest-rank percentile of an ascending-sorted typed array. */
function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]
}

const fmt = (n, digits = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits })
    : 'n/a'

/** The next message of `type` from a child, or a rejection if it exits first. */
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

/** One HTTP request over `agent`; resolves { status, headers, body }. */
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

/** Runs `fn(i)` for i in [0, n) with at most `limit` in flight. */
async function pool(n, limit, fn) {
  let next = 0
  const worker = async () => {
    while (next < n) await fn(next++)
  }
  await Promise.all(Array.from({ length: Math.min(limit, n) }, worker))
}

// ---------------------------------------------------------------------------------------------------------
// Children

const children = new Map() // id -> { child, port }
let tmpRoot

async function startServer(id) {
  const execArgv = []
  if (PROFILE === id)
    execArgv.push(
      '--cpu-prof',
      '--cpu-prof-dir',
      RESULTS_DIR,
      '--cpu-prof-name',
      `http-${id}-${Date.now()}.cpuprofile`,
    )
  const child = fork(SERVER, [id, '0', tmpRoot], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.set(id, { child, port: undefined })
  const { port } = await nextMessage(child, 'listening')
  children.get(id).port = port
  return port
}

async function sample(id) {
  const { child } = children.get(id)
  const reply = nextMessage(child, 'sample')
  child.send({ type: 'sample' })
  return reply
}

async function stopServer(id) {
  const { child } = children.get(id)
  if (child.exitCode !== null || child.signalCode !== null) return null
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const closed = nextMessage(child, 'closed')
  child.send({ type: 'shutdown' })
  const msg = await closed
  await exited
  return msg
}

function killAll() {
  for (const { child } of children.values()) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

function removeTmp() {
  if (tmpRoot !== undefined) rmSync(tmpRoot, { recursive: true, force: true })
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    killAll()
    removeTmp()
    process.exit(130)
  })
}

// ---------------------------------------------------------------------------------------------------------
// Phases

/** Logs in SESSIONS users; returns their Cookie header values and the session sizes. */
async function createSessions(id) {
  const { port } = children.get(id)
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOGIN_CONCURRENCY })
  const cookies = new Array(SESSIONS)
  const bytes = []
  const started = performance.now()
  await pool(SESSIONS, LOGIN_CONCURRENCY, async (i) => {
    const res = await request(agent, port, 'POST', `/login?user=${i}`)
    const setCookie = res.headers['set-cookie']
    if (res.status !== 200 || !Array.isArray(setCookie) || setCookie.length !== 1) {
      throw new Error(`${id}: login ${i} failed: ${res.status} ${JSON.stringify(setCookie)} ${res.body}`)
    }
    const body = JSON.parse(res.body)
    if (body.items !== EXPECTED_ITEMS) throw new Error(`${id}: login ${i} returned ${res.body}`)
    cookies[i] = setCookie[0].split(';')[0]
    bytes.push(body.bytes)
  })
  agent.destroy()
  return { cookies, bytes, ms: performance.now() - started }
}

/** One autocannon run against `id`; returns its figures. */
async function drive(id, cookies, seconds, seed) {
  const { port } = children.get(id)
  const random = rng(seed)
  const latencies = []
  const before = await sample(id)
  const parentCpuBefore = process.cpuUsage()
  const instance = autocannon({
    url: `http://127.0.0.1:${port}`,
    connections: CONNECTIONS,
    pipelining: 1,
    duration: seconds,
    requests: [
      {
        setupRequest(req) {
          req.headers.cookie = cookies[Math.floor(random() * cookies.length)]
          if (random() < WRITE_RATIO) {
            req.method = 'POST'
            req.path = '/write'
            req.headers['content-length'] = '0'
          } else {
            req.method = 'GET'
            req.path = '/read'
            delete req.headers['content-length']
          }
          return req
        },
      },
    ],
  })
  instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime))
  const result = await instance
  const parentCpu = process.cpuUsage(parentCpuBefore)
  const after = await sample(id)

  const sorted = Float64Array.from(latencies).sort()
  const handled = after.counts.read + after.counts.write - (before.counts.read + before.counts.write)
  const writes = after.counts.write - before.counts.write
  const serverCpuUs = after.cpu.user + after.cpu.system - (before.cpu.user + before.cpu.system) // µs, whole child process
  const wallS = result.duration
  return {
    contender: id,
    seconds: wallS,
    completed: result.requests.total,
    reqPerSec: result.requests.total / wallS,
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.length > 0 ? sorted[sorted.length - 1] : Number.NaN,
      mean: latencies.reduce((s, x) => s + x, 0) / latencies.length,
    },
    autocannonLatencyMs: { p50: result.latency.p50, p99: result.latency.p99 },
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes: result.statusCodeStats,
    server: {
      handled,
      writes,
      writeShare: handled > 0 ? writes / handled : Number.NaN,
      unauthorized: after.counts.unauthorized - before.counts.unauthorized,
      cpuUsPerRequest: handled > 0 ? serverCpuUs / handled : Number.NaN,
      cpuShareOfOneCore: serverCpuUs / 1e6 / wallS,
      heapUsedMiB: after.heapUsed / 1024 / 1024,
    },
    loadGenCpuShareOfOneCore: (parentCpu.user + parentCpu.system) / 1e6 / wallS,
  }
}

/** Reads every session back once: 200 with the cart intact. Returns the number of failures. */
async function verifyAll(id, cookies) {
  const { port } = children.get(id)
  const agent = new http.Agent({ keepAlive: true, maxSockets: LOGIN_CONCURRENCY })
  let failures = 0
  await pool(cookies.length, LOGIN_CONCURRENCY, async (i) => {
    const res = await request(agent, port, 'GET', '/read', { cookie: cookies[i] })
    if (res.status !== 200 || JSON.parse(res.body).items !== EXPECTED_ITEMS) failures++
  })
  agent.destroy()
  return failures
}

/** Problems with one run, as strings (empty when the run is clean). */
function problemsOf(run) {
  const problems = []
  if (run.non2xx !== 0) problems.push(`${run.non2xx} non-2xx (${JSON.stringify(run.statusCodes)})`)
  if (run.errors !== 0) problems.push(`${run.errors} errors`)
  if (run.timeouts !== 0) problems.push(`${run.timeouts} timeouts`)
  if (run.server.unauthorized !== 0) problems.push(`${run.server.unauthorized} requests without a session`)
  // autocannon stops counting with up to one request per connection still in flight.
  const gap = run.server.handled - run.completed
  if (gap < 0 || gap > CONNECTIONS)
    problems.push(`server handled ${run.server.handled}, client saw ${run.completed}`)
  if (Math.abs(run.server.writeShare - WRITE_RATIO) > 0.02)
    problems.push(`write share ${(run.server.writeShare * 100).toFixed(1)}%`)
  return problems
}

// ---------------------------------------------------------------------------------------------------------
// Main

async function main() {
  const startedAt = new Date()
  mkdirSync(RESULTS_DIR, { recursive: true })
  tmpRoot = mkdtempSync(join(os.tmpdir(), 'tiered-session-bench-http-'))
  const cpus = os.cpus()
  const machine = {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
  }
  const estimateS = CONTENDERS.length * (WARMUP_S + ROUNDS * DURATION_S)
  console.log(
    `# HTTP read-mostly benchmark\n\n${machine.cpu}, ${machine.cores} cores, Node ${machine.node}. ` +
      `${SESSIONS} sessions per contender, ${CONNECTIONS} connections, ${(1 - WRITE_RATIO) * 100}% GET /read + ` +
      `${WRITE_RATIO * 100}% POST /write, ${ROUNDS} rounds x ${DURATION_S} s per contender ` +
      `(+ ${WARMUP_S} s warm-up each; ~${estimateS} s of load).\n` +
      `NB: the load generator (autocannon, this process) and the server under test share these ` +
      `${machine.cores} cores.\n`,
  )
  if (PROFILE !== undefined) console.log(`NB: ${PROFILE} runs under --cpu-prof: its figures are skewed.\n`)

  const sessions = {}
  for (const { id } of CONTENDERS) await startServer(id)
  for (const { id } of CONTENDERS) {
    sessions[id] = await createSessions(id)
    const b = sessions[id].bytes
    console.log(
      `- ${LABEL[id]}: ${SESSIONS} logins in ${fmt(sessions[id].ms)} ms; session JSON ` +
        `${Math.min(...b)}-${Math.max(...b)} bytes (mean ${fmt(b.reduce((s, x) => s + x, 0) / b.length)})`,
    )
  }

  const warmups = []
  for (const { id } of CONTENDERS) {
    const run = await drive(id, sessions[id].cookies, WARMUP_S, 0xfeed)
    warmups.push(run)
    const problems = problemsOf(run)
    if (problems.length > 0) console.log(`  warm-up ${id}: ${problems.join('; ')}`)
  }

  // Latin-square rotation: a b c | b c a | c a b | a b c ...
  const runs = []
  console.log('\nRuns (req/s, p50/p99 ms, server CPU µs/req, server/load-generator share of one core):')
  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < CONTENDERS.length; k++) {
      const { id } = CONTENDERS[(round + k) % CONTENDERS.length]
      const run = await drive(id, sessions[id].cookies, DURATION_S, 1000 + round)
      run.round = round + 1
      run.problems = problemsOf(run)
      runs.push(run)
      console.log(
        `  round ${round + 1} ${id.padEnd(9)} ${fmt(run.reqPerSec).padStart(7)} req/s  ` +
          `${fmt(run.latencyMs.p50, 2)}/${fmt(run.latencyMs.p99, 2)} ms  ` +
          `${fmt(run.server.cpuUsPerRequest)} µs/req  ` +
          `${fmt(run.server.cpuShareOfOneCore * 100)}%/${fmt(run.loadGenCpuShareOfOneCore * 100)}%` +
          (run.problems.length > 0 ? `  PROBLEMS: ${run.problems.join('; ')}` : ''),
      )
    }
  }

  const verifyFailures = {}
  for (const { id } of CONTENDERS) verifyFailures[id] = await verifyAll(id, sessions[id].cookies)

  const closed = {}
  for (const { id } of CONTENDERS) closed[id] = await stopServer(id)
  removeTmp()

  // Medians per contender.
  const summary = {}
  for (const { id } of CONTENDERS) {
    const mine = runs.filter((r) => r.contender === id)
    summary[id] = {
      label: LABEL[id],
      rounds: mine.length,
      reqPerSec: median(mine.map((r) => r.reqPerSec)),
      reqPerSecMin: Math.min(...mine.map((r) => r.reqPerSec)),
      reqPerSecMax: Math.max(...mine.map((r) => r.reqPerSec)),
      p50Ms: median(mine.map((r) => r.latencyMs.p50)),
      p99Ms: median(mine.map((r) => r.latencyMs.p99)),
      serverCpuUsPerRequest: median(mine.map((r) => r.server.cpuUsPerRequest)),
      non2xx: mine.reduce((s, r) => s + r.non2xx, 0),
      errors: mine.reduce((s, r) => s + r.errors + r.timeouts, 0),
      problems: mine.flatMap((r) => r.problems.map((p) => `round ${r.round}: ${p}`)),
      verifyFailures: verifyFailures[id],
      storeStats: closed[id]?.stats ?? null,
    }
  }
  const t = summary.tiered
  const ratio = (a, b) => a / b
  const ratios = {
    vsMemoryStore: {
      reqPerSec: ratio(t.reqPerSec, summary['es-memory'].reqPerSec),
      p50: ratio(t.p50Ms, summary['es-memory'].p50Ms),
      p99: ratio(t.p99Ms, summary['es-memory'].p99Ms),
      serverCpuPerRequest: ratio(t.serverCpuUsPerRequest, summary['es-memory'].serverCpuUsPerRequest),
    },
    vsExpressSessionTieredStore: {
      reqPerSec: ratio(t.reqPerSec, summary['es-tiered'].reqPerSec),
      p50: ratio(t.p50Ms, summary['es-tiered'].p50Ms),
      p99: ratio(t.p99Ms, summary['es-tiered'].p99Ms),
      serverCpuPerRequest: ratio(t.serverCpuUsPerRequest, summary['es-tiered'].serverCpuUsPerRequest),
    },
  }

  const lines = []
  lines.push('')
  lines.push(`## Results (median of ${ROUNDS} rounds of ${DURATION_S} s, ${CONNECTIONS} connections)`)
  lines.push('')
  lines.push(
    '| contender | req/s | req/s min–max | p50 ms | p99 ms | server CPU µs/req | non-2xx | errors | read-back failures |',
  )
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const { id } of CONTENDERS) {
    const s = summary[id]
    lines.push(
      `| ${s.label} | ${fmt(s.reqPerSec)} | ${fmt(s.reqPerSecMin)}–${fmt(s.reqPerSecMax)} | ${fmt(s.p50Ms, 2)} | ` +
        `${fmt(s.p99Ms, 2)} | ${fmt(s.serverCpuUsPerRequest)} | ${s.non2xx} | ${s.errors} | ${s.verifyFailures} |`,
    )
  }
  lines.push('')
  lines.push(
    '| ratio (tieredSession / other) | req/s (>1 better) | p50 (<1 better) | p99 (<1 better) | server CPU/req (<1 better) |',
  )
  lines.push('| --- | ---: | ---: | ---: | ---: |')
  for (const [name, r] of [
    ['tieredSession / express-session+MemoryStore', ratios.vsMemoryStore],
    ['tieredSession / express-session+TieredStore', ratios.vsExpressSessionTieredStore],
  ]) {
    lines.push(
      `| ${name} | ${fmt(r.reqPerSec, 2)} | ${fmt(r.p50, 2)} | ${fmt(r.p99, 2)} | ${fmt(r.serverCpuPerRequest, 2)} |`,
    )
  }
  lines.push('')
  for (const id of ['tiered', 'es-tiered']) {
    const st = summary[id].storeStats
    if (st !== null)
      lines.push(
        `- ${LABEL[id]} store over the whole run: ${st.writes} disk writes (sets, merges, touches), ` +
          `${st.hits.memory} memory hits, ${st.hits.disk} disk hits, ${st.misses} misses.`,
      )
  }
  lines.push(
    `- Load generator and server share the ${machine.cores} cores; server CPU µs/req is the child's ` +
      'user+system CPU per handled request (less sensitive to that sharing than req/s).',
  )
  const allProblems = CONTENDERS.flatMap(({ id }) => summary[id].problems.map((p) => `${id} ${p}`))
  const verifyTotal = CONTENDERS.reduce((s, { id }) => s + summary[id].verifyFailures, 0)
  lines.push(
    allProblems.length === 0 && verifyTotal === 0
      ? '- Checks: 0 non-2xx, 0 errors/timeouts, server counts match, ~10% writes, every session read back intact.'
      : `- CHECKS FAILED: ${[...allProblems, `${verifyTotal} read-back failures`].join('; ')}`,
  )
  console.log(lines.join('\n'))

  const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
  const file = join(RESULTS_DIR, `http-read-mostly-${stamp}.json`)
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        finishedAt: new Date().toISOString(),
        machine,
        settings: {
          rounds: ROUNDS,
          durationS: DURATION_S,
          warmupS: WARMUP_S,
          connections: CONNECTIONS,
          sessions: SESSIONS,
          writeRatio: WRITE_RATIO,
          profile: PROFILE ?? null,
          note: 'load generator and servers share the cores',
        },
        sessionBytes: Object.fromEntries(
          CONTENDERS.map(({ id }) => [
            id,
            { min: Math.min(...sessions[id].bytes), max: Math.max(...sessions[id].bytes) },
          ]),
        ),
        summary,
        ratios,
        warmups,
        runs,
      },
      null,
      2,
    )}\n`,
  )
  console.log(`\nJSON: ${file}`)
  return allProblems.length === 0 && verifyTotal === 0
}

try {
  const ok = await main()
  process.exitCode = ok ? 0 : 1
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  killAll()
  removeTmp()
}

// The side-by-side benchmark of tiered-session and its peers, in one run (issue 7).
//
//   npm run bench          full run (~20 min on a 2-core VM)
//   npm run bench:quick    scaled-down run (< 3 min): shorter rounds, 100,000 sessions instead of 1,000,000
//
// Both build dist/ first (the benchmark uses the built package, through its public API only), then run
// `node bench/run.js [--quick]`. Sections, in order (each also alone with --only):
//   store   1. store level: get hot / get cold / set / touch, ops/s and p50/p99    (bench/store-level.js)
//   http    2. HTTP with autocannon, one process per contender: read-mostly, every
//              request writes, every request a new visitor; Redis on loopback and
//              behind a +1 ms each-way proxy                                       (bench/http.js, http-server.js)
//   memory  3. bounded memory: N sessions through ours (64 MiB), MemoryStore, memorystore  (bench/memory.js)
//   spill   4. spill throughput, cold reads, first read on the N-session file      (bench/spill.js)
// Shared helpers: bench/lib/ (sessions, stats, report, procs: redis-server + children, proxy, stores).
//
// Output: markdown on stdout (progress on stderr), and bench/results/bench-<timestamp>.{md,json}.
// Every redis-server, proxy and server process is started here on a free loopback port and killed by PID;
// all files live in one mkdtemp() directory that is deleted at the end.
//
// Options: --quick, --only store,http,memory,spill, --rounds N and --duration S (HTTP), --sessions N
// (section 3/4), --http-only <id,id> (HTTP contenders), --scenarios read,write,new,paced (HTTP), --profile <http contender id[,id]> (those servers run
// under --cpu-prof; its profile lands in bench/results/), --no-proxy, --baseline DIR (HTTP: adds es-local-base and
// ts-local-base, the same apps run from another checkout's bench/http-server.js and built dist/, e.g. a git
// worktree of an earlier commit, to measure what a change costs in the same run; section 3: the flood also runs
// on that checkout, alternated with ours, and sets/s and RSS are compared), --ab-rounds N (section 3: pairs of
// that comparison; default 2).

import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { httpGoalRows, httpMarkdown, runHttp, SCENARIOS } from './http.js'
import { BENCH_DIR, killAll, redisVersion, runTask } from './lib/procs.js'
import { fmtInt, fmtMiB, fmtMs, fmtUs, table, verdict } from './lib/report.js'
import { MiB } from './lib/sessions.js'
import { msSince, nowNs } from './lib/stats.js'
import { memoryMarkdown, runMemory } from './memory.js'
import { runSpill, GOALS as SPILL_GOALS, spillMarkdown } from './spill.js'
import { runStoreLevel, storeLevelMarkdown } from './store-level.js'

const RESULTS_DIR = join(BENCH_DIR, 'results')

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    duration: { type: 'string' },
    sessions: { type: 'string' },
    'http-only': { type: 'string' },
    scenarios: { type: 'string' },
    profile: { type: 'string' },
    'no-proxy': { type: 'boolean', default: false },
    baseline: { type: 'string' },
    'ab-rounds': { type: 'string' },
  },
})

const QUICK = args.quick
const SECTIONS = args.only ? args.only.split(',') : ['store', 'http', 'memory', 'spill']
for (const s of SECTIONS)
  if (!['store', 'http', 'memory', 'spill'].includes(s)) throw new Error(`--only: unknown section ${s}`)
const proxy = args['no-proxy'] ? null : { delayMs: 1 }
const bigSessions = Number(args.sessions ?? (QUICK ? 100_000 : 1_000_000))

const CONFIG = {
  mode: QUICK ? 'quick' : 'full',
  store: QUICK
    ? {
        rounds: 2,
        budgetMs: 100,
        maxOps: 20_000,
        hot: 100,
        coldOps: 1000,
        coldWarmup: 100,
        proxy: proxy && { ...proxy, budgetMs: 100, maxOps: 200, coldOps: 40, coldWarmup: 10 },
      }
    : {
        rounds: 3,
        budgetMs: 1000,
        maxOps: 50_000,
        hot: 100,
        coldOps: 3000,
        coldWarmup: 200,
        proxy: proxy && { ...proxy, budgetMs: 1000, maxOps: 400, coldOps: 300, coldWarmup: 20 },
      },
  http: {
    rounds: Number(args.rounds ?? (QUICK ? 2 : 5)),
    duration: Number(args.duration ?? (QUICK ? 0.8 : 3)),
    warmup: QUICK ? 0.5 : 2,
    warmupEveryScenario: !QUICK,
    connections: 20,
    sessions: QUICK ? 200 : 1000,
    verifyVisitors: 20,
    scenarios: args.scenarios ? args.scenarios.split(',') : Object.keys(SCENARIOS),
    proxy,
    // memorystore bounds a count: 64 MiB of ~1 KiB sessions.
    memorystoreMax: Math.floor((64 * MiB) / 1024),
    only: args['http-only'] ? args['http-only'].split(',') : null,
    profile: args.profile,
    baseline: args.baseline ?? null,
  },
  memory: {
    sessions: bigSessions,
    batch: 1000,
    checkpoint: bigSessions / 10,
    samples: 10_000,
    maxBytes: 64 * MiB,
    baseline: args.baseline,
    baselineRounds: Number(args['ab-rounds'] ?? 2),
  },
  spill: {
    maxBytes: 64 * MiB,
    cycles: QUICK ? 2 : 3,
    sessions: bigSessions,
    coldReads: QUICK ? 5000 : 20_000,
  },
}

function machine() {
  const cpus = os.cpus()
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism?.() ?? cpus.length,
    memory: os.totalmem(),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    redis: redisVersion(),
    loadavg: os.loadavg(),
  }
}

function gitInfo() {
  try {
    const cwd = join(BENCH_DIR, '..')
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src'], {
      cwd,
      encoding: 'utf8',
    }).trim()
    return { commit, srcDirty: dirty.length > 0 }
  } catch {
    return null
  }
}

/** How this run was started: the npm script (which builds first), or node with its arguments. */
function command() {
  const event = process.env.npm_lifecycle_event
  const direct = `node bench/run.js${process.argv.length > 2 ? ` ${process.argv.slice(2).join(' ')}` : ''}`
  return event?.startsWith('bench') ? `npm run ${event}` : direct
}

let tmpRoot
function cleanup() {
  killAll()
  if (tmpRoot !== undefined) rmSync(tmpRoot, { recursive: true, force: true })
  tmpRoot = undefined
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    cleanup()
    process.exit(130)
  })
}

/** The store-level touch goals of the drop-in door (loopback pass). */
function storeGoalRows(store) {
  const pass = store.passes?.[0]
  const rows = []
  for (const [pair, target, label] of [
    ['local/memory', 0.8, 'store level: touch, TieredStore local ≥ 0.8× MemoryStore (ops/s)'],
    ['shared/cr9', 1, 'store level: touch, TieredStore shared ≥ 1× connect-redis 9 (ops/s, loopback)'],
  ]) {
    const v = pass?.ratios?.[pair]?.touch?.opsPerSec
    if (v === undefined) continue
    rows.push([label, `${v.toFixed(2)}×`, `≥ ${target.toFixed(2)}×`, verdict(v >= target)])
  }
  return rows
}

function goalsTable(results) {
  const rows = [['goal', 'measured', 'target', '']]
  if (results.http) rows.push(...httpGoalRows(results.http))
  if (results.store) rows.push(...storeGoalRows(results.store))
  if (results.memory) {
    const m = results.memory
    const ours = m.results.local
    const w = m.goal.rssWorst
    rows.push([
      `bounded memory: RSS peak ≤ 2 × maxBytes + idle RSS (= ${fmtMiB(m.goal.rssBudget)}), no Node flags, 0 lost`,
      `${fmtMiB(w.peakRss)}, ${fmtInt(w.sessionsLost + w.readBack.lost + w.readBack.different)} lost`,
      `≤ ${fmtMiB(m.goal.rssBudget)}`,
      verdict(m.goal.metRss),
    ])
    if (m.baseline)
      rows.push([
        `bounded memory: sets/s ≥ 0.9× the baseline (commit ${m.baseline.commit}), median of ${m.baseline.ours.length} alternated runs`,
        `${m.baseline.setsRatio.toFixed(2)}×`,
        '≥ 0.90×',
        verdict(m.goal.metSets),
      ])
    rows.push([
      `bounded memory: peak heap ≤ 1.5 × maxBytes + idle heap (= ${fmtMiB(m.goal.heapBudget)}), 0 lost — sampled peak heapUsed`,
      `${fmtMiB(ours.peakHeapUsed)}, ${fmtInt(ours.sessionsLost + ours.readBack.lost + ours.readBack.different)} lost`,
      `≤ ${fmtMiB(m.goal.heapBudget)}`,
      verdict(m.goal.metPeakSampled),
    ])
    rows.push([
      '(same, live heap: heapUsed after a full GC, at 10 checkpoints)',
      fmtMiB(ours.peakLiveHeapUsed),
      `≤ ${fmtMiB(m.goal.heapBudget)}`,
      verdict(m.goal.metPeakLive),
    ])
    const capped = m.results['local-capped']
    rows.push([
      `(same, sampled peak, V8 old space capped at 1.5 × maxBytes: --max-old-space-size=${m.capMiB})`,
      `${fmtMiB(capped.peakHeapUsed)}, ${fmtInt(capped.sessionsLost + capped.readBack.lost + capped.readBack.different)} lost`,
      `≤ ${fmtMiB(1.5 * m.cfg.maxBytes + capped.idleHeapUsed)}`,
      verdict(m.goal.metCapped),
    ])
  }
  if (results.spill) {
    const s = results.spill
    rows.push([
      'spill throughput (default watermarks)',
      `${fmtInt(s.spills.default.sessionsPerSec)}/s`,
      `≥ ${fmtInt(SPILL_GOALS.spillPerSec)}/s`,
      verdict(s.goals.spill),
    ])
    if (s.cold) {
      rows.push([
        'cold read p50',
        `${fmtUs(s.cold.cold.p50)} µs`,
        `≤ ${SPILL_GOALS.coldP50Us} µs`,
        verdict(s.goals.coldP50),
      ])
      rows.push([
        `first read on a ${fmtInt(s.cold.rows)}-session file`,
        `${fmtMs(s.cold.firstReadMs)} ms`,
        `≤ ${fmtInt(SPILL_GOALS.firstReadMs)} ms`,
        verdict(s.goals.firstRead),
      ])
    }
  }
  return table(rows, 'lrrl')
}

async function main() {
  const started = new Date()
  const t0 = nowNs()
  mkdirSync(RESULTS_DIR, { recursive: true })
  tmpRoot = mkdtempSync(join(os.tmpdir(), 'tiered-session-bench-'))
  const m = machine()
  const git = gitInfo()
  const ctx = {
    tmpRoot,
    resultsDir: RESULTS_DIR,
    bigDbPath: join(tmpRoot, 'big-sessions.db'),
    // The instant the sessions of sections 3 and 4 are generated at (their cookie expiry and timestamps).
    bigNow: Date.now(),
    log: (line) => console.error(line),
  }
  const header = [
    `# tiered-session benchmark (${CONFIG.mode})`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${fmtMiB(m.memory)} RAM, ${m.platform}; Node ${m.node}; redis-server ${m.redis}. ` +
      `**The load generator (autocannon), the server under test, redis-server and the latency proxy all share these ${m.cores} cores**, ` +
      'so absolute figures are low and noisy; the ratios (same run, contenders alternated) are what count.',
    '',
    `Commit ${git?.commit ?? 'unknown'}${git?.srcDirty ? ' (src/ has uncommitted changes)' : ''}. ` +
      `Command: \`${command()}\`. Started ${started.toISOString()}.`,
  ].join('\n')
  console.error(header)
  const results = {}
  const sectionSeconds = {}
  const timed = async (name, fn) => {
    const s0 = nowNs()
    console.error(`\n[${name}] ...`)
    results[name] = await fn()
    sectionSeconds[name] = msSince(s0) / 1000
    console.error(`[${name}] done in ${sectionSeconds[name].toFixed(1)} s`)
  }
  if (SECTIONS.includes('store')) await timed('store', () => runStoreLevel(CONFIG.store, ctx))
  if (SECTIONS.includes('http')) await timed('http', () => runHttp(CONFIG.http, ctx))
  if (SECTIONS.includes('memory')) await timed('memory', () => runMemory(CONFIG.memory, ctx))
  if (SECTIONS.includes('spill')) {
    await timed('spill', async () => {
      if (!existsSync(ctx.bigDbPath)) {
        ctx.log(`  [spill] writing the ${fmtInt(bigSessions)}-session file first`)
        await runTask('memory', {
          kind: 'local',
          total: bigSessions,
          batch: 1000,
          checkpoint: bigSessions,
          samples: 10,
          maxBytes: 64 * MiB,
          tmpRoot,
          dbPath: ctx.bigDbPath,
          now: ctx.bigNow,
        })
      }
      return runSpill(CONFIG.spill, ctx)
    })
  }
  const totalSeconds = msSince(t0) / 1000

  const parts = [header, '']
  if (results.http || results.memory || results.spill) parts.push('## Goals', '', goalsTable(results), '')
  if (results.store) parts.push('## 1. Store level', '', storeLevelMarkdown(results.store), '')
  if (results.http)
    parts.push('## 2. HTTP (autocannon, one process per contender)', '', httpMarkdown(results.http), '')
  if (results.memory) parts.push('## 3. Bounded memory at scale', '', memoryMarkdown(results.memory), '')
  if (results.spill) parts.push('## 4. Spill and cold start', '', spillMarkdown(results.spill), '')
  parts.push(
    `Total ${fmtInt(totalSeconds)} s (${Object.entries(sectionSeconds)
      .map(([k, v]) => `${k} ${fmtInt(v)} s`)
      .join(', ')}). Load average (1 min) at the start ${m.loadavg[0].toFixed(2)}, at the end ` +
      `${os.loadavg()[0].toFixed(2)}: anything else running on the machine shows up in the figures.`,
  )
  const markdown = parts.join('\n')
  console.log(markdown)

  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const base = join(RESULTS_DIR, `bench-${CONFIG.mode}-${stamp}`)
  writeFileSync(`${base}.md`, `${markdown}\n`)
  writeFileSync(
    `${base}.json`,
    `${JSON.stringify({ startedAt: started.toISOString(), totalSeconds, sectionSeconds, machine: m, git, argv: process.argv.slice(2), config: CONFIG, results }, null, 2)}\n`,
  )
  console.error(`\nresults: ${base}.md and .json (total ${totalSeconds.toFixed(1)} s)`)
}

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  cleanup()
}

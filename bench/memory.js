// 3. Bounded memory at scale: N sessions of ~1 KiB pushed through one store in a fresh process each.
//
//   local        TieredStore local mode, memory.maxBytes 64 MiB (its SQLite file is kept for section 4)
//   memory       express-session's MemoryStore (unbounded: it holds everything in the heap)
//   memorystore  memorystore with `max` = 64 MiB / mean session size (it bounds a count, so it evicts)
//
// Method (bench/worker.js task `memory`, node --expose-gc): open the store, full GC, record the idle
// heapUsed/RSS. Then write N sessions (sessionFor(i), deterministic) in concurrent batches of `batch`
// (each batch generated before its timer starts; the store's callbacks awaited together). After every
// batch: process.memoryUsage() → peak heapUsed (includes garbage V8 has not collected yet) and peak RSS.
// Every `checkpoint` sessions, outside the timed region: a forced full GC, then heapUsed again → the peak
// *live* heap (what the store really retains). Throughput = N / summed batch time (spill cycles, which run
// inline, included). Then `samples` random sessions are read back and deep-compared with a re-generated
// copy: a missing or different one is lost.
//
// RSS goal (issue 15): the RSS peak ≤ 2 × maxBytes + the idle RSS, in a process without Node flags (the
// worker's --expose-gc only adds the checkpoint GCs), 0 lost. What the RSS was made of at its peak is kept
// (heapTotal, external, arrayBuffers — the memory tier's payload region is an arrayBuffer).
//
// Baseline (--baseline DIR on bench/run.js: another checkout with its dist/ built, e.g. the branch point in
// a `git worktree`): its own bench/worker.js runs the same flood on its own build, alternated with ours
// (ours, baseline, ours, baseline), and sets/s are compared as medians.

import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { runTask } from './lib/procs.js'
import { fmtInt, fmtMiB, fmtNum, table, verdict } from './lib/report.js'
import { meanSessionBytes, rng, sessionFor, sidFor } from './lib/sessions.js'
import { msSince, nowNs } from './lib/stats.js'
import { call, openStore, STORE_LABEL } from './lib/stores.js'

function fullGc() {
  globalThis.gc?.()
  globalThis.gc?.()
}

/**
 * Sessions the store holds (without going through all(), which parses every one). Ours: `length()`, an exact
 * count of the live rows (`stats().disk.entries` is the worker's last count above 50,000 rows).
 */
async function heldBy(c) {
  if (c.kind === 'memory') return Object.keys(c.store.sessions).length
  if (c.kind === 'memorystore') return c.store.store.itemCount
  return await call(c.store, 'length')
}

/** Worker task: one store, N sessions. */
export async function memoryTask({
  kind,
  total,
  batch,
  checkpoint,
  samples,
  maxBytes,
  tmpRoot,
  dbPath,
  now,
}) {
  // NB: the same `now` in every process, so that sessionFor(i, now) is the same session everywhere.
  const at = now ?? Date.now()
  const mean = meanSessionBytes()
  const memorystoreMax = Math.floor(maxBytes / mean)
  const c =
    kind === 'local' && dbPath
      ? await openStoreAt(dbPath, maxBytes)
      : await openStore(kind, { tmpRoot, maxBytes, memorystoreMax })
  try {
    fullGc()
    const idle = process.memoryUsage()
    let peakHeap = idle.heapUsed
    let peakRss = idle.rss
    let atPeakRss = idle
    let peakLiveHeap = idle.heapUsed
    const checkpoints = []
    let writeMs = 0
    for (let start = 0; start < total; start += batch) {
      const end = Math.min(total, start + batch)
      const sessions = []
      for (let i = start; i < end; i++) sessions.push(sessionFor(i, at))
      const t0 = nowNs()
      await Promise.all(sessions.map((s, k) => call(c.store, 'set', sidFor(start + k, 'm'), s)))
      writeMs += msSince(t0)
      const mem = process.memoryUsage()
      if (mem.heapUsed > peakHeap) peakHeap = mem.heapUsed
      if (mem.rss > peakRss) {
        peakRss = mem.rss
        atPeakRss = mem
      }
      if (end % checkpoint === 0 || end === total) {
        fullGc()
        const live = process.memoryUsage()
        if (live.heapUsed > peakLiveHeap) peakLiveHeap = live.heapUsed
        const st = c.stats()
        checkpoints.push({
          sessions: end,
          heapUsedAfterGc: live.heapUsed,
          rss: live.rss,
          memoryTierBytes: st?.memory.bytes ?? null,
          memoryTierEntries: st?.memory.entries ?? null,
        })
      }
    }
    if (c.store.flush) await c.store.flush()
    const held = await heldBy(c)
    fullGc()
    const retained = process.memoryUsage()

    const r = rng(4242)
    let lost = 0
    let different = 0
    const readStart = nowNs()
    for (let k = 0; k < samples; k++) {
      const i = Math.floor(r() * total)
      const got = await call(c.store, 'get', sidFor(i, 'm'))
      if (got == null) lost++
      else if (!isDeepStrictEqual(got, sessionFor(i, at))) different++
    }
    const readMs = msSince(readStart)
    const st = c.stats()
    return {
      kind,
      total,
      batch,
      maxBytes,
      memorystoreMax: kind === 'memorystore' ? memorystoreMax : null,
      meanSessionBytes: mean,
      setsPerSec: total / (writeMs / 1000),
      writeMs,
      idleHeapUsed: idle.heapUsed,
      idleRss: idle.rss,
      idleHeapTotal: idle.heapTotal,
      idleArrayBuffers: idle.arrayBuffers,
      atPeakRss: {
        heapUsed: atPeakRss.heapUsed,
        heapTotal: atPeakRss.heapTotal,
        external: atPeakRss.external,
        arrayBuffers: atPeakRss.arrayBuffers,
      },
      peakHeapUsed: peakHeap,
      peakLiveHeapUsed: peakLiveHeap,
      peakRss,
      retainedHeapUsed: retained.heapUsed,
      held,
      sessionsLost: total - held,
      readBack: { samples, lost, different, ms: readMs },
      checkpoints,
      stats: st,
      dbPath: dbPath ?? null,
    }
  } finally {
    await c.close()
    // A store of its own (not the file section 4 reuses): its SQLite file is not needed any more.
    if (c.dir !== undefined) rmSync(c.dir, { recursive: true, force: true })
  }
}

async function openStoreAt(path, maxBytes) {
  const { TieredStore } = await import('tiered-session')
  const store = new TieredStore({ memory: { maxBytes }, disk: { path } })
  const errors = []
  store.on('error', (e) => errors.push(e))
  return { kind: 'local', store, stats: () => store.stats(), close: () => store.close() }
}

/** The runs of this section: ours (whose file section 4 reuses), ours under a V8 heap cap, and the peers. */
const RUNS = [
  { id: 'local', kind: 'local' },
  { id: 'local-capped', kind: 'local', capped: true },
  { id: 'memory', kind: 'memory' },
  { id: 'memorystore', kind: 'memorystore' },
]

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

function commitOf(dir) {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

/** Ours and the baseline alternated (ours first ran already as `local`): ours, baseline, ours, baseline. */
async function runBaseline(cfg, ctx, ours) {
  const worker = join(cfg.baseline, 'bench', 'worker.js')
  const args = {
    kind: 'local',
    total: cfg.sessions,
    batch: cfg.batch,
    checkpoint: cfg.checkpoint,
    samples: cfg.samples,
    maxBytes: cfg.maxBytes,
    tmpRoot: ctx.tmpRoot,
    now: ctx.bigNow,
  }
  const oursRuns = [ours]
  const baseRuns = []
  for (let round = 0; round < cfg.baselineRounds; round++) {
    if (round > 0) oursRuns.push(await runTask('memory', args))
    baseRuns.push(await runTask('memory', args, { worker }))
    const o = oursRuns.at(-1)
    const b = baseRuns.at(-1)
    ctx.log(
      `  [memory] A/B round ${round + 1}: ours ${fmtInt(o.setsPerSec)}/s RSS peak ${fmtMiB(o.peakRss)}, ` +
        `baseline ${fmtInt(b.setsPerSec)}/s RSS peak ${fmtMiB(b.peakRss)}`,
    )
  }
  return {
    commit: commitOf(cfg.baseline),
    ours: oursRuns,
    base: baseRuns,
    setsRatio: median(oursRuns.map((r) => r.setsPerSec)) / median(baseRuns.map((r) => r.setsPerSec)),
  }
}

export async function runMemory(cfg, ctx) {
  const results = {}
  // The goal's budget is 1.5 × maxBytes of heap on top of the idle heap: the capped run tells V8 so
  // (--max-old-space-size caps the old generation; the young generation comes on top).
  const capMiB = Math.floor((1.5 * cfg.maxBytes) / 2 ** 20)
  for (const run of RUNS) {
    const t0 = nowNs()
    results[run.id] = await runTask(
      'memory',
      {
        kind: run.kind,
        total: cfg.sessions,
        batch: cfg.batch,
        checkpoint: cfg.checkpoint,
        samples: cfg.samples,
        maxBytes: cfg.maxBytes,
        tmpRoot: ctx.tmpRoot,
        dbPath: run.id === 'local' ? ctx.bigDbPath : undefined,
        now: ctx.bigNow,
      },
      { execArgv: run.capped ? [`--max-old-space-size=${capMiB}`] : [] },
    )
    const m = results[run.id]
    m.maxOldSpaceMiB = run.capped ? capMiB : null
    ctx.log(
      `  [memory] ${run.id}: ${fmtInt(m.total)} sessions at ${fmtInt(m.setsPerSec)}/s, heap peak ${fmtMiB(m.peakHeapUsed)} ` +
        `(live ${fmtMiB(m.peakLiveHeapUsed)}), RSS peak ${fmtMiB(m.peakRss)}, lost ${fmtInt(m.sessionsLost)}, ` +
        `read-back lost ${m.readBack.lost}/${m.readBack.samples} (${(msSince(t0) / 1000).toFixed(1)} s)`,
    )
  }
  const intact = (r) => r.sessionsLost === 0 && r.readBack.lost + r.readBack.different === 0
  const ours = results.local
  const capped = results['local-capped']
  const budget = 1.5 * cfg.maxBytes + ours.idleHeapUsed
  const baseline = cfg.baseline ? await runBaseline(cfg, ctx, ours) : null
  // NB: the RSS goal is judged on the worst of our runs (the A/B adds more of them).
  const oursRuns = baseline?.ours ?? [ours]
  const worst = oursRuns.reduce((a, b) => (b.peakRss - b.idleRss > a.peakRss - a.idleRss ? b : a))
  const rssBudget = 2 * cfg.maxBytes + worst.idleRss
  return {
    cfg,
    capMiB,
    results,
    baseline,
    goal: {
      rssBudget,
      rssWorst: worst,
      metRss: worst.peakRss <= rssBudget && oursRuns.every(intact),
      metSets: baseline === null ? null : baseline.setsRatio >= 0.9,
      heapBudget: budget,
      metPeakSampled: ours.peakHeapUsed <= budget && intact(ours),
      metPeakLive: ours.peakLiveHeapUsed <= budget && intact(ours),
      metCapped: capped.peakHeapUsed <= 1.5 * cfg.maxBytes + capped.idleHeapUsed && intact(capped),
    },
  }
}

export function memoryMarkdown(m) {
  const { cfg, results } = m
  const rows = [
    [
      'store',
      'sets/s',
      'heapUsed idle',
      'heapUsed peak (sampled)',
      'live heap peak (after GC)',
      'RSS peak',
      'sessions held',
      'lost',
      `read-back of ${fmtInt(cfg.samples)}: lost / different`,
    ],
  ]
  for (const run of RUNS) {
    const r = results[run.id]
    const name =
      run.id === 'local'
        ? `**${STORE_LABEL.local} (maxBytes ${fmtMiB(cfg.maxBytes)})**`
        : run.id === 'local-capped'
          ? `**${STORE_LABEL.local} (maxBytes ${fmtMiB(cfg.maxBytes)}), node --max-old-space-size=${r.maxOldSpaceMiB}**`
          : run.id === 'memorystore'
            ? `${STORE_LABEL.memorystore} (max ${fmtInt(r.memorystoreMax)} sessions ≈ ${fmtMiB(cfg.maxBytes)})`
            : `${STORE_LABEL.memory} (unbounded)`
    rows.push([
      name,
      fmtInt(r.setsPerSec),
      fmtMiB(r.idleHeapUsed),
      fmtMiB(r.peakHeapUsed),
      fmtMiB(r.peakLiveHeapUsed),
      fmtMiB(r.peakRss),
      fmtInt(r.held),
      fmtInt(r.sessionsLost),
      `${fmtInt(r.readBack.lost)} / ${fmtInt(r.readBack.different)}`,
    ])
  }
  const ours = results.local
  const g = m.goal
  const w = g.rssWorst
  const rssLines = [
    `- RSS goal (issue 15): peak ≤ 2 × maxBytes + idle RSS = ${fmtMiB(g.rssBudget)}, without Node flags, 0 lost: ` +
      `${verdict(g.metRss)} (${fmtMiB(w.peakRss)} peak over ${fmtMiB(w.idleRss)} idle, the worst of our runs). ` +
      `At that peak: V8 heap ${fmtMiB(w.atPeakRss.heapTotal)} allocated (${fmtMiB(w.atPeakRss.heapUsed)} used, ` +
      `idle ${fmtMiB(w.idleHeapTotal)}), array buffers ${fmtMiB(w.atPeakRss.arrayBuffers)} (the memory tier's payload region; ` +
      `idle ${fmtMiB(w.idleArrayBuffers)}), the rest (code, SQLite, malloc) ` +
      `${fmtMiB(w.peakRss - w.atPeakRss.heapTotal - w.atPeakRss.arrayBuffers)}.`,
  ]
  if (m.baseline) {
    const b = m.baseline
    const setsList = (runs) => runs.map((r) => fmtInt(r.setsPerSec)).join(', ')
    const rssList = (runs) => runs.map((r) => fmtMiB(r.peakRss)).join(', ')
    rssLines.push(
      `- Against the baseline (commit ${b.commit}, same flood, alternated ours / baseline): sets/s ours ${setsList(b.ours)}, ` +
        `baseline ${setsList(b.base)}: median ratio ${b.setsRatio.toFixed(2)}× (goal ≥ 0.90×: ${verdict(g.metSets)}); ` +
        `RSS peak ours ${rssList(b.ours)}, baseline ${rssList(b.base)} (idle ${fmtMiB(b.base[0].idleRss)}).`,
    )
  }
  const lines = [
    `${fmtInt(cfg.sessions)} sessions of ~${fmtInt(ours.meanSessionBytes)} B (${fmtMiB(cfg.sessions * ours.meanSessionBytes)} of JSON) ` +
      `in concurrent batches of ${fmtInt(cfg.batch)}; one fresh process per store.`,
    '',
    table(rows),
    '',
    `- Goal: peak heap ≤ 1.5 × maxBytes + idle heap = ${fmtMiB(m.goal.heapBudget)}, zero sessions lost: ` +
      `${verdict(m.goal.metPeakSampled)} on the sampled peak (${fmtMiB(ours.peakHeapUsed)}, includes garbage V8 has not collected yet), ` +
      `${verdict(m.goal.metPeakLive)} on the live peak (${fmtMiB(ours.peakLiveHeapUsed)}); with V8 told the budget ` +
      `(--max-old-space-size=${m.capMiB}) the sampled peak is ${fmtMiB(results['local-capped'].peakHeapUsed)} ` +
      `(${verdict(m.goal.metCapped)}) at ${fmtInt(results['local-capped'].setsPerSec)} sets/s instead of ${fmtInt(ours.setsPerSec)}.`,
    ...rssLines,
    `- Ours: memory tier at the end ${fmtMiB(ours.stats.memory.bytes)} in ${fmtInt(ours.stats.memory.entries)} sessions, ` +
      `${fmtInt(ours.stats.spills)} spilled, ${fmtInt(ours.held)} live rows on disk, ` +
      `${fmtInt(ours.stats.disk.transactions)} transactions; heap after the load and a full GC ${fmtMiB(ours.retainedHeapUsed)}.`,
    `- memorystore bounds a *count* (lru-cache 4 \`max\`), not bytes: it keeps the newest ${fmtInt(results.memorystore.memorystoreMax)} ` +
      `and silently drops the rest (${fmtNum((100 * results.memorystore.sessionsLost) / cfg.sessions, 1)}% lost). ` +
      'MemoryStore keeps everything in the heap and nothing across a restart.',
  ]
  return lines.join('\n')
}

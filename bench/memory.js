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

import { rmSync } from 'node:fs'
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

/** Sessions the store holds (without going through all(), which parses every one). */
function heldBy(c) {
  if (c.kind === 'memory') return Object.keys(c.store.sessions).length
  if (c.kind === 'memorystore') return c.store.store.itemCount
  return c.store.stats().disk.entries
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
      if (mem.rss > peakRss) peakRss = mem.rss
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
    const held = heldBy(c)
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
  return {
    cfg,
    capMiB,
    results,
    goal: {
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
    `- Ours: memory tier at the end ${fmtMiB(ours.stats.memory.bytes)} in ${fmtInt(ours.stats.memory.entries)} sessions, ` +
      `${fmtInt(ours.stats.spills)} spilled, ${fmtInt(ours.stats.disk.entries)} rows on disk, ` +
      `${fmtInt(ours.stats.disk.transactions)} transactions; heap after the load and a full GC ${fmtMiB(ours.retainedHeapUsed)}.`,
    `- memorystore bounds a *count* (lru-cache 4 \`max\`), not bytes: it keeps the newest ${fmtInt(results.memorystore.memorystoreMax)} ` +
      `and silently drops the rest (${fmtNum((100 * results.memorystore.sessionsLost) / cfg.sessions, 1)}% lost). ` +
      'MemoryStore keeps everything in the heap and nothing across a restart.',
  ]
  return lines.join('\n')
}

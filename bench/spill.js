// 4. Spill and cold start (TieredStore local mode; each task in a fresh process, bench/worker.js).
//
// Spill throughput. In local mode every acknowledged write is already on disk, so a spill only drops memory
// copies; the cycle starts inside the commit of the write that pushes memory over the high watermark and goes
// on in slices of about 1 ms on the next turns (bench/spill-stall.js measures the stall). Method: fill a 64 MiB store (every write
// awaited, no spill yet) to just under the high watermark, tracking the exact payload bytes the memory
// tier counts; time one `await store.set()` of a new session that crosses it, until memory is back at the low
// watermark. That is (one single-write round trip) + (the sliced spill cycle); the round trip is measured just before as the median of 31 same-size
// overwrites that move nothing, and subtracted. Rate = sessions moved (stats().spills) / cycle time. Done
// with the default watermarks (0.8 → 0.6: ~13k sessions per cycle) and wide ones (0.95 → 0.05: ~58k),
// `cycles` cycles each.
//
// Cold start and cold reads. The SQLite file of section 3 (N sessions written through a 64 MiB store) is
// opened by a fresh process: time from `new TieredStore()` to the first `get` resolving (a random session,
// from disk); also from process start (Node boot and module loading included). Then `coldReads` distinct
// random sessions are read once each (after 1,000 untimed ones): all from SQLite (checked with stats():
// one disk hit and one promotion each), each deep-compared with its re-generated value.
// NB: the file was just written, so it sits in the OS page cache: "cold" is cold for the tiers, not for
// the disk (dropping the page cache needs root and would disturb the machine).

import { mkdtempSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import { TieredStore } from 'tiered-session'
import { runTask } from './lib/procs.js'
import { fmtInt, fmtMs, fmtUs, table, verdict } from './lib/report.js'
import { bytesOf, MiB, rng, sessionFor, sidFor } from './lib/sessions.js'
import { median, msSince, nowNs, summarize } from './lib/stats.js'

export const GOALS = { spillPerSec: 50_000, coldP50Us: 50, firstReadMs: 1000 }

function check(condition, message) {
  if (!condition) throw new Error(`bench invariant failed: ${message}`)
}

async function writeRange(store, from, to, batch = 1000) {
  for (let start = from; start < to; start += batch) {
    const end = Math.min(to, start + batch)
    const sessions = []
    for (let i = start; i < end; i++) sessions.push(sessionFor(i))
    await Promise.all(sessions.map((s, k) => store.set(sidFor(start + k, 's'), s)))
  }
}

/** Worker task: spill cycles of a 64 MiB store with the given watermarks. */
export async function spillTask({ tmpRoot, maxBytes, highWatermark, lowWatermark, cycles }) {
  const dir = mkdtempSync(join(tmpRoot, 'spill-'))
  // NB: the timer only acts above the high watermark, which the crossing write handles inline; a long
  // interval keeps it from ever being the one that runs the measured cycle.
  const store = new TieredStore({
    memory: { maxBytes, highWatermark, lowWatermark },
    disk: { path: join(dir, 'sessions.db') },
    spillIntervalMs: 3_600_000,
  })
  const events = []
  store.on('spill', (result) => events.push(result))
  store.on('error', (error) => {
    throw error
  })
  const highBytes = Math.floor(maxBytes * highWatermark)
  const results = []
  let next = 0
  try {
    for (let c = 0; c < cycles; c++) {
      let bytes = store.stats().memory.bytes
      const from = next
      while (bytes + bytesOf(sessionFor(next)) <= highBytes) bytes += bytesOf(sessionFor(next++))
      await writeRange(store, from, next)
      const flushed = await store.flush()
      const before = store.stats()
      check(flushed.sessions === 0, `fill already spilled (${flushed.sessions})`)
      check(before.memory.bytes === bytes, `memory.bytes ${before.memory.bytes} != expected ${bytes}`)
      const probe = next - 1
      const baseline = []
      for (let k = 0; k < 31; k++) {
        const s = sessionFor(probe)
        const t0 = nowNs()
        await store.set(sidFor(probe, 's'), s)
        baseline.push(msSince(t0))
      }
      const crossing = sessionFor(next)
      const t0 = nowNs()
      await store.set(sidFor(next, 's'), crossing)
      // NB: the cycle runs in slices of about 1 ms with the event loop free between them: the crossing write
      // runs the first; the rest follow on the next turns. The cycle ends at the low watermark.
      const lowBytes = Math.floor(maxBytes * lowWatermark)
      while (store.stats().memory.bytes > lowBytes) await new Promise((resolve) => setImmediate(resolve))
      const crossMs = msSince(t0)
      next++
      const after = store.stats()
      const moved = after.spills - before.spills
      check(moved > 0, 'the crossing write spilled nothing')
      const baselineMs = median(baseline)
      const cycleMs = Math.max(crossMs - baselineMs, 1e-6)
      results.push({
        sessionsMoved: moved,
        crossingWriteMs: crossMs,
        baselineWriteMs: baselineMs,
        cycleMs,
        sessionsPerSec: moved / (cycleMs / 1000),
      })
    }
    return {
      maxBytes,
      highWatermark,
      lowWatermark,
      cycles: results,
      sessionsPerSec: median(results.map((r) => r.sessionsPerSec)),
      cycleMs: median(results.map((r) => r.cycleMs)),
      sessionsMoved: median(results.map((r) => r.sessionsMoved)),
      spillEvents: events.length,
    }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Worker task: open the big file, first read, then cold reads. */
export async function coldStartTask({ dbPath, total, coldReads, maxBytes, now }) {
  const t0 = nowNs()
  const store = new TieredStore({ memory: { maxBytes }, disk: { path: dbPath } })
  const constructedMs = msSince(t0)
  const r = rng(777)
  const first = Math.floor(r() * total)
  const got = await store.get(sidFor(first, 'm'))
  const firstReadMs = msSince(t0)
  const sinceProcessStartMs = performance.now()
  check(isDeepStrictEqual(got, sessionFor(first, now)), 'the first read did not return the session')
  try {
    // Distinct random indexes other than the first one read: a partial Fisher-Yates over [0, total).
    const need = Math.min(total - 1, coldReads + 1000)
    const swapped = new Map()
    const sids = []
    for (let k = 0; sids.length < need && k < total; k++) {
      const j = k + Math.floor(r() * (total - k))
      const picked = swapped.get(j) ?? j
      swapped.set(j, swapped.get(k) ?? k)
      if (picked !== first) sids.push(picked)
    }
    for (let k = 0; k < 1000; k++) await store.get(sidFor(sids[k], 'm'))
    const before = store.stats()
    const samples = new Float64Array(coldReads)
    let failures = 0
    for (let k = 0; k < coldReads; k++) {
      const i = sids[1000 + k]
      const sid = sidFor(i, 'm')
      const t1 = nowNs()
      const s = await store.get(sid)
      samples[k] = Number(nowNs() - t1) / 1000
      if (!isDeepStrictEqual(s, sessionFor(i, now))) failures++
    }
    const after = store.stats()
    return {
      rows: after.disk.entries,
      constructedMs,
      firstReadMs,
      sinceProcessStartMs,
      cold: {
        ...summarize(samples),
        diskHits: after.hits.disk - before.hits.disk,
        memoryHits: after.hits.memory - before.hits.memory,
        promotions: after.promotions - before.promotions,
        failures,
      },
    }
  } finally {
    await store.close()
  }
}

export async function runSpill(cfg, ctx) {
  const spills = {}
  for (const [name, wm] of [
    ['default', { highWatermark: 0.8, lowWatermark: 0.6 }],
    ['wide', { highWatermark: 0.95, lowWatermark: 0.05 }],
  ]) {
    spills[name] = await runTask('spill', {
      tmpRoot: ctx.tmpRoot,
      maxBytes: cfg.maxBytes,
      cycles: cfg.cycles,
      ...wm,
    })
    ctx.log(
      `  [spill] ${name} watermarks: ${fmtInt(spills[name].sessionsPerSec)} sessions/s, ${fmtMs(spills[name].cycleMs)} ms per cycle of ~${fmtInt(spills[name].sessionsMoved)}`,
    )
  }
  let cold = null
  if (ctx.bigDbPath) {
    cold = await runTask('coldstart', {
      dbPath: ctx.bigDbPath,
      total: cfg.sessions,
      coldReads: cfg.coldReads,
      maxBytes: cfg.maxBytes,
      now: ctx.bigNow,
    })
    ctx.log(
      `  [coldstart] ${fmtInt(cold.rows)} rows: first read after ${fmtMs(cold.firstReadMs)} ms; cold read p50 ${fmtUs(cold.cold.p50)} µs p99 ${fmtUs(cold.cold.p99)} µs`,
    )
  }
  const d = spills.default
  return {
    cfg,
    spills,
    cold,
    goals: {
      spill: d.sessionsPerSec >= GOALS.spillPerSec,
      coldP50: cold === null ? null : cold.cold.p50 <= GOALS.coldP50Us,
      firstRead: cold === null ? null : cold.firstReadMs <= GOALS.firstReadMs,
    },
  }
}

export function spillMarkdown(s) {
  const { default: d, wide: w } = s.spills
  const rows = [['figure', 'value', 'goal', '']]
  rows.push([
    `spill throughput, default watermarks 0.8 → 0.6 of ${fmtInt(d.maxBytes / MiB)} MiB (~${fmtInt(d.sessionsMoved)} sessions per cycle)`,
    `${fmtInt(d.sessionsPerSec)} sessions/s`,
    `≥ ${fmtInt(GOALS.spillPerSec)}/s`,
    verdict(s.goals.spill),
  ])
  rows.push([
    `spill throughput, wide watermarks 0.95 → 0.05 (~${fmtInt(w.sessionsMoved)} per cycle)`,
    `${fmtInt(w.sessionsPerSec)} sessions/s`,
    '',
    '',
  ])
  rows.push([
    'whole spill cycle, run at once (default / wide)',
    `${fmtMs(d.cycleMs)} / ${fmtMs(w.cycleMs)} ms`,
    '',
    '',
  ])
  if (s.cold) {
    const c = s.cold
    rows.push([
      `cold read (SQLite → promote) p50 / p99, ${fmtInt(c.cold.n)} reads on a ${fmtInt(c.rows)}-session file`,
      `${fmtUs(c.cold.p50)} / ${fmtUs(c.cold.p99)} µs`,
      `p50 ≤ ${GOALS.coldP50Us} µs`,
      verdict(s.goals.coldP50),
    ])
    rows.push([
      `first read on a ${fmtInt(c.rows)}-session file: from \`new TieredStore()\` (from process start)`,
      `${fmtMs(c.firstReadMs)} ms (${fmtMs(c.sinceProcessStartMs, 0)} ms)`,
      `≤ ${fmtInt(GOALS.firstReadMs)} ms`,
      verdict(s.goals.firstRead),
    ])
  }
  const notes = [
    '- These cycles run whole (`flush()`): the "stall" is a whole cycle. In the app a cycle moves sessions in slices of about 1 ms and yields between them; `node --expose-gc bench/spill-stall.js` measures that.',
  ]
  if (s.cold)
    notes.push(
      `- Cold reads: ${fmtInt(s.cold.cold.diskHits)} disk hits, ${fmtInt(s.cold.cold.promotions)} promotions, ${s.cold.cold.failures} failures. The file sat in the OS page cache (just written): cold for the tiers, not for the disk.`,
    )
  return [table(rows, 'lrrl'), '', ...notes].join('\n')
}

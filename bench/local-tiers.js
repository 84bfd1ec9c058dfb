// Local-mode benchmark of tiered-session: memory tier (lru-cache) over the SQLite disk tier.
// Run with `npm run bench:local` (builds dist/, then runs this file). Uses only the public API.
//
// Layout: the parent process forks one fresh child per phase (with --expose-gc, so idle/retained heap
// figures are taken after a full GC and one phase's garbage or RSS never leaks into the next). Every
// SQLite file lives in its own mkdtemp() directory under one mkdtemp() root in os.tmpdir(); all of it
// is deleted at the end. The parent prints a markdown table and writes bench/results/local-tiers-<ts>.json.
//
// Sessions are ~1 KiB of JSON shaped like a logged-in shopper (cookie, userId, csrf token, a cart of
// 3-5 items with sku/qty/price, timestamps, shipping, ...), generated deterministically from their
// index with a seeded PRNG, so the bench can re-create the expected value for a read-back check without
// keeping 200,000 objects alive (which would pollute the heap figures).
//
// 1. Spill throughput. In local mode every acknowledged write is already on disk, so a spill only drops
//    memory copies. A spill cycle is synchronous and runs *inside the commit* of the write that pushes
//    memory over the high watermark (TierManager#afterMemoryGrew), so timing `flush()` afterwards would
//    measure nothing: the cycle has already run. Method: fill the store (all writes awaited and flushed,
//    stats().spills unchanged) to just under the high watermark, computing the exact payload bytes the
//    memory tier counts; then time one `await store.set()` of a new session that crosses it. That time
//    is (one single-write round trip: setImmediate + 1-row transaction) + (the spill cycle). The
//    single-write round trip is measured just before as the median of 31 same-size overwrites that
//    move nothing, and subtracted. Sessions moved = stats().spills after - before (cross-checked with
//    the 'spill' event). Rate = moved / (crossing write - baseline). Done for wide watermarks
//    (0.95 -> 0.05 of 64 MiB: ~58k sessions per cycle) and for the defaults (0.8 -> 0.6: ~13k per
//    cycle), 3 cycles each (refilling to just under the watermark between cycles). The cycle time is
//    also the event-loop stall a request would see, so it is reported as such.
// 2. Cold/hot reads. 100k sessions written to a 16 MiB store (default watermarks): the oldest ~87k are
//    on disk only. 20,000 timed `await store.get(sid)` of distinct random disk-only sids (after 1,000
//    untimed warm-up reads), each timed with process.hrtime.bigint(); stats() deltas must show exactly
//    one disk hit + one promotion per read and no memory hit. Hot: 10,000 timed reads of 2,000 sids just
//    promoted (5 passes, shuffled); stats() must show memory hits only. "Cold" is cold for the tiers:
//    the SQLite file (~100 MiB) sits in the OS page cache here, so this is not a cold-disk-cache figure.
// 3. Bounded memory. maxBytes 2 MiB, then 16 MiB (one fresh process each): 200,000 sessions written in
//    200 concurrent batches of 1,000 (Promise.all). heapUsed / rss / stats().memory.bytes are sampled
//    after every batch, outside the timed region (stats() runs a SELECT count(*)). Throughput = sessions
//    / summed batch time (the inline spill cycles included). Then 2,000 random sids are read back and
//    deep-compared to their re-generated value; the failure count must be 0.

import { execFileSync, fork } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { TieredStore } from 'tiered-session'

const SELF = fileURLToPath(import.meta.url)
const BENCH_DIR = dirname(SELF)
const MiB = 1024 * 1024
const GOALS = { spillPerSec: 50_000, coldP50Us: 50 }

// ---------------------------------------------------------------------------------------------------------
// Session generator (deterministic per index)

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

// One expiry for the whole process (express-session would store cookie.expires as an ISO string in JSON).
const NOW = Date.now()
const EXPIRES = new Date(NOW + 86_400_000).toISOString()

/** The session with index i: ~1 KiB of JSON (932-1142 bytes, mean ~1038). JSON-pure, so it round-trips. */
function sessionFor(i) {
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
  const loginAt = NOW - Math.floor(r() * 3_600_000)
  return {
    cookie: {
      originalMaxAge: 86_400_000,
      expires: EXPIRES,
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

const sidFor = (i) => `bench-${i.toString(36).padStart(6, '0')}-${(Math.imul(i, 40503) >>> 0).toString(36)}`

/** Payload bytes exactly as the memory tier counts them (UTF-8 of the JSON text). */
const bytesOf = (session) => Buffer.byteLength(JSON.stringify(session), 'utf8')

// ---------------------------------------------------------------------------------------------------------
// Helpers

const nowNs = () => process.hrtime.bigint()
const msSince = (t0) => Number(nowNs() - t0) / 1e6

function percentile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

function summarize(samplesUs) {
  const sorted = Float64Array.from(samplesUs).sort()
  let sum = 0
  for (const v of sorted) sum += v
  return {
    samples: sorted.length,
    p50Us: percentile(sorted, 50),
    p90Us: percentile(sorted, 90),
    p99Us: percentile(sorted, 99),
    p999Us: percentile(sorted, 99.9),
    maxUs: sorted[sorted.length - 1],
    meanUs: sum / sorted.length,
  }
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}

function shuffle(array, r) {
  for (let i = array.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    const t = array[i]
    array[i] = array[j]
    array[j] = t
  }
  return array
}

function fullGc() {
  if (typeof globalThis.gc === 'function') {
    globalThis.gc()
    globalThis.gc()
  }
}

function check(condition, message) {
  if (!condition) throw new Error(`bench invariant failed: ${message}`)
}

function dirBytes(dir) {
  let total = 0
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size
  return total
}

/** Opens a store on a fresh mkdtemp() directory; `done()` closes it and deletes the directory. */
function openStore(root, options) {
  const dir = mkdtempSync(join(root, 'store-'))
  const store = new TieredStore({ ...options, disk: { path: join(dir, 'sessions.db') } })
  store.on('error', (error) => {
    throw error
  })
  return {
    store,
    dir,
    async done() {
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Writes sessions [from, to) in concurrent batches; returns the summed batch time in ms. */
async function writeRange(store, from, to, batch = 1000) {
  let ms = 0
  for (let start = from; start < to; start += batch) {
    const end = Math.min(to, start + batch)
    const sessions = []
    for (let i = start; i < end; i++) sessions.push(sessionFor(i))
    const t0 = nowNs()
    await Promise.all(sessions.map((s, k) => store.set(sidFor(start + k), s)))
    ms += msSince(t0)
  }
  return ms
}

// ---------------------------------------------------------------------------------------------------------
// Phase 1: spill throughput

async function phaseSpill(root, { label, maxBytes, highWatermark, lowWatermark, cycles }) {
  const { store, dir, done } = openStore(root, {
    memory: { maxBytes, highWatermark, lowWatermark },
    // NB: the timer only acts above the high watermark, which the crossing write handles inline; a long
    // interval keeps it from ever being the one that runs the measured cycle.
    spillIntervalMs: 3_600_000,
  })
  const events = []
  store.on('spill', (result) => events.push(result))
  const highBytes = Math.floor(maxBytes * highWatermark)
  const results = []
  let next = 0
  let fillSessions = 0
  let fillMs = 0
  try {
    for (let c = 0; c < cycles; c++) {
      // Fill to just under the high watermark, tracking the exact bytes the memory tier will hold.
      let bytes = store.stats().memory.bytes
      const from = next
      while (bytes + bytesOf(sessionFor(next)) <= highBytes) bytes += bytesOf(sessionFor(next++))
      // The crossing session must be a new one that pushes memory over the watermark.
      check(bytes + bytesOf(sessionFor(next)) > highBytes, 'crossing session does not cross')
      fillMs += await writeRange(store, from, next)
      fillSessions += next - from
      const flushed = await store.flush()
      const before = store.stats()
      check(flushed.sessions === 0, `fill already spilled (${flushed.sessions})`)
      check(before.memory.bytes === bytes, `memory.bytes ${before.memory.bytes} != expected ${bytes}`)

      // Baseline: one awaited single write that moves nothing (same-size overwrite of a resident session).
      const probe = next - 1
      const baseline = []
      for (let k = 0; k < 31; k++) {
        const s = sessionFor(probe)
        const t0 = nowNs()
        await store.set(sidFor(probe), s)
        baseline.push(msSince(t0))
      }
      const mid = store.stats()
      check(mid.spills === before.spills && mid.memory.bytes === bytes, 'baseline writes changed memory')

      // The crossing write: its commit runs the spill cycle synchronously.
      const crossing = sessionFor(next)
      const eventsBefore = events.length
      const t0 = nowNs()
      await store.set(sidFor(next), crossing)
      const crossMs = msSince(t0)
      next++
      const after = store.stats()
      const moved = after.spills - before.spills
      check(moved > 0, 'the crossing write spilled nothing')
      check(
        events.length === eventsBefore + 1,
        `expected one spill event, got ${events.length - eventsBefore}`,
      )
      check(events[events.length - 1].sessions === moved, 'spill event and stats().spills disagree')
      const baselineMs = median(baseline)
      const cycleMs = Math.max(crossMs - baselineMs, 1e-6)
      results.push({
        cycle: c + 1,
        sessionsMoved: moved,
        bytesMoved: events[events.length - 1].bytes,
        memoryBytesBefore: bytes,
        memoryBytesAfter: after.memory.bytes,
        crossingWriteMs: crossMs,
        baselineWriteMs: baselineMs,
        cycleMs,
        sessionsPerSec: moved / (cycleMs / 1000),
      })
    }
    const final = store.stats()
    return {
      label,
      maxBytes,
      highWatermark,
      lowWatermark,
      cycles: results,
      medianSessionsPerSec: median(results.map((r) => r.sessionsPerSec)),
      medianCycleMs: median(results.map((r) => r.cycleMs)),
      medianSessionsMoved: median(results.map((r) => r.sessionsMoved)),
      fillWithoutSpill: {
        sessions: fillSessions,
        ms: fillMs,
        sessionsPerSec: fillSessions / (fillMs / 1000),
      },
      diskEntries: final.disk.entries,
      diskFileBytes: dirBytes(dir),
    }
  } finally {
    await done()
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 2: cold (disk) and hot (memory) reads

async function phaseReads(root) {
  const total = 100_000
  const maxBytes = 16 * MiB
  const { store, dir, done } = openStore(root, { memory: { maxBytes } })
  const r = rng(12345)
  try {
    const writeMs = await writeRange(store, 0, total)
    await store.flush()
    const start = store.stats()
    // Memory holds at most maxBytes / ~932 bytes = ~18k sessions, all among the most recently written;
    // every sid below `coldLimit` has been spilled and is on disk only.
    const coldLimit = total - Math.ceil(maxBytes / 900) - 1000
    check(start.memory.entries < total - coldLimit, 'memory holds more than expected')
    const order = shuffle(
      Array.from({ length: coldLimit }, (_, i) => i),
      r,
    )
    const warmup = 1000
    const samples = 20_000
    let failures = 0
    for (let k = 0; k < warmup; k++) await store.get(sidFor(order[k]))
    const coldUs = new Float64Array(samples)
    const before = store.stats()
    for (let k = 0; k < samples; k++) {
      const i = order[warmup + k]
      const sid = sidFor(i)
      const t0 = nowNs()
      const got = await store.get(sid)
      coldUs[k] = Number(nowNs() - t0) / 1000
      if (!isDeepStrictEqual(got, sessionFor(i))) failures++
    }
    const after = store.stats()
    const cold = {
      ...summarize(coldUs),
      diskHits: after.hits.disk - before.hits.disk,
      memoryHits: after.hits.memory - before.hits.memory,
      promotions: after.promotions - before.promotions,
      misses: after.misses - before.misses,
      spillsDuringReads: after.spills - before.spills,
      failures,
    }
    check(cold.diskHits === samples && cold.promotions === samples, 'cold reads were not all disk hits')
    check(cold.memoryHits === 0 && cold.misses === 0, 'a cold read hit memory or missed')

    // Hot: the 2,000 sessions promoted last are the most recently used, far inside the memory budget.
    const hotSet = order.slice(warmup + samples - 2000, warmup + samples)
    for (const i of hotSet) await store.get(sidFor(i))
    const hotBefore = store.stats()
    const hotUs = new Float64Array(5 * hotSet.length)
    let n = 0
    for (let pass = 0; pass < 5; pass++) {
      for (const i of shuffle([...hotSet], r)) {
        const sid = sidFor(i)
        const t0 = nowNs()
        await store.get(sid)
        hotUs[n++] = Number(nowNs() - t0) / 1000
      }
    }
    const hotAfter = store.stats()
    const hot = {
      ...summarize(hotUs),
      memoryHits: hotAfter.hits.memory - hotBefore.hits.memory,
      diskHits: hotAfter.hits.disk - hotBefore.hits.disk,
    }
    check(hot.memoryHits === n && hot.diskHits === 0, 'hot reads were not all memory hits')

    // stats() cost: it runs SELECT count(*) over the whole table on every call.
    const statsUs = []
    for (let k = 0; k < 20; k++) {
      const t0 = nowNs()
      store.stats()
      statsUs.push(Number(nowNs() - t0) / 1000)
    }
    return {
      sessions: total,
      maxBytes,
      writeSessionsPerSec: total / (writeMs / 1000),
      memoryEntriesAtStart: start.memory.entries,
      cold,
      hot,
      statsCallUs: { rows: total, median: median(statsUs) },
      diskFileBytes: dirBytes(dir),
    }
  } finally {
    await done()
  }
}

// ---------------------------------------------------------------------------------------------------------
// Phase 3: bounded memory

async function phaseMemory(root, { maxBytes }) {
  const total = 200_000
  const batch = 1000
  const { store, dir, done } = openStore(root, { memory: { maxBytes } })
  try {
    fullGc()
    const idle = process.memoryUsage()
    let peakHeap = idle.heapUsed
    let peakRss = idle.rss
    let peakMemoryBytes = 0
    let writeMs = 0
    let statsMs = 0
    for (let start = 0; start < total; start += batch) {
      const sessions = []
      for (let i = start; i < start + batch; i++) sessions.push(sessionFor(i))
      const t0 = nowNs()
      await Promise.all(sessions.map((s, k) => store.set(sidFor(start + k), s)))
      writeMs += msSince(t0)
      const mem = process.memoryUsage()
      if (mem.heapUsed > peakHeap) peakHeap = mem.heapUsed
      if (mem.rss > peakRss) peakRss = mem.rss
      const t1 = nowNs()
      const bytes = store.stats().memory.bytes
      statsMs += msSince(t1)
      if (bytes > peakMemoryBytes) peakMemoryBytes = bytes
    }
    await store.flush()
    const end = store.stats()
    fullGc()
    const retained = process.memoryUsage()

    const r = rng(maxBytes)
    let failures = 0
    let missing = 0
    for (let k = 0; k < 2000; k++) {
      const i = Math.floor(r() * total)
      const got = await store.get(sidFor(i))
      if (got === undefined) missing++
      if (!isDeepStrictEqual(got, sessionFor(i))) failures++
    }
    return {
      maxBytes,
      sessions: total,
      batch,
      gcExposed: typeof globalThis.gc === 'function',
      setSessionsPerSec: total / (writeMs / 1000),
      writeMs,
      idleHeapUsed: idle.heapUsed,
      idleRss: idle.rss,
      peakHeapUsed: peakHeap,
      peakRss,
      retainedHeapUsedAfterGc: retained.heapUsed,
      memoryBytesEnd: end.memory.bytes,
      memoryEntriesEnd: end.memory.entries,
      peakMemoryBytes,
      spills: end.spills,
      diskEntries: end.disk.entries,
      transactions: end.disk.transactions,
      errors: end.errors,
      statsCallMsAvg: statsMs / (total / batch),
      verify: { samples: 2000, failures, missing },
      diskFileBytes: dirBytes(dir),
    }
  } finally {
    await done()
  }
}

// ---------------------------------------------------------------------------------------------------------
// Child entry point

const PHASES = {
  'spill-wide': (root) =>
    phaseSpill(root, {
      label: 'wide watermarks 0.95 -> 0.05',
      maxBytes: 64 * MiB,
      highWatermark: 0.95,
      lowWatermark: 0.05,
      cycles: 3,
    }),
  'spill-default': (root) =>
    phaseSpill(root, {
      label: 'default watermarks 0.8 -> 0.6',
      maxBytes: 64 * MiB,
      highWatermark: 0.8,
      lowWatermark: 0.6,
      cycles: 3,
    }),
  reads: (root) => phaseReads(root),
  'memory-2MiB': (root) => phaseMemory(root, { maxBytes: 2 * MiB }),
  'memory-16MiB': (root) => phaseMemory(root, { maxBytes: 16 * MiB }),
}

async function child(phase, root) {
  const t0 = nowNs()
  const result = await PHASES[phase](root)
  process.send({ ok: true, phase, result: { ...result, phaseSeconds: msSince(t0) / 1000 } }, () =>
    process.disconnect(),
  )
}

// ---------------------------------------------------------------------------------------------------------
// Parent: run every phase in its own process, print the table, write the JSON

function runChild(phase, root) {
  return new Promise((resolve, reject) => {
    const proc = fork(SELF, ['--phase', phase, root], { execArgv: ['--expose-gc'], stdio: 'inherit' })
    let message
    proc.on('message', (m) => {
      message = m
    })
    proc.on('error', reject)
    proc.on('exit', (code, signal) => {
      if (message?.ok && code === 0) resolve(message.result)
      else reject(new Error(`phase ${phase} failed (exit ${code ?? signal})`))
    })
  })
}

const fmtInt = (n) => Math.round(n).toLocaleString('en-US')
const fmtUs = (n) => `${n.toFixed(1)} µs`
const fmtMiB = (n) => `${(n / MiB).toFixed(1)} MiB`
const fmtMs = (n) => `${n.toFixed(2)} ms`
const verdict = (ok) => (ok ? 'yes' : '**no**')

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

function table(results) {
  const { 'spill-wide': wide, 'spill-default': def, reads } = results
  const mem = [results['memory-2MiB'], results['memory-16MiB']]
  const rows = [
    ['Figure', 'Value', 'Goal', 'Met'],
    [
      `Spill throughput, ${wide.label} of ${fmtMiB(wide.maxBytes)} (median of ${wide.cycles.length} cycles, ~${fmtInt(wide.medianSessionsMoved)} sessions each)`,
      `${fmtInt(wide.medianSessionsPerSec)} sessions/s`,
      `>= ${fmtInt(GOALS.spillPerSec)}/s`,
      verdict(wide.medianSessionsPerSec >= GOALS.spillPerSec),
    ],
    [
      `Spill throughput, ${def.label} of ${fmtMiB(def.maxBytes)} (median of ${def.cycles.length} cycles, ~${fmtInt(def.medianSessionsMoved)} sessions each)`,
      `${fmtInt(def.medianSessionsPerSec)} sessions/s`,
      `>= ${fmtInt(GOALS.spillPerSec)}/s`,
      verdict(def.medianSessionsPerSec >= GOALS.spillPerSec),
    ],
    [
      'Event-loop stall per spill cycle (wide / default watermarks, median)',
      `${fmtMs(wide.medianCycleMs)} / ${fmtMs(def.medianCycleMs)}`,
      '',
      '',
    ],
    [
      'Set throughput while filling, no spilling (64 MiB, batches of 1,000)',
      `${fmtInt(wide.fillWithoutSpill.sessionsPerSec)} sessions/s`,
      '',
      '',
    ],
    [
      `Cold read (disk -> promote) p50 / p99, ${fmtInt(reads.cold.samples)} samples`,
      `${fmtUs(reads.cold.p50Us)} / ${fmtUs(reads.cold.p99Us)}`,
      `p50 <= ${GOALS.coldP50Us} µs`,
      verdict(reads.cold.p50Us <= GOALS.coldP50Us),
    ],
    ['Cold read p99.9 / max', `${fmtUs(reads.cold.p999Us)} / ${fmtUs(reads.cold.maxUs)}`, '', ''],
    [
      `Hot read (memory) p50 / p99, ${fmtInt(reads.hot.samples)} samples`,
      `${fmtUs(reads.hot.p50Us)} / ${fmtUs(reads.hot.p99Us)}`,
      '',
      '',
    ],
    [
      `stats() call with ${fmtInt(reads.statsCallUs.rows)} rows on disk (median)`,
      fmtUs(reads.statsCallUs.median),
      '',
      '',
    ],
  ]
  for (const m of mem) {
    const name = fmtMiB(m.maxBytes)
    rows.push(
      [
        `[${name}] set throughput, 200,000 x ~1 KiB, batches of 1,000`,
        `${fmtInt(m.setSessionsPerSec)} sessions/s`,
        '',
        '',
      ],
      [
        `[${name}] heapUsed idle -> peak (after GC at end)`,
        `${fmtMiB(m.idleHeapUsed)} -> ${fmtMiB(m.peakHeapUsed)} (${fmtMiB(m.retainedHeapUsedAfterGc)})`,
        '',
        '',
      ],
      [`[${name}] RSS idle -> peak`, `${fmtMiB(m.idleRss)} -> ${fmtMiB(m.peakRss)}`, '', ''],
      [
        `[${name}] stats().memory.bytes end (peak) / maxBytes`,
        `${fmtInt(m.memoryBytesEnd)} (${fmtInt(m.peakMemoryBytes)}) / ${fmtInt(m.maxBytes)}`,
        '<= maxBytes',
        verdict(m.peakMemoryBytes <= m.maxBytes),
      ],
      [
        `[${name}] read-back of 2,000 random sessions: failures`,
        String(m.verify.failures),
        '0',
        verdict(m.verify.failures === 0),
      ],
    )
  }
  const widths = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)))
  const line = (row) => `| ${row.map((cell, c) => cell.padEnd(widths[c])).join(' | ')} |`
  return [
    line(rows[0]),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n')
}

async function parent() {
  const started = new Date()
  const t0 = nowNs()
  const root = mkdtempSync(join(os.tmpdir(), 'tiered-session-bench-'))
  const results = {}
  try {
    for (const phase of Object.keys(PHASES)) {
      const p0 = nowNs()
      results[phase] = await runChild(phase, root)
      console.error(`  ${phase}: ${(msSince(p0) / 1000).toFixed(1)} s`)
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
  const text = table(results)
  console.log(
    `\ntiered-session local tiers benchmark (node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model.trim()})\n`,
  )
  console.log(text)
  const outDir = join(BENCH_DIR, 'results')
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `local-tiers-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  const report = {
    benchmark: 'local-tiers',
    startedAt: started.toISOString(),
    totalSeconds: msSince(t0) / 1000,
    environment: {
      node: process.version,
      platform: `${os.platform()} ${os.release()}`,
      arch: os.arch(),
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model.trim(),
      totalMemBytes: os.totalmem(),
      git: gitInfo(),
    },
    goals: GOALS,
    session: {
      meanBytesOf1000: (() => {
        let sum = 0
        for (let i = 0; i < 1000; i++) sum += bytesOf(sessionFor(i))
        return sum / 1000
      })(),
    },
    results,
    table: text,
  }
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`)
  console.log(`\nresults: ${file} (total ${report.totalSeconds.toFixed(1)} s)`)
}

if (process.argv[2] === '--phase') {
  child(process.argv[3], process.argv[4]).catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
} else {
  parent().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}

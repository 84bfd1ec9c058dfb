// How long a spill cycle stalls the event loop, and how fast it moves sessions (after `npm run build`):
//
//   node --expose-gc bench/spill-stall.js [--cycles 3]
//
// A 64 MiB store (local mode; and shared mode, where a spill hands the sessions to the file's worker thread,
// which writes them into the SQLite spill cache)
// is filled to just under its high watermark, then one more write crosses it. From that write until memory is
// back at the low watermark, a ticker re-arms setImmediate as fast as it can: the longest gap between two ticks
// is the longest the event loop was blocked (what a request arriving then waits); perf_hooks'
// monitorEventLoopDelay (1 ms resolution) is reported beside it. Default watermarks (0.8 → 0.6) and wide ones
// (0.95 → 0.05). Rate = sessions moved / wall time of the whole (sliced) cycle.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { TieredStore } from 'tiered-session'
import { startRedis } from './lib/procs.js'
import { fmtInt, fmtMs, table } from './lib/report.js'
import { MiB, sessionFor, sidFor } from './lib/sessions.js'

const { values: args } = parseArgs({
  options: { cycles: { type: 'string', default: '3' }, modes: { type: 'string', default: 'local,shared' } },
})
const CYCLES = Number(args.cycles)
const MAX_BYTES = 64 * MiB

async function measure(mode, highWatermark, lowWatermark, redisUrl) {
  const dir = mkdtempSync(join(tmpdir(), 'ts-stall-'))
  const store = new TieredStore({
    memory: { maxBytes: MAX_BYTES, highWatermark, lowWatermark },
    disk: { path: join(dir, 's.db') },
    spillIntervalMs: 3_600_000,
    ...(mode === 'shared' ? { redis: { url: redisUrl }, prefix: `stall-${Date.now()}:` } : {}),
  })
  await store.ready()
  const high = MAX_BYTES * highWatermark
  const low = MAX_BYTES * lowWatermark
  const results = []
  let i = 0
  for (let c = 0; c < CYCLES; c++) {
    // Fill to just under the high watermark (in batches, awaited).
    while (store.stats().memory.bytes + 2 * 1100 < high) {
      const batch = []
      for (let k = 0; k < 500 && store.stats().memory.bytes + (k + 2) * 1100 < high; k++)
        batch.push(store.set(sidFor(i, 's'), sessionFor(i++)))
      await Promise.all(batch)
    }
    // NB: the fill's own garbage is collected first (node --expose-gc), so that a GC the fill made due does
    // not land in the window and count as the spill's.
    globalThis.gc?.()
    const spillsBefore = store.stats().spills
    // NB: no stats() inside the window: it counts the file's rows (a scan of the table, milliseconds on a
    // large file), which would be the bench's own block. The cycle's end is followed through its `spill`
    // events instead: memory is down at the low watermark once they moved what was above it.
    let spilledBytes = 0
    let spilling = false
    const onSpill = (result) => {
      spilling = true
      spilledBytes += result.bytes
    }
    store.on('spill', onSpill)
    const bytesBefore = store.stats().memory.bytes
    const histogram = monitorEventLoopDelay({ resolution: 1 })
    let maxGap = 0
    let last = performance.now()
    let ticking = true
    const tick = () => {
      const now = performance.now()
      maxGap = Math.max(maxGap, now - last)
      last = now
      if (ticking) setImmediate(tick)
    }
    histogram.enable()
    setImmediate(tick)
    const started = performance.now()
    // One write over the watermark, then whatever it takes to come down to the low one.
    let written = 0
    while (!spilling) {
      const session = sessionFor(i)
      written += Buffer.byteLength(JSON.stringify(session))
      await store.set(sidFor(i++, 's'), session)
    }
    while (bytesBefore + written - spilledBytes > low) await new Promise((resolve) => setImmediate(resolve))
    const wallMs = performance.now() - started
    ticking = false
    histogram.disable()
    store.off('spill', onSpill)
    // NB: the estimate above (a session's bytes are its JSON's) is checked once the window is closed.
    while (store.stats().memory.bytes > low) await new Promise((resolve) => setImmediate(resolve))
    const moved = store.stats().spills - spillsBefore
    results.push({ moved, wallMs, maxGapMs: maxGap, delayMaxMs: histogram.max / 1e6 })
  }
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  const worst = (key) => Math.max(...results.map((r) => r[key]))
  const moved = results.reduce((sum, r) => sum + r.moved, 0)
  const wall = results.reduce((sum, r) => sum + r.wallMs, 0)
  return {
    moved: moved / results.length,
    perSec: moved / (wall / 1000),
    maxGapMs: worst('maxGapMs'),
    delayMaxMs: worst('delayMaxMs'),
  }
}

const redis = await startRedis()
const rows = []
for (const mode of args.modes.split(',')) {
  for (const [name, high, low] of [
    ['default 0.8 → 0.6', 0.8, 0.6],
    ['wide 0.95 → 0.05', 0.95, 0.05],
  ]) {
    const r = await measure(mode, high, low, redis.url)
    console.error(`${mode} ${name}: ${JSON.stringify(r)}`)
    rows.push([mode, name, fmtInt(r.moved), fmtInt(r.perSec), fmtMs(r.maxGapMs), fmtMs(r.delayMaxMs)])
  }
}
console.log(`\nSpill cycles of a ${MAX_BYTES / MiB} MiB store, ${CYCLES} per row (worst of them)\n`)
console.log(
  table(
    [
      [
        'mode',
        'watermarks',
        'sessions per cycle',
        'sessions/s',
        'longest event-loop block (ms)',
        'monitorEventLoopDelay max (ms)',
      ],
      ...rows,
    ],
    ['l', 'l', 'r', 'r', 'r', 'r'],
  ),
)
await redis.stop()
process.exit(0)

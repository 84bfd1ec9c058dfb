// What SQLite's WAL checkpoints cost the writers, in process (after `npm run build`):
//
//   node bench/checkpoint-cost.js [--baseline DIR] [--rounds 3] [--seconds 6]
//
// A local-mode store (default options) takes awaited `set`s of ~1 KiB sessions from 10 concurrent writers
// (20,000 random ids, a user each) for --seconds. Reported per run: sets/s, latency p50/p99/max, the longest
// event-loop delay (monitorEventLoopDelay, 1 ms resolution), the WAL file's size at the end, and the
// checkpoints the worker ran. With --baseline (another checkout with its dist/ built, e.g. a git worktree of
// the commit before the checkpoint worker), each round runs ours then the baseline, each in its own process,
// and the medians are compared.

import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import { BENCH_DIR } from './lib/procs.js'
import { fmtRatio, table } from './lib/report.js'

const { values: args } = parseArgs({
  options: {
    baseline: { type: 'string' },
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '6' },
    child: { type: 'string' },
  },
})

/** One run in this process, on the package at `dist` (its index.js). */
async function run(dist, seconds) {
  const { TieredStore } = await import(dist)
  const dir = mkdtempSync(join(tmpdir(), 'ts-ckpt-'))
  const store = new TieredStore({ disk: { path: join(dir, 's.db') } })
  const pad = 'x'.repeat(900)
  const session = (i) => ({
    cookie: { expires: new Date(Date.now() + 3_600_000).toISOString() },
    userId: `u${i % 1000}`,
    pad,
    i,
  })
  const ids = Array.from({ length: 20_000 }, () => randomBytes(18).toString('base64url'))
  const delay = monitorEventLoopDelay({ resolution: 1 })
  delay.enable()
  const latencies = []
  let n = 0
  const started = performance.now()
  const writer = async () => {
    while (performance.now() - started < seconds * 1000) {
      const i = n++
      const t = performance.now()
      await store.set(ids[i % ids.length], session(i))
      latencies.push(performance.now() - t)
    }
  }
  await Promise.all(Array.from({ length: 10 }, writer))
  const elapsed = performance.now() - started
  delay.disable()
  const walBytes = statSync(join(dir, 's.db-wal')).size
  latencies.sort((a, b) => a - b)
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]
  const result = {
    setsPerSec: n / (elapsed / 1000),
    p50: at(0.5),
    p99: at(0.99),
    max: latencies.at(-1),
    loopMax: delay.max / 1e6,
    walMiB: walBytes / 2 ** 20,
    checkpoints: store.stats().disk?.checkpoints?.count ?? null,
  }
  await store.close()
  rmSync(dir, { recursive: true, force: true })
  return result
}

if (args.child !== undefined) {
  process.stdout.write(JSON.stringify(await run(args.child, Number(args.seconds))))
  process.exit(0)
}

const oursDist = join(BENCH_DIR, '..', 'dist', 'index.js')
const contenders = [['ours', oursDist]]
if (args.baseline !== undefined)
  contenders.push(['baseline', join(resolve(args.baseline), 'dist', 'index.js')])
const runs = Object.fromEntries(contenders.map(([name]) => [name, []]))
for (let round = 0; round < Number(args.rounds); round++) {
  for (const [name, dist] of contenders) {
    const out = execFileSync(process.execPath, [
      new URL(import.meta.url).pathname,
      '--child',
      dist,
      '--seconds',
      args.seconds,
    ])
    const r = JSON.parse(String(out))
    runs[name].push(r)
    console.error(`${name}: ${JSON.stringify(r)}`)
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fields = [
  ['sets/s', 'setsPerSec', (v) => Math.round(v).toLocaleString('en-US')],
  ['p50 ms', 'p50', (v) => v.toFixed(2)],
  ['p99 ms', 'p99', (v) => v.toFixed(2)],
  ['max ms', 'max', (v) => v.toFixed(1)],
  ['event-loop delay max ms', 'loopMax', (v) => v.toFixed(1)],
  ['WAL file at the end, MiB', 'walMiB', (v) => v.toFixed(1)],
]
const header = ['figure (median of runs)', ...contenders.map(([name]) => name)]
if (args.baseline !== undefined) header.push('ours ÷ baseline')
const rows = fields.map(([label, key, fmt]) => {
  const values = contenders.map(([name]) => median(runs[name].map((r) => r[key])))
  const row = [label, ...values.map(fmt)]
  if (args.baseline !== undefined) row.push(fmtRatio(values[0] / values[1]))
  return row
})
console.log(
  `\nLocal mode, 10 concurrent writers of ~1 KiB sessions, ${args.seconds} s per run, ${args.rounds} runs each (alternated)\n`,
)
console.log(table([header, ...rows], ['l', ...header.slice(1).map(() => 'r')]))

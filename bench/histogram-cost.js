// What the latency histograms, lifecycle events and tracing-channel checks cost per store operation: this
// checkout's dist/ against another checkout's (--baseline DIR, e.g. the commit before them), in one process,
// interleaved rounds (ours, theirs, theirs, ours, ...), median CPU ns per operation. Local mode, express-session's
// TieredStore API, no listener and no subscriber (the default).
//
//   npm run build && node bench/histogram-cost.js --baseline /tmp/base [--rounds 9]

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { TieredStore as Ours } from 'tiered-session'
import { median } from './lib/stats.js'

const { values: args } = parseArgs({
  options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '9' } },
})
if (args.baseline === undefined) throw new Error('--baseline DIR (a checkout with a built dist/) is required')
const { TieredStore: Theirs } = await import(join(args.baseline, 'dist', 'index.js'))
const ROUNDS = Number(args.rounds)
const DAY = 86_400_000
const session = (i) => ({
  cookie: { originalMaxAge: DAY, expires: new Date(Date.now() + DAY).toISOString(), path: '/' },
  userId: `user-${i}`,
  cart: Array.from({ length: 6 }, (_, j) => ({ sku: `sku-${i}-${j}`, qty: 1 })),
})

const tmp = mkdtempSync(join(os.tmpdir(), 'ts-histogram-cost-'))
const stores = {
  ours: new Ours({ disk: { path: join(tmp, 'ours.db') } }),
  theirs: new Theirs({ disk: { path: join(tmp, 'theirs.db') } }),
}
for (const store of Object.values(stores)) for (let i = 0; i < 100; i++) await store.set(`s${i}`, session(i))

/**
 * CPU ns per operation of `op` on `store`, over `n` operations: process CPU time (user + system), not wall
 * time, so that other processes taking the cores away (a shared machine) do not count.
 */
async function measure(store, op, n) {
  const start = process.cpuUsage()
  for (let i = 0; i < n; i++) await op(store, i)
  const used = process.cpuUsage(start)
  return ((used.user + used.system) * 1000) / n
}

const OPS = {
  'get (memory hit)': { n: 100_000, op: (store, i) => store.get(`s${i % 100}`) },
  'get (miss: memory, then disk)': { n: 50_000, op: (store, i) => store.get(`nope${i}`) },
  'touch (in memory)': { n: 50_000, op: (store, i) => store.touch(`s${i % 100}`, session(i % 100)) },
  'merge (disk transaction)': {
    n: 5_000,
    op: (store, i) => store.merge(`s${i % 100}`, { set: { n: String(i) }, unset: [] }),
  },
}

const results = {}
for (const [name, { n, op }] of Object.entries(OPS)) {
  const samples = { ours: [], theirs: [] }
  for (const who of ['ours', 'theirs']) await measure(stores[who], op, n / 5) // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? ['ours', 'theirs'] : ['theirs', 'ours']
    for (const who of order) samples[who].push(await measure(stores[who], op, n))
  }
  results[name] = { ours: median(samples.ours), theirs: median(samples.theirs) }
  process.stderr.write(
    `  ${name}: ours ${results[name].ours.toFixed(0)} ns, baseline ${results[name].theirs.toFixed(0)} ns\n`,
  )
}
for (const store of Object.values(stores)) await store.close()
rmSync(tmp, { recursive: true, force: true })

console.log(
  `| operation (local mode, ${ROUNDS} interleaved rounds, median) | baseline CPU ns/op | this CPU ns/op | difference |`,
)
console.log('|---|---:|---:|---:|')
for (const [name, { ours, theirs }] of Object.entries(results)) {
  const diff = ours - theirs
  console.log(
    `| ${name} | ${theirs.toFixed(0)} | ${ours.toFixed(0)} | ${diff >= 0 ? '+' : ''}${diff.toFixed(0)} ns (${((diff / theirs) * 100).toFixed(1)}%) |`,
  )
}

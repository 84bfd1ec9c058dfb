// What the latency histograms, lifecycle events and tracing-channel checks cost per store operation: this
// checkout's dist/ against another checkout's (--baseline DIR, e.g. the commit before them), in one process,
// interleaved rounds, median CPU ns per operation (bench/lib/cpu-cost.js). Local mode, express-session's
// TieredStore API, no listener and no subscriber (the default).
//
//   npm run build && node bench/histogram-cost.js --baseline /tmp/base [--rounds 9]

import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { TieredStore as Ours } from 'tiered-session'
import { measureStores } from './lib/cpu-cost.js'

const { values: args } = parseArgs({
  options: { baseline: { type: 'string' }, rounds: { type: 'string', default: '9' } },
})
if (args.baseline === undefined) throw new Error('--baseline DIR (a checkout with a built dist/) is required')
const { TieredStore: Theirs } = await import(join(args.baseline, 'dist', 'index.js'))
const ROUNDS = Number(args.rounds)

const tmp = mkdtempSync(join(os.tmpdir(), 'ts-histogram-cost-'))
const stores = {
  ours: new Ours({ disk: { path: join(tmp, 'ours.db') } }),
  theirs: new Theirs({ disk: { path: join(tmp, 'theirs.db') } }),
}
const results = await measureStores(stores, ROUNDS, (line) => process.stderr.write(line))
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

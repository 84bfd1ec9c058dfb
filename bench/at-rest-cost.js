// What hashed ids and payload encryption cost per store operation (issue 16): TieredStore in local mode with
// plain ids, with hashed ids (the default) and with hashed ids plus encryption, in one process, interleaved
// rounds, median CPU ns per operation (bench/lib/cpu-cost.js). The HTTP figures of the same variants come from
// `node bench/run.js --only http --http-only es-local,es-local+plain,es-local+enc,...`.
//
//   npm run build && node bench/at-rest-cost.js [--rounds 9]

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { TieredStore } from 'tiered-session'
import { measureStores } from './lib/cpu-cost.js'

const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '9' } } })
const ROUNDS = Number(args.rounds)

const tmp = mkdtempSync(join(os.tmpdir(), 'ts-at-rest-cost-'))
const open = (name, options) => new TieredStore({ disk: { path: join(tmp, `${name}.db`) }, ...options })
const stores = {
  plain: open('plain', { hashIds: false }),
  hashed: open('hashed', {}),
  encrypted: open('encrypted', { encryption: { keys: [randomBytes(32)] } }),
}
const results = await measureStores(stores, ROUNDS, (line) => process.stderr.write(line))
for (const store of Object.values(stores)) await store.close()
rmSync(tmp, { recursive: true, force: true })

const pct = (a, b) => `${a >= b ? '+' : ''}${(((a - b) / b) * 100).toFixed(1)}%`
console.log(
  `| operation (local mode, ${ROUNDS} interleaved rounds, median CPU ns/op) | plain ids | hashed ids | hashed ÷ plain | encrypted | encrypted ÷ hashed |`,
)
console.log('|---|---:|---:|---:|---:|---:|')
for (const [name, { plain, hashed, encrypted }] of Object.entries(results)) {
  console.log(
    `| ${name} | ${plain.toFixed(0)} | ${hashed.toFixed(0)} | ${pct(hashed, plain)} | ${encrypted.toFixed(0)} | ${pct(encrypted, hashed)} |`,
  )
}

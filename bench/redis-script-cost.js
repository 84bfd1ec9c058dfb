// Diagnostic (not part of `npm run bench`): what one write costs *inside* Redis, per command, for our Lua
// scripts (read from src/redis/scripts.ts) against the plain commands connect-redis sends.
//
//   node bench/redis-script-cost.js [--ops N]
//
// Starts its own redis-server on a free loopback port (killed by PID at the end), loads the scripts, runs
// each operation N times on 100 keys with a 1 KiB payload, one subscriber on the invalidation channel (as
// one instance of ours has), and prints Redis's own INFO commandstats: calls per op and µs per call (time
// spent executing the command; the network and protocol work around it is not included).

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import ts from 'typescript'
import { BENCH_DIR, startRedis } from './lib/procs.js'
import { table } from './lib/report.js'
import { sessionFor } from './lib/sessions.js'

const { values: args } = parseArgs({ options: { ops: { type: 'string', default: '20000' } } })
const N = Number(args.ops)

// The scripts are template literals in the TypeScript source; with its types stripped (TypeScript's own
// transpiler), it is evaluated as JavaScript.
const source = ts
  .transpileModule(readFileSync(join(BENCH_DIR, '..', 'src', 'redis', 'scripts.ts'), 'utf8'), {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  })
  .outputText.replace(/export const/g, 'const')
const SCRIPTS = new Function(`${source}; return { SET_SCRIPT, CAS_SCRIPT, INDEX_ADD_SCRIPT }`)()

async function commandStats(client) {
  const out = {}
  for (const line of (await client.info('commandstats')).split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line)
    if (m && m[1] !== 'info' && !m[1].startsWith('config'))
      out[m[1]] = { calls: Number(m[2]), usec: Number(m[3]) }
  }
  return out
}

const redis = await startRedis()
const client = new Redis(redis.url)
const subscriber = new Redis(redis.url)
try {
  await subscriber.subscribe('bench:invalidations')
  const sha = {}
  for (const [name, text] of Object.entries(SCRIPTS)) sha[name] = await client.script('LOAD', text)
  const payload = JSON.stringify(sessionFor(1))
  const expiresAt = Date.now() + 86_400_000
  let version = Date.now() * 1000
  // The ARGV every SET_SCRIPT call starts with: payload, expiresAt, userId, proposed version, channel, origin, sid.
  const setArgs = (i) => [
    payload,
    expiresAt,
    'user-1',
    ++version,
    'bench:invalidations',
    'origin',
    `sid${i % 100}`,
  ]
  const versions = new Map()
  const ops = {
    'GET (connect-redis get)': (i) => client.get(`plain:${i % 100}`),
    'SET EX (connect-redis set)': (i) => client.set(`plain:${i % 100}`, payload, 'EX', 86_400),
    'EXPIRE (connect-redis touch)': (i) => client.expire(`plain:${i % 100}`, 86_400),
    'SET_SCRIPT (our set)': (i) => client.evalsha(sha.SET_SCRIPT, 1, `h:${i % 100}`, ...setArgs(i)),
    // A new session of a logged-in user: the session and its user-index entry in one script (not on Cluster).
    'SET_SCRIPT with the index add (our set of a new logged-in session)': (i) =>
      client.evalsha(
        sha.SET_SCRIPT,
        2,
        `h:${i % 100}`,
        `u:{user-${i % 100}}`,
        ...setArgs(i),
        '',
        '',
        expiresAt + i,
      ),
    'CAS_SCRIPT (our merge / touch)': async (i) => {
      const key = `h:${i % 100}`
      const reply = await client.evalsha(
        sha.CAS_SCRIPT,
        1,
        key,
        payload,
        expiresAt,
        'user-1',
        versions.get(key) ?? (await client.hget(key, 'v')),
        ++version,
        'bench:invalidations',
        'origin',
        `sid${i % 100}`,
      )
      versions.set(key, String(reply[1]))
    },
    'INDEX_ADD_SCRIPT (a set or merge that changes the user or outruns the index)': (i) =>
      client.evalsha(sha.INDEX_ADD_SCRIPT, 1, `u:{user-${i % 100}}`, `sid${i % 100}`, expiresAt + i),
  }
  const rows = [['operation', 'Redis commands per op (µs per call)', 'µs inside Redis per op']]
  for (const [name, op] of Object.entries(ops)) {
    for (let i = 0; i < 100; i++) await op(i) // keys exist; versions known
    await client.config('RESETSTAT')
    for (let i = 0; i < N; i++) await op(i)
    const stats = await commandStats(client)
    // evalsha's time includes the commands it runs; count it alone when there is one.
    const top = stats.evalsha ?? Object.values(stats)[0]
    rows.push([
      name,
      Object.entries(stats)
        .map(([cmd, s]) => `${cmd} ${(s.calls / N).toFixed(0)} (${(s.usec / s.calls).toFixed(2)})`)
        .join(', '),
      (top.usec / N).toFixed(2),
    ])
  }
  console.log(`redis-server ${redis.version}, ${N} ops each, 1 subscriber on the channel\n`)
  console.log(table(rows, 'llr'))
} finally {
  client.disconnect()
  subscriber.disconnect()
  await redis.stop()
}

// Redis CPU per write as the fleet grows (issue: cost that does not grow with the fleet). Side by side in one
// run, on one redis-server of our own (so INFO cpu counts only this work):
//
//   node bench/fleet.js [--writes 5000] [--fleet 1,8,32,64] [--workloads new,shared,same-user]   (after `npm run build`)
//
// For each fleet size N, N real TieredStores (shared mode, each with its own connections and SQLite file) are
// open on the same Redis; one of them writes (awaited sets of ~1 KiB sessions). Two workloads:
//   - new:    every write is a session nobody else holds (a login): invalidations have no one to reach;
//   - shared: 200 hot sessions; before each write, two other instances read the session — the cost then
//             includes those reads, as connect-redis's row includes its GETs. Every write gives the session
//             another user (an index remove and add each time);
//   - same-user: the same, but each session keeps its user (a cart changing), as in most apps.
//   The readers change round robin, so an instance rarely reads a session twice between two of its writes
//   (a fleet behind a load balancer without sticky sessions).
// Ours runs twice: with client tracking (the default) and with the published channel. connect-redis 9 does
// the same sets (and GETs) on one client. Redis CPU = used_cpu_sys + used_cpu_user from INFO cpu.

import { rmSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RedisStore as RedisStore9 } from 'connect-redis'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
import { TieredStore } from 'tiered-session'
import { startRedis } from './lib/procs.js'
import { fmtRatio, fmtUs, table } from './lib/report.js'
import { refreshed, sessionFor, sidFor } from './lib/sessions.js'

const { values: args } = parseArgs({
  options: {
    writes: { type: 'string', default: '5000' },
    fleet: { type: 'string', default: '1,8,32,64' },
    workloads: { type: 'string', default: 'new,shared,same-user' },
  },
})
const WRITES = Number(args.writes)
const FLEET = args.fleet.split(',').map(Number)
const HOT = 200
const WORKLOADS = args.workloads.split(',')

/** The session the i-th write of a hot workload stores: another user's (`shared`), or its own, refreshed. */
const hotWrite = (workload, i) => (workload === 'shared' ? sessionFor(i) : refreshed(sessionFor(i % HOT)))

const redis = await startRedis()
const admin = new Redis(redis.url)

async function redisCpuUs() {
  const info = await admin.info('cpu')
  const get = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0)
  return (get('used_cpu_sys') + get('used_cpu_user')) * 1e6
}

/** Redis µs of CPU per write while `work` runs. */
async function measure(work) {
  const before = await redisCpuUs()
  await work()
  return ((await redisCpuUs()) - before) / WRITES
}

const p = (promise, ms = 30_000) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error('timeout')), ms))])

async function fleetOf(n, invalidation, prefix) {
  const dir = await mkdtemp(join(tmpdir(), 'ts-fleet-'))
  const stores = []
  for (let i = 0; i < n; i++) {
    const store = new TieredStore({
      prefix,
      disk: { path: join(dir, `i${i}.db`) },
      redis: { url: redis.url, invalidation },
    })
    store.on('error', () => undefined)
    stores.push(store)
  }
  await Promise.all(stores.map((s) => p(s.ready())))
  // Let every subscriber come up (tracking turned on) before measuring.
  for (let tries = 0; tries < 100 && !stores.every((s) => s.stats().redis?.connected); tries++)
    await new Promise((resolve) => setTimeout(resolve, 20))
  await new Promise((resolve) => setTimeout(resolve, 200))
  return {
    stores,
    close: async () => {
      for (const s of stores) await s.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function oursRun(n, invalidation, workload) {
  const prefix = `fleet-${invalidation}-${n}-${workload}:`
  const { stores, close } = await fleetOf(n, invalidation, prefix)
  const writer = stores[0]
  if (workload !== 'new') for (let k = 0; k < HOT; k++) await writer.set(sidFor(k, 'h'), sessionFor(k))
  const us = await measure(async () => {
    for (let i = 0; i < WRITES; i++) {
      if (workload === 'new') await writer.set(sidFor(i, `n${n}`), sessionFor(i))
      else {
        const sid = sidFor(i % HOT, 'h')
        if (n > 1) {
          await stores[1 + (i % (n - 1))].get(sid)
          await stores[1 + ((i + 7) % (n - 1))].get(sid)
        }
        await writer.set(sid, hotWrite(workload, i))
      }
    }
  })
  await close()
  return us
}

async function cr9Run(workload) {
  const client = createClient({ url: redis.url })
  await client.connect()
  const store = new RedisStore9({ client, prefix: `fleet-cr9-${workload}:` })
  const set = (sid, sess) =>
    new Promise((resolve, reject) => store.set(sid, sess, (e) => (e ? reject(e) : resolve())))
  const get = (sid) =>
    new Promise((resolve, reject) => store.get(sid, (e, s) => (e ? reject(e) : resolve(s))))
  const us = await measure(async () => {
    for (let i = 0; i < WRITES; i++) {
      if (workload === 'new') await set(sidFor(i, 'cr'), sessionFor(i))
      else {
        const sid = sidFor(i % HOT, 'h')
        await get(sid)
        await get(sid)
        await set(sid, hotWrite(workload, i))
      }
    }
  })
  await client.close()
  return us
}

const rows = []
for (const workload of WORKLOADS) {
  const cr9 = await cr9Run(workload)
  for (const n of FLEET) {
    const tracking = await oursRun(n, 'tracking', workload)
    const channel = await oursRun(n, 'channel', workload)
    console.error(
      `${workload} n=${n}: cr9 ${cr9.toFixed(1)} tracking ${tracking.toFixed(1)} channel ${channel.toFixed(1)}`,
    )
    rows.push([
      workload,
      String(n),
      fmtUs(cr9),
      `${fmtUs(tracking)} (${fmtRatio(tracking / cr9)})`,
      `${fmtUs(channel)} (${fmtRatio(channel / cr9)})`,
    ])
  }
}
console.log(
  `\nRedis CPU per write (µs, INFO cpu), ${WRITES.toLocaleString('en-US')} awaited writes of ~1 KiB sessions by one instance of N; Redis ${redis.version}\n`,
)
console.log(
  table(
    [
      ['workload', 'instances', 'connect-redis 9', 'ours, tracking (÷ cr9)', 'ours, channel (÷ cr9)'],
      ...rows,
    ],
    ['l', 'r', 'r', 'r', 'r'],
  ),
)
await admin.quit()
await redis.stop()
process.exit(0)

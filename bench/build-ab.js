// Two builds of TieredStore (local mode, or shared with --shared), each in a child process of its own, driven the
// way express-session drives a store, in alternated rounds; the figure is the median over rounds of the ratio of
// CPU µs per request (ours ÷ baseline) within each round. Adjacent short rounds: far less exposed to the
// machine's speed drifting than two HTTP runs (on this VM the same server's CPU per request moves by up to 2×
// between runs minutes apart). A build's CPU for a round runs from the start of that round to the start of its
// next one, so the background work it left behind (deferred touches, checkpoints) is billed to it, whenever it
// runs.
//
//   node bench/build-ab.js --baseline <checkout with a built dist/> [--mode read|write|new] [--sessions 1000]
//                          [--ops 10000] [--rounds 12] [--shared] [--profile <dir>]
//   node bench/build-ab.js --peer memory|memorystore|cr9|cr8 [--shared] [...]
//
// --peer: the baseline is that peer store (bench/lib/stores.js) instead of a second build of ours, driven the
// same way: our store's CPU per request against the store it replaces, with express-session's call pattern
// and none of the HTTP server's noise. With Redis in the run, each round also reports the redis-server's CPU
// (INFO cpu, read at each round's start and end; a deferred touch of ours that Redis runs during the peer's
// next round is billed to the peer: the table says so).
// --profile <dir>: both children run under --cpu-prof; summarize a profile with bench/profile.js.
//
// A request, 20 in flight (as 20 keep-alive connections would): read-mostly `read` is get, then touch (express-
// session's unmodified request), or set for every tenth; `write` is get then set (counter + 1); `new` is a set
// of a new ~1 KiB session. The cookie is express-session's own Cookie (maxAge one day), as it passes it.
// CPU: process.cpuUsage() of the child (every thread of it, the file's worker included). --shared: both stores
// in shared mode on one redis-server of their own (a free loopback port, killed at the end), each with its
// prefix; the Redis CPU is not counted.

import { fork } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import session from 'express-session'
import { Redis } from 'ioredis'
import { BENCH_DIR, startRedis, track, waitForEvent, withTimeout } from './lib/procs.js'
import { DAY_MS } from './lib/sessions.js'
import { median } from './lib/stats.js'
import { NEEDS_REDIS, openStore } from './lib/stores.js'

const IN_FLIGHT = 20

const call = (fn) => new Promise((res, rej) => fn((err, value) => (err ? rej(err) : res(value))))

function sessionOf(Cookie, i) {
  return {
    cookie: new Cookie({ maxAge: DAY_MS }),
    userId: `user-${i}`,
    cart: Array.from({ length: 6 }, (_, j) => ({
      sku: `sku-${i}-${j}`,
      qty: 1 + j,
      title: `item ${j} of the cart of user ${i} with a longer title`,
      price: 12.5 * j,
    })),
    counter: 0,
  }
}

/** The child: one build's store; runs a round of requests when told, and reports its CPU at each round's start. */
async function child(spec) {
  if (spec.peer !== undefined) {
    const peer = await openStore(spec.peer, {
      tmpRoot: spec.dir,
      redisUrl: spec.redisUrl,
      prefix: `ab-${spec.name}:`,
      memorystoreMax: 1_000_000,
    })
    return serve(spec, peer.store, () => peer.close())
  }
  const { TieredStore } = await import(spec.dist)
  const store = new TieredStore({
    disk: { path: join(spec.dir, 'sessions.db') },
    memory: { maxBytes: 64 * 1024 * 1024 },
    ...(spec.redisUrl === null ? {} : { prefix: `ab-${spec.name}:`, redis: { url: spec.redisUrl } }),
  })
  if (spec.redisUrl !== null)
    await withTimeout(
      waitForEvent(store, 'coherence', (c) => c?.live === true),
      10_000,
      'coherence',
    )
  return serve(spec, store, () => store.close())
}

/** Fills the store, then runs each round of requests it is told to, reporting its CPU at the round's start. */
async function serve(spec, store, close) {
  const { Cookie } = session
  const sids = Array.from({ length: spec.sessions }, (_, i) => `sid-${i}-${'x'.repeat(24)}`)
  for (let i = 0; i < sids.length; i++) await call((cb) => store.set(sids[i], sessionOf(Cookie, i), cb))
  let next = 0
  const lane = async (count, first) => {
    for (let k = first; k < count; k += IN_FLIGHT) {
      const n = next++
      if (spec.mode === 'new') {
        await call((cb) => store.set(`new-${n}-${'y'.repeat(20)}`, sessionOf(Cookie, n), cb))
        continue
      }
      const sid = sids[(n * 7919) % sids.length]
      const data = await call((cb) => store.get(sid, cb))
      const cookie = new Cookie(data.cookie)
      cookie.maxAge = DAY_MS
      data.cookie = cookie
      if (spec.mode === 'write' || k % 10 === 0) {
        data.counter++
        await call((cb) => store.set(sid, data, cb))
      } else await call((cb) => store.touch(sid, data, cb))
    }
  }
  process.on('message', async (msg) => {
    if (msg.type === 'round') {
      const cpu = process.cpuUsage()
      await Promise.all(Array.from({ length: IN_FLIGHT }, (_, first) => lane(msg.ops, first)))
      process.send({ type: 'done', cpuUs: cpu.user + cpu.system })
    } else if (msg.type === 'close') {
      const cpu = process.cpuUsage()
      await close()
      process.send({ type: 'closed', cpuUs: cpu.user + cpu.system }, () => process.exit(0))
    }
  })
  process.send({ type: 'ready' })
}

function reply(proc, type) {
  return new Promise((res, rej) => {
    const onMessage = (msg) => {
      if (msg.type !== type) return
      proc.off('message', onMessage)
      proc.off('exit', onExit)
      res(msg)
    }
    const onExit = (code) => rej(new Error(`bench/build-ab.js: a child exited (${code}) before '${type}'`))
    proc.on('message', onMessage)
    proc.once('exit', onExit)
  })
}

async function parent() {
  const { values: args } = parseArgs({
    options: {
      baseline: { type: 'string' },
      peer: { type: 'string' },
      mode: { type: 'string', default: 'read' },
      sessions: { type: 'string', default: '1000' },
      ops: { type: 'string', default: '10000' },
      rounds: { type: 'string', default: '12' },
      shared: { type: 'boolean', default: false },
      profile: { type: 'string' },
    },
  })
  if ((args.baseline === undefined) === (args.peer === undefined)) {
    console.error(
      'bench/build-ab.js: one of --baseline <checkout with a built dist/> or --peer <store> is required',
    )
    process.exit(2)
  }
  if (!['read', 'write', 'new'].includes(args.mode)) throw new Error(`--mode: unknown mode ${args.mode}`)
  const ops = Number(args.ops)
  const rounds = Number(args.rounds)
  const root = mkdtempSync(join(tmpdir(), 'build-ab-'))
  const redis = args.shared || NEEDS_REDIS.has(args.peer) ? await startRedis() : null
  const info = redis === null ? null : new Redis(redis.url)
  const redisCpuUs = async () => {
    const text = await info.info('cpu')
    const field = (name) => Number(new RegExp(`${name}:([0-9.]+)`).exec(text)?.[1] ?? Number.NaN)
    return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6
  }
  const builds = {
    baseline: args.peer === undefined ? join(resolve(args.baseline), 'dist', 'index.js') : null,
    ours: join(BENCH_DIR, '..', 'dist', 'index.js'),
  }
  const procs = {}
  try {
    for (const [name, dist] of Object.entries(builds)) {
      const spec = {
        name,
        dist,
        dir: mkdtempSync(join(root, `${name}-`)),
        mode: args.mode,
        sessions: Number(args.sessions),
        // NB: a peer store in the baseline's child; ours is shared only with --shared.
        redisUrl: name === 'ours' && !args.shared ? null : (redis?.url ?? null),
        ...(name === 'baseline' && args.peer !== undefined ? { peer: args.peer } : {}),
      }
      // NB: --profile: each child under --cpu-prof, in a directory of its own (its worker threads write theirs too).
      const execArgv =
        args.profile === undefined
          ? []
          : ['--cpu-prof', '--cpu-prof-dir', join(resolve(args.profile), `${name}-${Date.now()}`)]
      const proc = track(
        fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify(spec)], { execArgv }),
      )
      await reply(proc, 'ready')
      procs[name] = proc
    }
    // Each build's CPU at the start of each of its rounds (and at the end): a round is billed up to the next.
    const starts = { baseline: [], ours: [] }
    const redisUs = { baseline: [], ours: [] }
    const round = async (name) => {
      const before = info === null ? 0 : await redisCpuUs()
      procs[name].send({ type: 'round', ops })
      starts[name].push((await reply(procs[name], 'done')).cpuUs)
      if (info !== null) redisUs[name].push(((await redisCpuUs()) - before) / ops)
    }
    await round('baseline')
    await round('ours')
    for (let r = 0; r < rounds; r++)
      for (const name of r % 2 === 0 ? ['baseline', 'ours'] : ['ours', 'baseline']) await round(name)
    for (const name of ['baseline', 'ours']) {
      const exited = new Promise((res) => procs[name].once('exit', res))
      procs[name].send({ type: 'close' })
      starts[name].push((await reply(procs[name], 'closed')).cpuUs)
      // NB: let it exit on its own (a --cpu-prof run writes its profile then).
      await exited
    }
    // NB: starts[name][0] is the warm-up round's start; round r runs from starts[r + 1] to starts[r + 2].
    const per = (name) =>
      Array.from({ length: rounds }, (_, r) => (starts[name][r + 2] - starts[name][r + 1]) / ops)
    const base = per('baseline')
    const ours = per('ours')
    const ratios = ours.map((v, r) => v / base[r])
    const baseName = args.peer ?? 'baseline'
    console.log(
      `${args.mode}, ${args.shared ? 'shared' : 'local'}, ${args.sessions} sessions: ${baseName} ${median(base).toFixed(1)} µs, ` +
        `ours ${median(ours).toFixed(1)} µs of CPU per request; ours ÷ baseline, paired: ${median(ratios).toFixed(3)} ` +
        `(rounds: ${ratios.map((x) => x.toFixed(2)).join(' ')})`,
    )
    if (info !== null) {
      // NB: [0] is the warm-up round.
      const redisOf = (name) => median(redisUs[name].slice(1))
      console.log(
        `Redis CPU per request (median over rounds): ${baseName} ${redisOf('baseline').toFixed(1)} µs, ours ` +
          `${redisOf('ours').toFixed(1)} µs; server + Redis: ${baseName} ${(median(base) + redisOf('baseline')).toFixed(1)}, ` +
          `ours ${(median(ours) + redisOf('ours')).toFixed(1)} µs`,
      )
    }
  } finally {
    for (const proc of Object.values(procs)) if (proc.exitCode === null) proc.kill('SIGKILL')
    info?.disconnect()
    await redis?.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

if (process.argv[2] === '--child') await child(JSON.parse(process.argv[3]))
else await parent()

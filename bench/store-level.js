// 1. Store level (no HTTP): get of a hot session, get of a cold one, set, touch; ops/s and p50/p99.
//
// Every store is opened in this process (bench/lib/stores.js) and driven the way express-session drives a
// store: callback-style calls, one in flight, each timed alone with process.hrtime.bigint() (the session
// object is built before t0). ops/s = ops / (sum of the per-op times): the sequential throughput of the
// store call itself. p50/p99 are nearest-rank.
//
//   get hot   a session read in every loop (100 hot sessions round-robin); ours: a memory hit
//   get cold  a session written long before and never read since, each one read once; ours: spilled out of
//             a 2 MiB memory tier, so local mode reads it from SQLite (and promotes it), shared mode reads its
//             disk copy and checks its version in Redis. For the peers "cold" changes nothing physical
//             (MemoryStore/memorystore: one more object in a big map; Redis: same GET; files: page cache).
//   set       the session with lastSeenAt and cookie.expires (now + 1 day) refreshed
//   touch     cookie.expires = now + 1 day, as express-session passes it: the expiry grows every time, so our
//             store really writes (it skips a touch that would not extend the session)
//
// Each (contender, op) loop runs until `maxOps` ops or `budgetMs` of wall time, after an untimed warm-up
// (hot ops: one pass over the hot sids; cold: `coldWarmup` cold sids of its own). Contenders are rotated
// each round (a b c | b c a | ...); a figure is the median over the rounds. Evidence per loop: our stats()
// deltas (memory/disk/redis hits, writes) and Redis INFO commandstats (Redis commands per op).
//
// Two passes: every store with Redis on loopback, then the Redis-backed ones through a proxy that adds
// `delayMs` each way (bench/lib/proxy.js). Our own redis-server is started on a free port and killed at
// the end; the SQLite files and session-file-store directories live under the run's temp root.

import { Redis } from 'ioredis'
import { cpuMsOf, startRedis, waitForEvent, withTimeout } from './lib/procs.js'
import { startProxy } from './lib/proxy.js'
import { fmtInt, fmtRatio, fmtUs, table } from './lib/report.js'
import { MiB, meanSessionBytes, refreshed, sessionFor, sidFor } from './lib/sessions.js'
import { median, msSince, nowNs, percentile, ratio } from './lib/stats.js'
import { call, NEEDS_REDIS, openStore, STORE_LABEL } from './lib/stores.js'

const OPS = ['getHot', 'getCold', 'set', 'touch']
const OP_LABEL = { getHot: 'get hot', getCold: 'get cold', set: 'set', touch: 'touch' }
const LOOPBACK = ['memory', 'memorystore', 'file', 'local', 'shared', 'cr9', 'cr8']
const PROXIED = ['shared', 'cr9', 'cr8']
/** ours vs peer pairs reported as ratios. */
const PAIRS = [
  ['local', 'memory'],
  ['local', 'memorystore'],
  ['local', 'file'],
  ['shared', 'cr9'],
  ['shared', 'cr8'],
]
const OUR_MAX_BYTES = 2 * MiB
const HOT_BASE = 10_000_000 // hot sessions use indexes from here, cold ones from 0

/** `INFO commandstats` as { command: calls }. */
async function commandStats(admin) {
  const text = await admin.info('commandstats')
  const out = {}
  for (const line of text.split('\r\n')) {
    const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
    if (m) out[m[1]] = Number(m[2])
  }
  return out
}

function commandsBetween(before, after) {
  let n = 0
  for (const [cmd, calls] of Object.entries(after)) if (cmd !== 'info') n += calls - (before[cmd] ?? 0)
  return n
}

async function pingP50(client, count) {
  const us = []
  for (let k = 0; k < count; k++) {
    const t0 = nowNs()
    await client.ping()
    us.push(Number(nowNs() - t0) / 1000)
  }
  us.sort((a, b) => a - b)
  return percentile(us, 50)
}

function storeDelta(before, after) {
  if (before === null || after === null) return null
  return {
    memoryHits: after.hits.memory - before.hits.memory,
    diskHits: after.hits.disk - before.hits.disk,
    redisHits: after.hits.redis - before.hits.redis,
    misses: after.misses - before.misses,
    writes: after.writes - before.writes,
  }
}

/** Writes sessions [from, to) with `tag`, `limit` in flight. */
async function populate(c, tag, from, to, limit = 64) {
  let next = from
  const worker = async () => {
    while (next < to) {
      const i = next++
      await call(c.store, 'set', sidFor(i, tag), sessionFor(i))
    }
  }
  await Promise.all(Array.from({ length: limit }, worker))
}

/** One timed loop. Returns per-op samples (µs) and counts. */
async function loop(c, op, state, { maxOps, budgetMs }) {
  const samples = []
  let misses = 0
  const started = nowNs()
  for (let k = 0; k < maxOps; k++) {
    if (k % 16 === 0 && msSince(started) > budgetMs) break
    let sid
    let i
    if (op === 'getCold') {
      if (state.coldNext >= state.coldEnd) break
      i = state.coldNext++
      sid = sidFor(i, 'c')
    } else {
      i = HOT_BASE + (state.hotCursor++ % state.hot)
      sid = sidFor(i, 'h')
    }
    if (op === 'getHot' || op === 'getCold') {
      const t0 = nowNs()
      const got = await call(c.store, 'get', sid)
      samples.push(Number(nowNs() - t0) / 1000)
      if (got == null || got.userId !== `user-${i}`) misses++
    } else {
      const session = refreshed(sessionFor(i))
      const t0 = nowNs()
      await call(c.store, op, sid, session)
      samples.push(Number(nowNs() - t0) / 1000)
    }
  }
  return { samples, misses }
}

async function measure(c, op, state, cfg, admin, redisPid) {
  // Untimed warm-up.
  if (op === 'getCold') {
    const save = state.coldEnd
    state.coldEnd = Math.min(save, state.coldNext + cfg.coldWarmup)
    await loop(c, op, state, { maxOps: cfg.coldWarmup, budgetMs: Number.POSITIVE_INFINITY })
    state.coldEnd = save
  } else {
    await loop(c, op, state, { maxOps: state.hot, budgetMs: Number.POSITIVE_INFINITY })
  }
  const cmdBefore = admin ? await commandStats(admin) : null
  const statsBefore = c.stats()
  const redisCpuBefore = cpuMsOf(redisPid)
  const limits = op === 'getCold' ? { ...cfg, maxOps: Math.min(cfg.maxOps, cfg.coldOps) } : cfg
  const { samples, misses } = await loop(c, op, state, limits)
  const redisCpuMs = cpuMsOf(redisPid) - redisCpuBefore
  const statsAfter = c.stats()
  const cmdAfter = admin ? await commandStats(admin) : null
  const sorted = Float64Array.from(samples).sort()
  let sum = 0
  for (const v of samples) sum += v
  return {
    ops: samples.length,
    opsPerSec: samples.length / (sum / 1e6),
    p50Us: percentile(sorted, 50),
    p99Us: percentile(sorted, 99),
    maxUs: sorted[sorted.length - 1],
    misses,
    redisCommandsPerOp:
      admin && NEEDS_REDIS.has(c.kind) ? commandsBetween(cmdBefore, cmdAfter) / samples.length : null,
    // NB: /proc counts CPU in clock ticks (10 ms): below 10 ticks the figure would be noise.
    redisCpuUsPerOp: NEEDS_REDIS.has(c.kind)
      ? redisCpuMs >= 100
        ? (redisCpuMs * 1000) / samples.length
        : Number.NaN
      : null,
    store: storeDelta(statsBefore, statsAfter),
  }
}

async function runPass(pass, kinds, cfg, ctx, redis) {
  const url = pass.url
  const errors = []
  const contenders = []
  const admin = new Redis({ port: redis.port, host: '127.0.0.1', lazyConnect: false })
  const pinger = new Redis(url)
  const perRound = []
  const states = {}
  const coldPerRound = cfg.coldOps + cfg.coldWarmup
  // Ours keeps the most recent ~OUR_MAX_BYTES in memory: a margin of cold sessions written last is never read.
  const margin = Math.ceil(OUR_MAX_BYTES / 900) + 200
  const coldPool = cfg.rounds * coldPerRound + margin
  const memorystoreMax = Math.floor((64 * MiB) / meanSessionBytes())
  try {
    await withTimeout(
      Promise.all([waitForEvent(admin, 'ready'), waitForEvent(pinger, 'ready')]),
      5000,
      'redis clients',
    )
    for (const kind of kinds) {
      const c = await openStore(kind, {
        tmpRoot: ctx.tmpRoot,
        redisUrl: url,
        prefix: `bench:store:${pass.id}:${kind}:`,
        maxBytes: OUR_MAX_BYTES,
        memorystoreMax,
        errors,
      })
      contenders.push(c)
      const t0 = nowNs()
      await populate(c, 'c', 0, coldPool, pass.id === 'loopback' ? 64 : 256)
      await populate(c, 'h', HOT_BASE, HOT_BASE + cfg.hot, 1)
      if (c.store.flush) await c.store.flush()
      states[kind] = { hot: cfg.hot, hotCursor: 0, coldNext: 0, coldEnd: 0, populateMs: msSince(t0) }
      ctx.log(
        `  [store ${pass.id}] ${kind}: ${fmtInt(coldPool + cfg.hot)} sessions written in ${fmtInt(msSince(t0))} ms`,
      )
    }
    const pingStart = await pingP50(pinger, 200)
    for (let r = 0; r < cfg.rounds; r++) {
      const order = contenders.map((_, k) => contenders[(k + r) % contenders.length])
      const round = { order: order.map((c) => c.kind), pingP50Us: await pingP50(pinger, 50), results: {} }
      for (const c of order) {
        const state = states[c.kind]
        state.coldNext = r * coldPerRound
        state.coldEnd = (r + 1) * coldPerRound
        round.results[c.kind] = {}
        for (const op of OPS) {
          const m = await measure(c, op, state, cfg, admin, redis.proc.pid)
          round.results[c.kind][op] = m
        }
        const g = round.results[c.kind]
        ctx.log(
          `  [store ${pass.id}] round ${r + 1}/${cfg.rounds} ${c.kind.padEnd(11)} ` +
            OPS.map((op) => `${OP_LABEL[op]} ${fmtInt(g[op].opsPerSec)}/s p50 ${fmtUs(g[op].p50Us)} µs`).join(
              ' | ',
            ),
        )
      }
      perRound.push(round)
    }
    const summary = {}
    for (const kind of kinds) {
      summary[kind] = {}
      for (const op of OPS) {
        const list = perRound.map((round) => round.results[kind][op])
        summary[kind][op] = {
          opsPerSec: median(list.map((m) => m.opsPerSec)),
          p50Us: median(list.map((m) => m.p50Us)),
          p99Us: median(list.map((m) => m.p99Us)),
          ops: list.reduce((a, m) => a + m.ops, 0),
          misses: list.reduce((a, m) => a + m.misses, 0),
          redisCommandsPerOp:
            list[0].redisCommandsPerOp === null ? null : median(list.map((m) => m.redisCommandsPerOp)),
          redisCpuUsPerOp:
            list[0].redisCpuUsPerOp === null ? null : median(list.map((m) => m.redisCpuUsPerOp)),
          store: list[0].store === null ? null : sumDeltas(list.map((m) => m.store)),
        }
      }
    }
    const ratios = {}
    for (const [ours, peer] of PAIRS) {
      if (!(ours in summary && peer in summary)) continue
      ratios[`${ours}/${peer}`] = Object.fromEntries(
        OPS.map((op) => [
          op,
          {
            opsPerSec: ratio(summary[ours][op].opsPerSec, summary[peer][op].opsPerSec),
            p50: ratio(summary[ours][op].p50Us, summary[peer][op].p50Us),
            p99: ratio(summary[ours][op].p99Us, summary[peer][op].p99Us),
          },
        ]),
      )
    }
    return {
      pass: pass.id,
      label: pass.label,
      url,
      pingStartUs: pingStart,
      kinds,
      summary,
      ratios,
      perRound,
      errors,
    }
  } finally {
    for (const c of contenders) {
      try {
        await c.close()
      } catch (error) {
        errors.push(`${c.kind} close: ${error?.message ?? error}`)
      }
    }
    pinger.disconnect()
    admin.disconnect()
  }
}

function sumDeltas(list) {
  const out = {}
  for (const d of list) for (const [k, v] of Object.entries(d)) out[k] = (out[k] ?? 0) + v
  return out
}

export async function runStoreLevel(cfg, ctx) {
  const redis = await startRedis()
  ctx.log(`  [store] redis-server ${redis.version} on 127.0.0.1:${redis.port} (pid ${redis.proc.pid})`)
  let proxy
  const passes = []
  try {
    passes.push(
      await runPass(
        { id: 'loopback', label: 'Redis on loopback', url: redis.url },
        LOOPBACK,
        cfg,
        ctx,
        redis,
      ),
    )
    if (cfg.proxy) {
      proxy = await startProxy(redis.port, cfg.proxy.delayMs)
      const p = await runPass(
        { id: 'proxy', label: `Redis behind the +${cfg.proxy.delayMs} ms each-way proxy`, url: proxy.url },
        PROXIED,
        { ...cfg, ...cfg.proxy },
        ctx,
        redis,
      )
      p.proxy = await proxy.stats()
      passes.push(p)
    }
  } finally {
    if (proxy) await proxy.stop()
    await redis.stop()
  }
  return { cfg, redisVersion: redis.version, passes }
}

// ---------------------------------------------------------------------------------------------------------
// Report

export function storeLevelMarkdown(result) {
  const out = []
  for (const p of result.passes) {
    out.push(
      `**${p.label}** (PING p50 ${fmtUs(p.pingStartUs)} µs; median of ${result.cfg.rounds} rounds; ` +
        `per loop at most ${fmtInt(p.pass === 'proxy' ? result.cfg.proxy.maxOps : result.cfg.maxOps)} ops or ` +
        `${fmtInt(p.pass === 'proxy' ? result.cfg.proxy.budgetMs : result.cfg.budgetMs)} ms; ops/s, then p50 / p99 µs)`,
    )
    out.push('')
    const rows = [['store', ...OPS.map((op) => OP_LABEL[op])]]
    for (const kind of p.kinds) {
      const s = p.summary[kind]
      rows.push([
        STORE_LABEL[kind],
        ...OPS.map((op) => `${fmtInt(s[op].opsPerSec)} (${fmtUs(s[op].p50Us)} / ${fmtUs(s[op].p99Us)})`),
      ])
    }
    out.push(table(rows))
    out.push('')
    const ratioRows = [['ours / peer (ops/s)', ...OPS.map((op) => OP_LABEL[op])]]
    for (const [name, r] of Object.entries(p.ratios)) {
      const [ours, peer] = name.split('/')
      ratioRows.push([
        `${STORE_LABEL[ours]} / ${STORE_LABEL[peer]}`,
        ...OPS.map((op) => fmtRatio(r[op].opsPerSec)),
      ])
    }
    out.push(table(ratioRows))
    out.push('')
    const redisKinds = p.kinds.filter((k) => p.summary[k].getHot.redisCommandsPerOp !== null)
    if (redisKinds.length > 0) {
      const costRows = [
        [
          'Redis work per op: commands (incl. those run by scripts), redis-server CPU µs (when measurable)',
          ...OPS.map((op) => OP_LABEL[op]),
        ],
      ]
      for (const kind of redisKinds) {
        const s = p.summary[kind]
        costRows.push([
          STORE_LABEL[kind],
          ...OPS.map(
            (op) =>
              `${s[op].redisCommandsPerOp.toFixed(1)} cmds` +
              (Number.isFinite(s[op].redisCpuUsPerOp) ? `, ${fmtUs(s[op].redisCpuUsPerOp)} µs` : ''),
          ),
        ])
      }
      out.push(table(costRows))
      out.push('')
    }
    const evidence = []
    for (const kind of p.kinds) {
      const s = p.summary[kind]
      if (s.getHot.store) {
        evidence.push(
          `${STORE_LABEL[kind]}: get hot → ${fmtInt(s.getHot.store.memoryHits)} memory hits of ${fmtInt(s.getHot.ops)}; ` +
            `get cold → ${fmtInt(s.getCold.store.diskHits)} disk hits, ${fmtInt(s.getCold.store.redisHits)} Redis hits of ${fmtInt(s.getCold.ops)}; ` +
            `${fmtInt(s.set.store.writes + s.touch.store.writes)} writes for ${fmtInt(s.set.ops + s.touch.ops)} sets + touches`,
        )
      }
      const misses = s.getHot.misses + s.getCold.misses
      if (misses > 0) evidence.push(`**${STORE_LABEL[kind]}: ${misses} gets missed**`)
    }
    if (p.proxy)
      evidence.push(`proxy: ${p.proxy.outOfOrder} chunks out of order of ${fmtInt(p.proxy.chunks)}`)
    if (p.errors.length > 0) evidence.push(`**errors: ${p.errors.join('; ')}**`)
    out.push(evidence.map((e) => `- ${e}`).join('\n'))
    out.push('')
  }
  return out.join('\n')
}

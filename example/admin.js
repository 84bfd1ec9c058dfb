// /admin/tiers (what is where right now, with a live chart), its JSON, the load button, /metrics and /healthz.
// NB: a real app puts these behind authentication; the demo leaves them open so a visitor can look.

import express from 'express'
import { adminPage } from './admin-page.js'
import { renderHtml } from './html.js'
import { defaultLoadCount, LoadGenerator, MAX_LOAD } from './load.js'

/** Samples kept for the chart: two minutes at one a second, plus extra ones while a load runs. */
const HISTORY_MS = 120_000
/** The chart spans the history it has, at least this much (so a fresh server's first seconds are not a smear). */
const MIN_WINDOW_MS = 20_000
const SAMPLE_MS = 1000
/** While a load runs, samples are taken after each batch, but not more often than this. */
const MIN_SAMPLE_GAP_MS = 100

export function formatBytes(bytes) {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(2)} MiB`
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${bytes} B`
}

function percent(part, whole) {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : '—'
}

/** The page's numbers, grouped, each `{ key, label, value (text), raw (number or null) }`. */
function sections(stats, { mode, coherence, highWatermark, lowWatermark }) {
  const reads = stats.hits.memory + stats.hits.disk + stats.hits.redis + stats.misses
  const fact = (key, label, value, raw = null) => ({ key, label, value: String(value), raw })
  const hit = (tier) =>
    fact(
      `hits-${tier}`,
      `${tier} hits`,
      `${stats.hits[tier]} (${percent(stats.hits[tier], reads)})`,
      stats.hits[tier],
    )
  const errors = Object.entries(stats.errors)
  const out = [
    {
      title: 'Memory tier',
      facts: [
        fact('memory-entries', 'sessions', stats.memory.entries, stats.memory.entries),
        fact(
          'memory-bytes',
          'payload',
          `${formatBytes(stats.memory.bytes)} of ${formatBytes(stats.memory.maxBytes)} (${percent(stats.memory.bytes, stats.memory.maxBytes)})`,
          stats.memory.bytes,
        ),
        fact('memory-max-bytes', 'budget', formatBytes(stats.memory.maxBytes), stats.memory.maxBytes),
        fact(
          'watermarks',
          'spiller',
          `above ${Math.round(highWatermark * 100)}% it moves sessions down to ${Math.round(lowWatermark * 100)}%`,
        ),
      ],
    },
    {
      title: mode === 'shared' ? 'Disk tier (near cache + outbox)' : 'Disk tier (SQLite)',
      facts: stats.disk
        ? [
            fact('disk-entries', 'sessions', stats.disk.entries, stats.disk.entries),
            fact(
              'disk-pending',
              'writes waiting to commit',
              stats.disk.pendingWrites,
              stats.disk.pendingWrites,
            ),
            fact('disk-transactions', 'transactions', stats.disk.transactions, stats.disk.transactions),
          ]
        : [fact('disk-entries', 'sessions', 'no disk tier')],
    },
    {
      title: 'Redis',
      facts:
        mode === 'shared'
          ? [
              fact(
                'redis',
                'state',
                stats.redis?.connected ? 'connected' : 'down',
                stats.redis?.connected ? 1 : 0,
              ),
              fact(
                'coherence',
                'invalidation channel',
                coherence === undefined ? 'starting' : coherence ? 'live' : 'lost',
              ),
              fact('invalidations', 'invalidations received', stats.invalidations, stats.invalidations),
              fact('outbox', 'outbox (writes waiting for Redis)', stats.outbox, stats.outbox),
            ]
          : [
              fact('redis', 'state', 'not configured (local mode; set REDIS_URL for shared mode)'),
              fact('outbox', 'outbox (writes waiting for Redis)', stats.outbox, stats.outbox),
            ],
    },
    {
      title: 'Activity',
      facts: [
        fact('spills', 'sessions spilled', stats.spills, stats.spills),
        fact('promotions', 'promotions (disk → memory)', stats.promotions, stats.promotions),
        hit('memory'),
        hit('disk'),
        ...(mode === 'shared' ? [hit('redis')] : []),
        fact('misses', 'misses', `${stats.misses} (${percent(stats.misses, reads)})`, stats.misses),
        fact('writes', 'writes', stats.writes, stats.writes),
        fact('destroys', 'destroys', stats.destroys, stats.destroys),
        fact('expired', 'expired (swept)', stats.expired, stats.expired),
        fact(
          'errors',
          'errors',
          errors.length === 0 ? 'none' : errors.map(([code, n]) => `${code}: ${n}`).join(', '),
          errors.reduce((sum, [, n]) => sum + n, 0),
        ),
      ],
    },
  ]
  return out
}

/**
 * Mounts the admin routes and starts the sampler. `close()` stops the sampler and any running load
 * (call it before `store.close()`).
 */
export function createAdmin({ store, mode, highWatermark, lowWatermark }) {
  let coherence
  store.on('coherence', ({ live }) => {
    coherence = live
  })
  const history = []
  let lastSampleAt = 0
  const sample = () => {
    const now = Date.now()
    if (now - lastSampleAt < MIN_SAMPLE_GAP_MS) return
    lastSampleAt = now
    const stats = store.stats()
    history.push({
      t: now,
      memoryBytes: stats.memory.bytes,
      memoryEntries: stats.memory.entries,
      diskEntries: stats.disk?.entries ?? 0,
    })
    while (history.length > 0 && history[0].t < now - HISTORY_MS) history.shift()
  }
  sample()
  const timer = setInterval(sample, SAMPLE_MS)
  timer.unref()

  const load = new LoadGenerator(store, { onBatch: sample })
  const snapshot = () => {
    const stats = store.stats()
    const now = Date.now()
    const span = now - (history[0]?.t ?? now)
    return {
      now,
      mode,
      maxBytes: stats.memory.maxBytes,
      highWatermark,
      lowWatermark,
      windowMs: Math.min(HISTORY_MS, Math.max(MIN_WINDOW_MS, span)),
      sections: sections(stats, { mode, coherence, highWatermark, lowWatermark }),
      history,
      load: load.status(),
    }
  }

  const router = express.Router()
  router.get('/admin/tiers', (_req, res) => {
    const data = snapshot()
    res.type('html').send(
      renderHtml(
        adminPage({
          nonce: res.locals.nonce,
          data,
          defaultCount: defaultLoadCount(data.maxBytes),
          maxLoad: MAX_LOAD,
        }),
      ),
    )
  })
  router.get('/admin/tiers.json', (_req, res) => {
    res.set('Cache-Control', 'no-store').json(snapshot())
  })
  router.post('/admin/load', (req, res) => {
    const text = req.body?.count
    const count =
      text === undefined || text === '' ? defaultLoadCount(store.stats().memory.maxBytes) : Number(text)
    const wantsJson = req.accepts(['html', 'json']) === 'json'
    if (!Number.isInteger(count) || count < 1 || count > MAX_LOAD) {
      res.status(400)
      if (wantsJson) res.json({ error: `count must be an integer from 1 to ${MAX_LOAD}` })
      else res.type('text').send(`count must be an integer from 1 to ${MAX_LOAD}`)
      return
    }
    const started = load.start(count)
    if (wantsJson) res.status(started ? 202 : 409).json({ load: load.status() })
    else res.redirect(303, '/admin/tiers')
  })
  router.get('/metrics', (_req, res) => {
    res.type('text/plain; version=0.0.4; charset=utf-8').send(store.metrics())
  })
  // Readiness probe: 200 with the health view while the store is ok, 503 (same body) when it is not.
  router.get('/healthz', (_req, res) => {
    const health = store.health()
    res
      .status(health.ok ? 200 : 503)
      .set('Cache-Control', 'no-store')
      .json(health)
  })

  return {
    router,
    async close() {
      clearInterval(timer)
      await load.stop()
    },
  }
}

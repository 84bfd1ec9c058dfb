// Renders docs/grafana-dashboard.json without Grafana (none is installable here, offline): runs a real
// shared-mode TieredStore (built dist/, a redis-server of its own) under a short synthetic load with a Redis
// blink in the middle, scrapes store.metrics() every second, evaluates each panel's PromQL with the small
// evaluator in ./promql.js, draws the panels as SVG in an HTML page laid out by their gridPos, and screenshots
// it with playwright-core + Debian's chromium-headless-shell.
//
//   npm run build && node bench/dashboard/render.js [--seconds 60] [--out docs/grafana-dashboard.png]
//
// What it shows is this store's own metrics over the run, not a Grafana rendering: same queries, same
// layout, our drawing.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { TieredStore } from 'tiered-session'
import { BENCH_DIR, killAll, sleep, startRedis } from '../lib/procs.js'
import { evaluate, parse, SeriesStore } from './promql.js'

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    out: { type: 'string', default: join(BENCH_DIR, '..', 'docs', 'grafana-dashboard.png') },
  },
})
const SECONDS = Number(args.seconds)
const RATE_INTERVAL = '[10s]'
const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium-headless-shell'
const dashboard = JSON.parse(readFileSync(join(BENCH_DIR, '..', 'docs', 'grafana-dashboard.json'), 'utf8'))

// ---- a real store under load ------------------------------------------------------------------------------

const tmp = mkdtempSync(join(os.tmpdir(), 'ts-dashboard-'))
const redis = await startRedis()
const store = new TieredStore({
  memory: { maxBytes: 2 * 1024 * 1024 },
  disk: { path: join(tmp, 'sessions.db') },
  redis: { url: redis.url, commandTimeout: 150 },
  maxSessionBytes: 16 * 1024,
})
store.on('error', () => {})
await store.ready()

const DAY = 86_400_000
const session = (user, extra = {}) => ({
  cookie: { originalMaxAge: DAY, expires: new Date(Date.now() + DAY).toISOString(), path: '/' },
  userId: `user-${user}`,
  cart: Array.from({ length: 6 }, (_, i) => ({ sku: `sku-${user}-${i}`, qty: 1 + (i % 3) })),
  pad: 'x'.repeat(600),
  ...extra,
})
let nextSid = 0
let ops = 0
const live = []
let stop = false

/** One worker: mostly reads of recent sessions, some of old ones (spilled), writes, merges, touches, logouts. */
async function worker() {
  while (!stop) {
    const roll = Math.random()
    try {
      if (roll < 0.08 || live.length < 50) {
        const sid = `sid-${nextSid++}`
        await store.set(sid, session(nextSid % 400))
        live.push(sid)
      } else if (roll < 0.7) {
        // 80% of reads go to the newest 200 sessions, the rest anywhere (cold ones come back from disk).
        const span = Math.random() < 0.8 ? Math.min(200, live.length) : live.length
        await store.get(live[live.length - 1 - Math.floor(Math.random() * span)])
      } else if (roll < 0.8) {
        await store.merge(live[Math.floor(Math.random() * live.length)], {
          set: { seen: String(Date.now()) },
          unset: [],
        })
      } else if (roll < 0.9) {
        await store.touch(live.at(-1 - Math.floor(Math.random() * 50)), session(1))
      } else if (roll < 0.93) {
        const i = Math.floor(Math.random() * live.length)
        const [sid] = live.splice(i, 1)
        await store.destroy(sid)
      } else if (roll < 0.935) {
        await store.set(`big-${nextSid++}`, session(1, { pad: 'y'.repeat(20_000) }))
      } else await store.get(`unknown-${Math.random()}`)
    } catch {
      // Counted by the store (errors by code); the load goes on.
    }
    // NB: a breather now and then, so the scrapes and the spiller get their turns.
    if (++ops % 25 === 0) await sleep(1)
  }
}

const series = new SeriesStore()
const started = Date.now()
const workers = Array.from({ length: 4 }, () => worker())
const scrapes = []
for (let s = 0; s <= SECONDS; s++) {
  await sleep(started + s * 1000 - Date.now())
  const t = Date.now()
  series.add(t, store.metrics())
  scrapes.push(t)
  // A Redis blink: paused (SIGSTOP) a third of the way in, for a sixth of the run.
  if (s === Math.floor(SECONDS / 3)) process.kill(redis.proc.pid, 'SIGSTOP')
  if (s === Math.floor(SECONDS / 2)) process.kill(redis.proc.pid, 'SIGCONT')
  process.stderr.write(`\r  scraped ${s}/${SECONDS} s, ${nextSid} sessions written`)
}
process.stderr.write('\n')
stop = true
await Promise.all(workers)
await store.close()
killAll()
rmSync(tmp, { recursive: true, force: true })

// ---- the panels -------------------------------------------------------------------------------------------

const COL = 1800 / 24
const ROW = 32
const PALETTE = [
  '#73bf69',
  '#f2cc0c',
  '#5794f2',
  '#ff9830',
  '#f2495c',
  '#b877d9',
  '#8ab8ff',
  '#fade2a',
  '#96d98d',
  '#ffa6b0',
  '#ca95e5',
  '#56a64b',
]

function fmt(v, unit) {
  if (!Number.isFinite(v)) return '–'
  const a = Math.abs(v)
  if (unit === 'bytes')
    return a >= 1048576
      ? `${(v / 1048576).toFixed(1)} MiB`
      : a >= 1024
        ? `${(v / 1024).toFixed(0)} KiB`
        : `${v.toFixed(0)} B`
  if (unit === 's')
    return a === 0
      ? '0 s'
      : a < 0.001
        ? `${(v * 1e6).toFixed(0)} µs`
        : a < 1
          ? `${(v * 1000).toFixed(1)} ms`
          : `${v.toFixed(1)} s`
  if (unit === 'percentunit') return `${(v * 100).toFixed(0)}%`
  if (unit === 'ops') return a >= 1000 ? `${(v / 1000).toFixed(1)}k/s` : `${v.toFixed(a < 10 ? 1 : 0)}/s`
  return a >= 1000 ? `${(v / 1000).toFixed(1)}k` : `${Number(v.toFixed(2))}`
}

function legendOf(format, labels) {
  return format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => labels[name] ?? '')
}

/** Every target of a panel evaluated at every scrape: `[{ name, points: [[t, v]] }]`. */
function lines(panel) {
  const out = new Map()
  for (const target of panel.targets) {
    const tree = parse(target.expr.replaceAll('[$__rate_interval]', RATE_INTERVAL))
    for (const t of scrapes) {
      const value = evaluate(tree, series, t)
      const rows = Array.isArray(value) ? value : [{ labels: {}, v: value }]
      for (const { labels, v } of rows) {
        const name = legendOf(target.legendFormat ?? '', labels) || target.expr
        if (!out.has(name)) out.set(name, [])
        out.get(name).push([t, v])
      }
    }
  }
  return [...out].map(([name, points]) => ({ name, points })).sort((a, b) => a.name.localeCompare(b.name))
}

function timeseries(panel, w, h) {
  const unit = panel.fieldConfig.defaults.unit
  const all = lines(panel)
  const plotW = w - 80
  const plotH = h - 60 - Math.ceil(all.length / 4) * 16
  const t0 = scrapes[0]
  const t1 = scrapes.at(-1)
  const values = all.flatMap((l) => l.points.map(([, v]) => v)).filter(Number.isFinite)
  const max = Math.max(...values, unit === 'percentunit' ? 1 : 0) || 1
  const x = (t) => 64 + ((t - t0) / (t1 - t0)) * plotW
  const y = (v) => 10 + plotH - (v / max) * plotH
  let svg = ''
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4
    svg += `<line x1="64" x2="${64 + plotW}" y1="${y(v)}" y2="${y(v)}" stroke="#2c3235"/>`
    svg += `<text x="58" y="${y(v) + 4}" text-anchor="end" class="tick">${fmt(v, unit)}</text>`
  }
  for (let s = 0; s <= 6; s++) {
    const t = t0 + ((t1 - t0) * s) / 6
    svg += `<text x="${x(t)}" y="${plotH + 26}" text-anchor="middle" class="tick">${new Date(t).toISOString().slice(11, 19)}</text>`
  }
  all.forEach((line, i) => {
    const color = PALETTE[i % PALETTE.length]
    const d = line.points
      .filter(([, v]) => Number.isFinite(v))
      .map(([t, v], j) => `${j === 0 ? 'M' : 'L'}${x(t).toFixed(1)},${y(v).toFixed(1)}`)
      .join('')
    if (d !== '') svg += `<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"/>`
    const lx = 64 + (i % 4) * (plotW / 4)
    const ly = plotH + 46 + Math.floor(i / 4) * 16
    svg += `<rect x="${lx}" y="${ly - 8}" width="12" height="4" fill="${color}"/><text x="${lx + 16}" y="${ly - 3}" class="legend">${line.name}</text>`
  })
  if (all.length === 0)
    svg += `<text x="${w / 2}" y="${h / 2}" text-anchor="middle" class="legend">No data</text>`
  return svg
}

function stat(panel, w, h) {
  const unit = panel.fieldConfig.defaults.unit
  const [line] = lines(panel)
  const last = line?.points.filter(([, v]) => Number.isFinite(v)).at(-1)?.[1]
  const mapping = panel.fieldConfig.defaults.mappings?.[0]?.options?.[String(last)]
  const steps = panel.fieldConfig.defaults.thresholds?.steps ?? []
  let color = '#73bf69'
  for (const step of steps) if (step.value === null || (last ?? 0) >= step.value) color = step.color
  const colors = { green: '#73bf69', orange: '#ff9830', red: '#f2495c' }
  color = mapping?.color ?? color
  const text = mapping?.text ?? (last === undefined ? 'No data' : fmt(last, unit))
  const background = panel.options.colorMode === 'background'
  let svg = background
    ? `<rect x="0" y="0" width="${w}" height="${h - 28}" fill="${colors[color] ?? color}" opacity="0.85"/>`
    : ''
  if (!background && line !== undefined && panel.options.graphMode === 'area') {
    const pts = line.points.filter(([, v]) => Number.isFinite(v))
    const max = Math.max(...pts.map(([, v]) => v), 1)
    const t0 = scrapes[0]
    const t1 = scrapes.at(-1)
    const d = pts.map(
      ([t, v]) => `L${(((t - t0) / (t1 - t0)) * w).toFixed(1)},${(h - 34 - (v / max) * (h - 80)).toFixed(1)}`,
    )
    svg += `<path d="M0,${h - 34}${d.join('')}L${w},${h - 34}Z" fill="${colors[color] ?? color}" opacity="0.25"/>`
  }
  svg += `<text x="${w / 2}" y="${(h - 28) / 2 + 14}" text-anchor="middle" class="big" fill="${background ? '#111' : (colors[color] ?? color)}">${text}</text>`
  return svg
}

let body = ''
let bottom = 0
for (const panel of dashboard.panels) {
  const { x, y, w, h } = panel.gridPos
  const width = w * COL - 8
  const height = h * ROW - 8
  bottom = Math.max(bottom, (y + h) * ROW)
  const inner =
    panel.type === 'stat' ? stat(panel, width, height - 28) : timeseries(panel, width, height - 28)
  body += `<div class="panel" style="left:${x * COL + 4}px;top:${y * ROW + 4}px;width:${width}px;height:${height}px">
<div class="title">${panel.title}</div><svg width="${width}" height="${height - 28}">${inner}</svg></div>`
}
const html = `<!doctype html><html><head><meta charset="utf-8"><style>
body{margin:0;background:#111217;font-family:Inter,Helvetica,Arial,sans-serif;color:#ccccdc}
header{padding:12px 16px;font-size:18px}header small{color:#8e8e8e;font-size:12px;margin-left:12px}
.board{position:relative;height:${bottom + 8}px;width:1800px}
.panel{position:absolute;background:#181b1f;border:1px solid #2c3235;border-radius:2px;overflow:hidden}
.title{font-size:13px;font-weight:500;padding:6px 8px;height:16px}
.tick{fill:#8e8e8e;font-size:10px}.legend{fill:#ccccdc;font-size:11px}.big{font-size:30px;font-weight:500}
</style></head><body><header>${dashboard.title}<small>docs/grafana-dashboard.json, its queries evaluated by bench/dashboard/render.js on a real store's metrics() (${SECONDS} s of synthetic load, Redis paused for ${Math.round(SECONDS / 6)} s); drawn by us, not by Grafana</small></header>
<div class="board">${body}</div></body></html>`

const htmlPath = join(os.tmpdir(), `ts-dashboard-${process.pid}.html`)
writeFileSync(htmlPath, html)
const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: ['--no-sandbox'] })
try {
  const page = await browser.newPage({ viewport: { width: 1800, height: 900 } })
  await page.goto(`file://${htmlPath}`)
  await page.screenshot({ path: args.out, fullPage: true })
} finally {
  await browser.close()
  rmSync(htmlPath, { force: true })
}
console.log(`wrote ${args.out}`)

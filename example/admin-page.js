// The /admin/tiers page: the numbers rendered on the server, then a small inline script that polls
// /admin/tiers.json every second, updates them, and draws two SVG charts. No front-end build step.

import { html, raw } from './html.js'
import { layout } from './views.js'

const STYLE = `
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 1rem; align-items: start; }
.cards h2 { margin: 0 0 .5rem; font-size: 1rem; }
dl { margin: 0; display: grid; grid-template-columns: 1fr; gap: .1rem; }
dt { color: var(--muted); font-size: .8rem; }
dd { margin: 0 0 .4rem; font-variant-numeric: tabular-nums; }
meter { width: 100%; height: 1rem; }
.charts { display: grid; grid-template-columns: 1fr; gap: 1rem; margin: 1rem 0; }
.charts h2 { margin: 0 0 .25rem; font-size: 1rem; }
svg.chart { width: 100%; height: auto; display: block; }
svg.chart text { font: 13px system-ui, sans-serif; fill: #5d6677; }
svg.chart .grid { stroke: #e6e9ef; stroke-width: 1; }
svg.chart .budget { stroke: #c2402f; stroke-width: 1.5; }
svg.chart .high { stroke: #d98b1c; stroke-width: 1; stroke-dasharray: 5 4; }
svg.chart .low { stroke: #8a94a6; stroke-width: 1; stroke-dasharray: 2 4; }
svg.chart .s-memory { stroke: #2f6fde; stroke-width: 2; fill: none; }
svg.chart .a-memory { fill: #2f6fde; opacity: .12; }
svg.chart .s-disk { stroke: #1f7a3d; stroke-width: 2; fill: none; }
svg.chart text.l-memory { fill: #2f6fde; }
svg.chart text.l-disk { fill: #1f7a3d; }
svg.chart text.l-budget { fill: #c2402f; }
.toolbar { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: 1rem 0 .25rem; }
#live { font-size: .85rem; }
`

// Runs in the browser. Only numbers and our own labels come from the server, and they are set with
// textContent / setAttribute, never as markup.
const SCRIPT = `
'use strict'
const NS = 'http://www.w3.org/2000/svg'
const $ = (id) => document.getElementById(id)
const W = 900, H = 240, PAD = { l: 76, r: 14, t: 16, b: 28 }

function bytes(n) {
  if (n >= 1048576) return (n / 1048576).toFixed(n >= 10485760 ? 0 : 1) + ' MiB'
  if (n >= 1024) return (n / 1024).toFixed(0) + ' KiB'
  return n + ' B'
}
function count(n) { return n >= 10000 ? (n / 1000).toFixed(0) + 'k' : String(Math.round(n)) }
// 0, step, 2 step, ... up to at least max, with step 1, 2 or 5 times a power of ten (about four steps).
function niceTicks(max) {
  const rough = max / 4
  const magnitude = 10 ** Math.floor(Math.log10(rough))
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= rough)
  const ticks = []
  for (let v = 0; v < max + step; v += step) ticks.push(v)
  return ticks
}
function node(name, attrs, text) {
  const e = document.createElementNS(NS, name)
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v))
  if (text !== undefined) e.textContent = text
  return e
}

// series: [{ key, label, area?, values: [[t, v]] }]; lines: [{ value, label, cls }]; ticks: y grid values.
function drawChart(svg, data, series, lines, ticks, format) {
  // NB: headroom above the top line for the legend.
  const yMax = Math.max(ticks[ticks.length - 1], ...lines.map((line) => line.value)) * 1.15
  const x0 = data.now - data.windowMs
  const x = (t) => PAD.l + ((t - x0) / data.windowMs) * (W - PAD.l - PAD.r)
  const y = (v) => PAD.t + (1 - v / yMax) * (H - PAD.t - PAD.b)
  const parts = []
  for (const v of ticks) {
    parts.push(node('line', { class: 'grid', x1: PAD.l, x2: W - PAD.r, y1: y(v), y2: y(v) }))
    parts.push(node('text', { x: PAD.l - 8, y: y(v) + 4, 'text-anchor': 'end' }, format(v)))
  }
  const ago = (ms) => '-' + (ms >= 60000 ? (ms / 60000).toFixed(1) + ' min' : Math.round(ms / 1000) + ' s')
  for (const [label, t, anchor] of [
    [ago(data.windowMs), x0, 'start'],
    [ago(data.windowMs / 2), x0 + data.windowMs / 2, 'middle'],
    ['now', data.now, 'end'],
  ]) {
    parts.push(node('text', { x: x(t), y: H - 6, 'text-anchor': anchor }, label))
  }
  for (const line of lines) {
    parts.push(node('line', { class: line.cls, x1: PAD.l, x2: W - PAD.r, y1: y(line.value), y2: y(line.value) }))
    parts.push(node('text', { class: 'l-' + line.cls, x: PAD.l + 6, y: y(line.value) - 5 }, line.label))
  }
  let legendX = W - PAD.r
  for (const s of series) {
    const pts = s.values.filter(([t]) => t >= x0).map(([t, v]) => x(t).toFixed(1) + ',' + y(v).toFixed(1))
    if (pts.length > 0) {
      if (s.area) {
        const first = pts[0].split(',')[0], last = pts[pts.length - 1].split(',')[0]
        const base = y(0).toFixed(1)
        parts.push(node('polygon', { class: 'a-' + s.key, points: first + ',' + base + ' ' + pts.join(' ') + ' ' + last + ',' + base }))
      }
      parts.push(node('polyline', { class: 's-' + s.key, points: pts.join(' ') }))
    }
  }
  for (const s of [...series].reverse()) {
    parts.push(node('text', { class: 'l-' + s.key, x: legendX, y: PAD.t, 'text-anchor': 'end' }, '■ ' + s.label))
    legendX -= 24 + s.label.length * 7.5
  }
  svg.replaceChildren(...parts)
}

function render(data) {
  for (const section of data.sections) {
    for (const fact of section.facts) {
      const el = $('fact-' + fact.key)
      if (!el) continue
      el.textContent = fact.value
      el.dataset.value = fact.raw === null ? '' : String(fact.raw)
    }
  }
  const meter = $('memory-meter')
  meter.max = data.maxBytes
  meter.value = data.history.length ? data.history[data.history.length - 1].memoryBytes : 0
  $('load-status').textContent = data.load.text
  $('load-status').dataset.state = data.load.state
  $('load-button').disabled = data.load.state === 'running'

  const h = data.history
  drawChart($('chart-memory'), data,
    [{ key: 'memory', label: 'memory tier bytes', area: true, values: h.map((p) => [p.t, p.memoryBytes]) }],
    [
      { value: data.maxBytes, label: 'budget ' + bytes(data.maxBytes), cls: 'budget' },
      { value: data.maxBytes * data.highWatermark, label: 'spill above ' + Math.round(data.highWatermark * 100) + '%', cls: 'high' },
      { value: data.maxBytes * data.lowWatermark, label: 'down to ' + Math.round(data.lowWatermark * 100) + '%', cls: 'low' },
    ],
    [0, 0.25, 0.5, 0.75, 1].map((f) => f * data.maxBytes), bytes)
  const top = Math.max(10, ...h.map((p) => Math.max(p.memoryEntries, p.diskEntries)))
  drawChart($('chart-entries'), data,
    [
      { key: 'memory', label: 'in memory', values: h.map((p) => [p.t, p.memoryEntries]) },
      { key: 'disk', label: 'on disk', values: h.map((p) => [p.t, p.diskEntries]) },
    ],
    [], niceTicks(top), count)
  $('chart-data').dataset.points = String(h.length)
}

async function poll() {
  try {
    const res = await fetch('/admin/tiers.json', { headers: { accept: 'application/json' }, cache: 'no-store' })
    if (!res.ok) throw new Error('HTTP ' + res.status)
    render(await res.json())
    $('live').textContent = 'live · updated ' + new Date().toLocaleTimeString()
  } catch (err) {
    $('live').textContent = 'server unreachable (' + err.message + '), retrying'
  }
  setTimeout(poll, 1000)
}

$('load-form').addEventListener('submit', async (event) => {
  event.preventDefault()
  const form = event.currentTarget
  $('load-button').disabled = true
  try {
    const res = await fetch(form.action, {
      method: 'POST',
      headers: { accept: 'application/json' },
      body: new URLSearchParams(new FormData(form)),
    })
    const body = await res.json()
    if (res.status === 409) $('load-status').textContent = 'A load is already running.'
    else if (!res.ok) $('load-status').textContent = body.error
    else $('load-status').textContent = body.load.text
  } catch (err) {
    $('load-status').textContent = 'Could not start the load: ' + err.message
  }
})
poll()
`

export function adminPage({ nonce, data, defaultCount, maxLoad }) {
  const lastBytes = data.history.at(-1)?.memoryBytes ?? 0
  const cards = data.sections.map(
    (section) => html`<section class="card">
  <h2>${section.title}</h2>
  ${section.title === 'Memory tier' && html`<meter id="memory-meter" min="0" max="${data.maxBytes}" low="${data.maxBytes * data.lowWatermark}" high="${data.maxBytes * data.highWatermark}" optimum="0" value="${lastBytes}"></meter>`}
  <dl>${section.facts.map(
    (fact) =>
      html`<dt>${fact.label}</dt><dd id="fact-${fact.key}" data-value="${fact.raw ?? ''}">${fact.value}</dd>`,
  )}</dl>
</section>`,
  )
  return layout({
    title: 'Tiers',
    nonce,
    active: 'tiers',
    showUser: false,
    head: html`<style nonce="${nonce}">${raw(STYLE)}</style>`,
    body: html`<h1>What is where right now <small class="muted">(${data.mode} mode)</small></h1>
<div class="toolbar">
  <form method="post" action="/admin/load" id="load-form" class="inline">
    <label for="load-count" class="inline">Sessions to create</label>
    <input id="load-count" name="count" type="number" min="1" max="${maxLoad}" value="${defaultCount}">
    <button id="load-button">Load</button>
  </form>
  <span id="load-status" data-state="${data.load.state}">${data.load.text}</span>
</div>
<p class="muted">The load writes its sessions straight into the store, paced over about four seconds, and reads some back. Watch the memory line climb to the spill line and drop back while the disk keeps every session.</p>
<div class="charts" id="chart-data" data-points="0">
  <section class="card"><h2>Memory tier bytes against the budget</h2><svg class="chart" id="chart-memory" viewBox="0 0 900 240" role="img" aria-label="memory tier bytes over time"></svg></section>
  <section class="card"><h2>Sessions per tier</h2><svg class="chart" id="chart-entries" viewBox="0 0 900 240" role="img" aria-label="sessions in memory and on disk over time"></svg></section>
</div>
<noscript><p class="muted">The charts need JavaScript; the numbers below are as of this page load.</p></noscript>
<div class="cards">${cards}</div>
<p class="muted"><span id="live">loading…</span> · <a href="/admin/tiers.json">JSON</a> · <a href="/metrics">Prometheus metrics</a></p>
<script nonce="${nonce}">${raw(SCRIPT)}</script>`,
  })
}

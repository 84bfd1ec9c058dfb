// Summarizes a V8 CPU profile (node --cpu-prof; `node bench/run.js --profile <contender>` writes one to
// bench/results/): self and inclusive time per function, with positions in dist/ mapped back to src/
// file:line through dist/*.map.
//
//   node bench/profile.js <file.cpuprofile> [--top N] [--filter text] [--callers <function name> [--depth N]]

import { existsSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

// ---- source maps (VLQ "mappings", version 3) ----------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const B64_INDEX = Object.fromEntries([...B64].map((c, i) => [c, i]))

function decodeVlq(segment) {
  const out = []
  let value = 0
  let shift = 0
  for (const ch of segment) {
    const digit = B64_INDEX[ch]
    value += (digit & 31) << shift
    if (digit & 32) shift += 5
    else {
      out.push(value & 1 ? -(value >>> 1) : value >>> 1)
      value = 0
      shift = 0
    }
  }
  return out
}

/** Generated line (0-based) → sorted [generatedColumn, sourceIndex, sourceLine, sourceColumn][]. */
function parseMap(map) {
  const lines = []
  let src = 0
  let srcLine = 0
  let srcCol = 0
  for (const line of map.mappings.split(';')) {
    const segs = []
    let col = 0
    if (line.length > 0) {
      for (const seg of line.split(',')) {
        const v = decodeVlq(seg)
        col += v[0]
        if (v.length >= 4) {
          src += v[1]
          srcLine += v[2]
          srcCol += v[3]
          segs.push([col, src, srcLine, srcCol])
        }
      }
    }
    lines.push(segs)
  }
  return lines
}

const maps = new Map()
function mapper(file) {
  if (maps.has(file)) return maps.get(file)
  let fn = null
  const mapFile = `${file}.map`
  if (existsSync(mapFile)) {
    const map = JSON.parse(readFileSync(mapFile, 'utf8'))
    const lines = parseMap(map)
    const base = dirname(file)
    fn = (line, column) => {
      const segs = lines[line] ?? []
      let best
      for (const s of segs) {
        if (s[0] <= column) best = s
        else break
      }
      if (best === undefined) return null
      const source = relative(ROOT, resolve(base, map.sourceRoot ?? '', map.sources[best[1]]))
      return `${source}:${best[2] + 1}`
    }
  }
  maps.set(file, fn)
  return fn
}

function where(frame) {
  const url = frame.url
  if (!url) return '(native)'
  const file = url.startsWith('file://') ? fileURLToPath(url) : url
  const map = file.includes(`${ROOT}/dist/`) ? mapper(file) : null
  const mapped = map?.(frame.lineNumber, frame.columnNumber)
  if (mapped) return mapped
  const rel = file.startsWith(ROOT) ? relative(ROOT, file) : file
  return `${rel.replace(/^node_modules\//, 'nm/')}:${frame.lineNumber + 1}`
}

// ---- profile ----------------------------------------------------------------------------------------------

function summarize(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const keyOf = new Map()
  for (const n of profile.nodes) {
    const name = n.callFrame.functionName || '(anonymous)'
    keyOf.set(n.id, `${name} ${where(n.callFrame)}`)
  }
  const self = new Map()
  const total = new Map()
  const samples = profile.samples
  const deltas = profile.timeDeltas
  let all = 0
  for (let i = 0; i < samples.length; i++) {
    const dt = (deltas[i + 1] ?? deltas[i] ?? 0) / 1000 // ms
    all += dt
    const id = samples[i]
    const k = keyOf.get(id)
    self.set(k, (self.get(k) ?? 0) + dt)
    const seen = new Set()
    for (let p = id; p !== undefined; p = parent.get(p)) {
      const kk = keyOf.get(p)
      if (seen.has(kk)) continue
      seen.add(kk)
      total.set(kk, (total.get(kk) ?? 0) + dt)
    }
  }
  return { self, total, all, byId, parent, keyOf }
}

/** For the samples whose own frame matches `name`: the stacks above it (`depth` frames), by time. */
function callers(profile, summary, name, depth) {
  const out = new Map()
  const { parent, keyOf } = summary
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    if (!keyOf.get(id).startsWith(`${name} `)) continue
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000
    const chain = []
    for (let p = parent.get(id); p !== undefined && chain.length < depth; p = parent.get(p))
      chain.push(keyOf.get(p))
    const k = chain.join('\n      <- ')
    out.set(k, (out.get(k) ?? 0) + dt)
  }
  return out
}

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '30' },
    filter: { type: 'string' },
    callers: { type: 'string' },
    depth: { type: 'string', default: '6' },
  },
})
if (positionals.length === 0) {
  console.error('usage: node bench/profile.js <file.cpuprofile> [--top N] [--filter text]')
  process.exit(2)
}
const file = positionals[0]
const profile = JSON.parse(readFileSync(file, 'utf8'))
const summary = summarize(profile)
const { self, total, all } = summary
const top = Number(args.top)
const pct = (ms) => `${((100 * ms) / all).toFixed(1).padStart(5)}%`
const show = (title, map, filter) => {
  console.log(`\n${title}`)
  const rows = [...map.entries()]
    .filter(([k]) => filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
  for (const [k, ms] of rows) console.log(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${k}`)
}
console.log(`${file}: ${all.toFixed(0)} ms sampled`)
if (args.callers) {
  const map = callers(profile, summary, args.callers, Number(args.depth))
  const rows = [...map.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(args.top))
  for (const [k, ms] of rows)
    console.log(`${pct(ms)} ${ms.toFixed(0).padStart(7)} ms  ${args.callers}\n      <- ${k}`)
  process.exit(0)
}
const f = args.filter
show('self time', self, (k) => !f || k.includes(f))
show('inclusive time, src/ only', total, (k) => k.includes(' src/') && (!f || k.includes(f)))

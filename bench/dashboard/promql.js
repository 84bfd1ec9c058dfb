// A small PromQL subset over scraped samples, enough for docs/grafana-dashboard.json's queries: selectors with
// `{k="v"}` matchers and `[range]`, rate() and increase(), sum/max/min/avg with `by (...)`, scalar(),
// histogram_quantile(), numbers, and + - * / between vectors (matched on identical labels) and scalars.
// Not Prometheus: no offsets, no regex matchers, no `on`/`ignoring`; lookback 5 min; counter resets ignored.

const LOOKBACK_MS = 5 * 60_000

/** Parses Prometheus text exposition into `{ name, labels }` samples with their values. */
export function parseExposition(text) {
  const out = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) continue
    const labels = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
      labels[pair[1]] = pair[2]
    out.push({ name: match[1], labels, value: Number(match[3]) })
  }
  return out
}

/** Scraped time series: `add(t, text)` per scrape; `select(name, matchers)` for the evaluator. */
export class SeriesStore {
  #series = new Map()

  add(t, text) {
    for (const { name, labels, value } of parseExposition(text)) {
      const key = `${name}${JSON.stringify(Object.entries(labels).sort())}`
      let series = this.#series.get(key)
      if (series === undefined) {
        series = { name, labels, points: [] }
        this.#series.set(key, series)
      }
      series.points.push([t, value])
    }
  }

  select(name, matchers) {
    const out = []
    for (const s of this.#series.values()) {
      if (s.name !== name) continue
      if (matchers.every(([k, op, v]) => (op === '=' ? s.labels[k] === v : s.labels[k] !== v))) out.push(s)
    }
    return out
  }
}

function tokenize(text) {
  const tokens = []
  const re =
    /\s*(?:(\d+(?:\.\d+)?(?:e-?\d+)?)|([a-zA-Z_:][a-zA-Z0-9_:]*)|("(?:[^"\\]|\\.)*")|(\[\d+[smh]\])|(!=|[(){},=+\-*/]))/y
  let pos = 0
  while (pos < text.length) {
    re.lastIndex = pos
    const m = re.exec(text)
    if (m === null) {
      if (text.slice(pos).trim() === '') break
      throw new Error(`promql: cannot read "${text.slice(pos)}"`)
    }
    pos = re.lastIndex
    if (m[1] !== undefined) tokens.push({ t: 'num', v: Number(m[1]) })
    else if (m[2] !== undefined) tokens.push({ t: 'id', v: m[2] })
    else if (m[3] !== undefined) tokens.push({ t: 'str', v: JSON.parse(m[3]) })
    else if (m[4] !== undefined) {
      const n = Number(m[4].slice(1, -2))
      const unit = m[4].at(-2)
      tokens.push({ t: 'range', v: n * (unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000) })
    } else tokens.push({ t: 'op', v: m[5] })
  }
  return tokens
}

const AGGREGATIONS = new Set(['sum', 'max', 'min', 'avg'])

/** Parses a query into a tree. */
export function parse(text) {
  const tokens = tokenize(text)
  let i = 0
  const peek = () => tokens[i]
  const next = () => tokens[i++]
  const expect = (v) => {
    const tok = next()
    if (tok?.v !== v) throw new Error(`promql: expected ${v} in ${text}`)
  }
  const labelList = () => {
    expect('(')
    const names = []
    while (peek()?.v !== ')') {
      names.push(next().v)
      if (peek()?.v === ',') next()
    }
    expect(')')
    return names
  }
  const primary = () => {
    const tok = next()
    if (tok.t === 'num') return { k: 'num', v: tok.v }
    if (tok.v === '(') {
      const inner = add()
      expect(')')
      return inner
    }
    if (tok.t !== 'id') throw new Error(`promql: unexpected ${tok.v} in ${text}`)
    if (AGGREGATIONS.has(tok.v)) {
      let by = null
      if (peek()?.v === 'by') {
        next()
        by = labelList()
      }
      expect('(')
      const arg = add()
      expect(')')
      if (peek()?.v === 'by') {
        next()
        by = labelList()
      }
      return { k: 'agg', op: tok.v, by, arg }
    }
    if (peek()?.v === '(') {
      next()
      const args = []
      while (peek()?.v !== ')') {
        args.push(add())
        if (peek()?.v === ',') next()
      }
      expect(')')
      return { k: 'call', fn: tok.v, args }
    }
    const matchers = []
    if (peek()?.v === '{') {
      next()
      while (peek()?.v !== '}') {
        const name = next().v
        const op = next().v
        matchers.push([name, op, next().v])
        if (peek()?.v === ',') next()
      }
      expect('}')
    }
    const range = peek()?.t === 'range' ? next().v : undefined
    return { k: 'sel', name: tok.v, matchers, range }
  }
  const mul = () => {
    let left = primary()
    while (peek()?.v === '*' || peek()?.v === '/') left = { k: 'bin', op: next().v, left, right: primary() }
    return left
  }
  const add = () => {
    let left = mul()
    while (peek()?.v === '+' || peek()?.v === '-') left = { k: 'bin', op: next().v, left, right: mul() }
    return left
  }
  const tree = add()
  if (i !== tokens.length) throw new Error(`promql: trailing input in ${text}`)
  return tree
}

const keyOf = (labels) => JSON.stringify(Object.entries(labels).sort())

function arith(op, a, b) {
  if (op === '+') return a + b
  if (op === '-') return a - b
  if (op === '*') return a * b
  return b === 0 ? Number.NaN : a / b
}

function quantile(q, buckets) {
  buckets.sort((x, y) => x.le - y.le)
  const total = buckets.at(-1)?.v ?? 0
  if (total === 0 || !Number.isFinite(total)) return Number.NaN
  const rank = q * total
  let prevLe = 0
  let prevCount = 0
  for (const { le, v } of buckets) {
    if (v >= rank) {
      if (le === Number.POSITIVE_INFINITY) return prevLe
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(v - prevCount, Number.MIN_VALUE)
    }
    prevLe = le
    prevCount = v
  }
  return prevLe
}

/** Evaluates a parsed query at time `t` (ms): a number, or an array of `{ labels, v }`. */
export function evaluate(node, store, t) {
  switch (node.k) {
    case 'num':
      return node.v
    case 'sel': {
      const found = store.select(node.name, node.matchers)
      if (node.range !== undefined) {
        return found.map((s) => ({
          labels: s.labels,
          points: s.points.filter(([pt]) => pt > t - node.range && pt <= t),
        }))
      }
      const out = []
      for (const s of found) {
        let last
        for (const p of s.points) if (p[0] <= t && p[0] > t - LOOKBACK_MS) last = p
        if (last !== undefined) out.push({ labels: s.labels, v: last[1] })
      }
      return out
    }
    case 'call': {
      if (node.fn === 'rate' || node.fn === 'increase') {
        const out = []
        for (const s of evaluate(node.args[0], store, t)) {
          if (s.points.length < 2) continue
          const [t0, v0] = s.points[0]
          const [t1, v1] = s.points.at(-1)
          const delta = Math.max(0, v1 - v0)
          out.push({ labels: s.labels, v: node.fn === 'rate' ? delta / ((t1 - t0) / 1000) : delta })
        }
        return out
      }
      if (node.fn === 'scalar') {
        const v = evaluate(node.args[0], store, t)
        return Array.isArray(v) ? (v.length === 1 ? v[0].v : Number.NaN) : v
      }
      if (node.fn === 'histogram_quantile') {
        const q = evaluate(node.args[0], store, t)
        const groups = new Map()
        for (const s of evaluate(node.args[1], store, t)) {
          const { le, ...rest } = s.labels
          const key = keyOf(rest)
          if (!groups.has(key)) groups.set(key, { labels: rest, buckets: [] })
          groups.get(key).buckets.push({ le: le === '+Inf' ? Number.POSITIVE_INFINITY : Number(le), v: s.v })
        }
        return [...groups.values()].map((g) => ({ labels: g.labels, v: quantile(q, g.buckets) }))
      }
      throw new Error(`promql: unknown function ${node.fn}`)
    }
    case 'agg': {
      const groups = new Map()
      for (const s of evaluate(node.arg, store, t)) {
        const labels = {}
        for (const name of node.by ?? []) if (s.labels[name] !== undefined) labels[name] = s.labels[name]
        const key = keyOf(labels)
        if (!groups.has(key)) groups.set(key, { labels, values: [] })
        groups.get(key).values.push(s.v)
      }
      return [...groups.values()].map(({ labels, values }) => {
        const sum = values.reduce((a, b) => a + b, 0)
        const v =
          node.op === 'sum'
            ? sum
            : node.op === 'avg'
              ? sum / values.length
              : node.op === 'max'
                ? Math.max(...values)
                : Math.min(...values)
        return { labels, v }
      })
    }
    case 'bin': {
      const left = evaluate(node.left, store, t)
      const right = evaluate(node.right, store, t)
      if (!Array.isArray(left) && !Array.isArray(right)) return arith(node.op, left, right)
      if (!Array.isArray(right)) return left.map((s) => ({ labels: s.labels, v: arith(node.op, s.v, right) }))
      if (!Array.isArray(left)) return right.map((s) => ({ labels: s.labels, v: arith(node.op, left, s.v) }))
      const byKey = new Map(right.map((s) => [keyOf(s.labels), s.v]))
      return left
        .filter((s) => byKey.has(keyOf(s.labels)))
        .map((s) => ({ labels: s.labels, v: arith(node.op, s.v, byKey.get(keyOf(s.labels))) }))
    }
  }
  throw new Error(`promql: cannot evaluate ${node.k}`)
}

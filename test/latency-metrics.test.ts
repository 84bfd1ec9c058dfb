// Latency histograms in metrics() (counts match the operations made, per op and tier) and the
// `tiered-session:<op>` tracing channels of node:diagnostics_channel.

import diagnosticsChannel from 'node:diagnostics_channel'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TieredStore } from '../src/store.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000
const NAME = 'tiered_session_operation_duration_seconds'

/** The samples of one metric family, as `{ labels text → value }`. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const cut = line.lastIndexOf(' ')
    out.set(line.slice(name.length, cut), Number(line.slice(cut + 1)))
  }
  return out
}

/** `_count` of the operation histogram for `op` on `tier` (0 when the series is absent). */
function countOf(store: TieredStore, op: string, tier: string): number {
  return samples(store.metrics(), `${NAME}_count`).get(`{op="${op}",tier="${tier}"}`) ?? 0
}

describe('operation duration histograms', () => {
  it('count every operation by the tier it ran on (local mode), with cumulative buckets up to +Inf', async () => {
    const { store, clock } = createStore()
    for (let i = 0; i < 5; i++) await store.set(`s${i}`, sessionFor(clock.now(), HOUR, { i }))
    for (let i = 0; i < 5; i++) await store.get(`s${i}`)
    for (let i = 0; i < 3; i++) await store.get(`unknown${i}`)
    await store.merge('s0', { set: { extra: '1' }, unset: [] })
    await store.merge('s1', { set: { extra: '1' }, unset: [] })
    clock.advance(60_000)
    await store.touch('s2', sessionFor(clock.now(), HOUR, { i: 2 }))
    await store.destroy('s3')

    // Every get looks in memory first; the 3 unknown sessions then in the file.
    expect(countOf(store, 'get', 'memory')).toBe(8)
    expect(countOf(store, 'get', 'disk')).toBe(3)
    expect(countOf(store, 'set', 'disk')).toBe(5)
    expect(countOf(store, 'merge', 'disk')).toBe(2)
    expect(countOf(store, 'touch', 'memory')).toBe(1)
    expect(countOf(store, 'destroy', 'disk')).toBe(1)
    expect(countOf(store, 'get', 'redis')).toBe(0)

    const text = store.metrics()
    expect(text).toContain(`# TYPE ${NAME} histogram`)
    const buckets = [...samples(text, `${NAME}_bucket`)]
      .filter(([labels]) => labels.startsWith('{op="get",tier="memory",'))
      .map(([labels, value]) => [labels.replace(/.*le="([^"]+)".*/, '$1'), value] as const)
    expect(buckets.map(([le]) => le)).toEqual(
      [
        '0.00001',
        '0.000025',
        '0.00005',
        '0.0001',
        '0.00025',
        '0.0005',
        '0.001',
        '0.0025',
        '0.005',
        '0.01',
        '0.025',
        '0.05',
        '0.1',
        '0.25',
        '0.5',
        '1',
        '+Inf',
      ].map((le) => (le === '+Inf' ? le : String(Number(le)))),
    )
    for (let i = 1; i < buckets.length; i++)
      expect(buckets[i]?.[1]).toBeGreaterThanOrEqual(buckets[i - 1]?.[1] as number)
    expect(buckets.at(-1)?.[1]).toBe(8)
    expect(samples(text, `${NAME}_sum`).get('{op="get",tier="memory"}')).toBeGreaterThan(0)
  })

  it('time spill cycles that moved sessions', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 8 * 1024 } })
    expect(samples(store.metrics(), 'tiered_session_spill_duration_seconds_count').size).toBe(0)
    for (let i = 0; i < 20; i++)
      await store.set(`s${i}`, sessionFor(clock.now(), HOUR, { pad: 'x'.repeat(600) }))
    await store.flush()
    expect(store.stats().spills).toBeGreaterThan(0)
    const cycles = samples(store.metrics(), 'tiered_session_spill_duration_seconds_count').get('')
    expect(cycles).toBeGreaterThan(0)
  })
})

describe('operation duration histograms in shared mode', () => {
  const redis = useRedis()

  it('count gets answered by Redis in shared mode', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('s1', sharedSession(clock.now(), HOUR, { v: 1 }))
    expect(countOf(a, 'set', 'redis')).toBe(1)
    // b holds no copy: memory, then its file (the spill cache), then Redis.
    await b.get('s1')
    expect(countOf(b, 'get', 'memory')).toBe(1)
    expect(countOf(b, 'get', 'redis')).toBe(1)
    // Cached, unverified (a first read is not tracked): memory, then Redis (the read that finds the copy current),
    // then memory and Redis's version of it (tracked): trusted from then on, memory only.
    await b.get('s1')
    await b.get('s1')
    expect(countOf(b, 'get', 'memory')).toBe(3)
    expect(countOf(b, 'get', 'redis')).toBe(3)
    await b.get('s1')
    expect(countOf(b, 'get', 'memory')).toBe(4)
    expect(countOf(b, 'get', 'redis')).toBe(3)
    await b.destroy('s1')
    expect(countOf(b, 'destroy', 'redis')).toBe(1)
  })
})

describe('tracing channels', () => {
  type Seen = { phase: string; context: Record<string, unknown> }

  /** Subscribes to `tiered-session:<op>` for the test; returns what it sees. */
  function subscribe(op: string): Seen[] {
    const seen: Seen[] = []
    const record = (phase: string) => (context: unknown) =>
      seen.push({ phase, context: { ...(context as Record<string, unknown>) } })
    const handlers = {
      start: record('start'),
      end: record('end'),
      asyncStart: record('asyncStart'),
      asyncEnd: record('asyncEnd'),
      error: record('error'),
    }
    const channel = diagnosticsChannel.tracingChannel(`tiered-session:${op}`)
    channel.subscribe(handlers)
    onTestFinished(() => channel.unsubscribe(handlers))
    return seen
  }

  it('trace a synchronous get with start and end, and an asynchronous set with asyncStart and asyncEnd', async () => {
    const { store, clock } = createStore()
    const gets = subscribe('get')
    const sets = subscribe('set')
    await store.set('s1', sessionFor(clock.now(), HOUR, { secret: 'data' }))
    await store.get('s1')
    await store.get('missing')
    expect(sets.map((s) => s.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
    expect(sets[0]?.context).toEqual({ operation: 'set', mode: 'local' })
    // Local mode: a get answers synchronously (memory or the file).
    expect(gets.map((s) => s.phase)).toEqual(['start', 'end', 'start', 'end'])
    expect(gets[1]?.context).toEqual({ operation: 'get', mode: 'local', hit: true })
    expect(gets[3]?.context).toEqual({ operation: 'get', mode: 'local', hit: false })
    // Never an id or data.
    expect(JSON.stringify([...gets, ...sets])).not.toMatch(/s1|secret|data/)
  })

  it('publish error (without the id) when an operation fails', async () => {
    const { store, clock } = createStore({ maxSessionBytes: 100 })
    store.on('error', () => {})
    const sets = subscribe('set')
    await expect(
      store.set('s1', sessionFor(clock.now(), HOUR, { pad: 'x'.repeat(500) })),
    ).rejects.toMatchObject({
      code: 'TS_SESSION_TOO_LARGE',
    })
    expect(sets.map((s) => s.phase)).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd'])
    expect(sets[2]?.context.error).toMatchObject({ code: 'TS_SESSION_TOO_LARGE' })
  })

  it('trace destroy, merge and touch', async () => {
    const { store, clock } = createStore()
    const seen = ['merge', 'touch', 'destroy'].map((op) => subscribe(op))
    await store.set('s1', sessionFor(clock.now(), HOUR))
    await store.merge('s1', { set: { a: '1' }, unset: [] })
    await store.touch('s1', sessionFor(clock.now() + 1000, HOUR))
    await store.destroy('s1')
    for (const phases of seen)
      expect(phases.map((s) => s.phase)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd'])
  })
})

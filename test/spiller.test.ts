import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { createStore, sessionFor } from './helpers/stores.js'

const KiB = 1024
const DAY = 86_400_000

/** A session whose payload is about `bytes` long. */
function sized(now: number, bytes: number, tag: string) {
  return sessionFor(now, DAY, { tag, pad: 'p'.repeat(bytes - 120) })
}

describe('the spiller', () => {
  it('does nothing at or below the high watermark', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 100 * KiB } })
    for (let i = 0; i < 70; i++) await store.set(`s${i}`, sized(clock.now(), 1000, `${i}`))
    expect(store.stats().memory.bytes).toBeLessThanOrEqual(80 * KiB)
    expect(await store.flush()).toEqual({ sessions: 0, bytes: 0 })
    expect(store.stats().spills).toBe(0)
  })

  it('above the high watermark brings memory down to the low watermark, least recently used first', async () => {
    const { store, clock } = createStore({
      memory: { maxBytes: 100 * KiB, highWatermark: 0.9, lowWatermark: 0.5 },
    })
    for (let i = 0; i < 80; i++) await store.set(`s${i}`, sized(clock.now(), 1000, `${i}`))
    // Reading s0..s9 makes them the most recently used.
    for (let i = 0; i < 10; i++) await store.get(`s${i}`)
    const spills: unknown[] = []
    store.on('spill', (result) => spills.push(result))
    for (let i = 80; i < 95; i++) await store.set(`s${i}`, sized(clock.now(), 1000, `${i}`))
    const bytes = store.stats().memory.bytes
    expect(bytes).toBeLessThanOrEqual(90 * KiB)
    expect(spills.length).toBeGreaterThan(0)
    const stats = store.stats()
    const promotionsBefore = stats.promotions
    // The recently read ones stayed in memory; the oldest untouched ones went to disk.
    for (let i = 0; i < 10; i++) await store.get(`s${i}`)
    expect(store.stats().promotions).toBe(promotionsBefore)
    await store.get('s10')
    expect(store.stats().promotions).toBe(promotionsBefore + 1)
  })

  it('is kicked by a write that crosses the high watermark, without waiting for its interval', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 50 * KiB }, spillIntervalMs: 3_600_000 })
    const spilled = once(store, 'spill')
    for (let i = 0; i < 60; i++) await store.set(`s${i}`, sized(clock.now(), 1000, `${i}`))
    const [result] = await spilled
    expect(result.sessions).toBeGreaterThan(0)
    expect(store.stats().memory.bytes).toBeLessThanOrEqual(50 * KiB)
  })

  it('never leaves an acknowledged session absent from both tiers while spilling', async () => {
    const { store, clock } = createStore({ memory: { maxBytes: 64 * KiB } })
    const acknowledged: string[] = []
    const missing: string[] = []
    let checked = 0
    store.on('spill', () => {
      // Runs synchronously inside the spill cycle, right after sessions left memory; get() looks up
      // synchronously (only its promise settles later), so this sees the tiers exactly as the spill left them.
      for (const sid of acknowledged) {
        checked++
        void store.get(sid).then((s) => {
          if (s === undefined) missing.push(sid)
        })
      }
    })
    // Writes in flight while spills run: some are committed, some are still queued.
    for (let start = 0; start < 300; start += 30) {
      const batch = []
      for (let i = start; i < start + 30; i++) {
        batch.push(
          store.set(`s${i}`, sized(clock.now(), 1000, `${i}`)).then(() => acknowledged.push(`s${i}`)),
        )
      }
      await Promise.all(batch)
    }
    await store.flush()
    expect(store.stats().spills).toBeGreaterThan(0)
    expect(checked).toBeGreaterThan(100)
    expect(missing).toEqual([])
  })
})

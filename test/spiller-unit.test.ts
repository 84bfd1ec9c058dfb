import { describe, expect, it } from 'vitest'
import { Spiller } from '../src/spiller.js'
import { MemoryTier } from '../src/tiers/memory-tier.js'
import { ManualClock } from './helpers/manual-clock.js'

/** A memory tier of `maxBytes` holding `count` sessions of ~100 bytes each (s0, s1, ...). */
function filledMemory(count: number, maxBytes = 10_000) {
  const clock = new ManualClock()
  const memory = new MemoryTier({ maxBytes, clock })
  for (let i = 0; i < count; i++) {
    memory.write(`s${i}`, {
      payload: JSON.stringify({ pad: 'x'.repeat(80) }),
      expiresAt: clock.now() + 1000,
      userId: null,
      version: 1,
    })
  }
  return memory
}

describe('Spiller with a lower tier to move sessions into (shared mode)', () => {
  it('hands sessions down while they are still in memory, then removes them', () => {
    const memory = filledMemory(95)
    const stillInMemory: boolean[] = []
    const spiller = new Spiller({
      memory,
      highWatermark: 0.8,
      lowWatermark: 0.6,
      intervalMs: 1000,
      moveDown: (records) => {
        for (const [sid] of records) stillInMemory.push(memory.peek(sid) !== undefined)
      },
      onSpill: () => undefined,
      onError: () => undefined,
    })
    const result = spiller.cycle()
    expect(result.sessions).toBeGreaterThan(0)
    expect(stillInMemory).toHaveLength(result.sessions)
    expect(stillInMemory.every(Boolean)).toBe(true)
    expect(memory.bytes).toBeLessThanOrEqual(6000)
    // Least recently used first: the oldest went, the newest stayed.
    expect(memory.peek('s0')).toBeUndefined()
    expect(memory.peek('s94')).toBeDefined()
  })

  it('keeps sessions in memory when moving them down fails, and reports the failure from the background', async () => {
    const memory = filledMemory(95)
    const errors: unknown[] = []
    const spiller = new Spiller({
      memory,
      highWatermark: 0.8,
      lowWatermark: 0.6,
      intervalMs: 1000,
      moveDown: () => {
        throw new Error('disk full')
      },
      onSpill: () => undefined,
      onError: (error) => errors.push(error),
    })
    const bytes = memory.bytes
    expect(() => spiller.cycle()).toThrow('disk full')
    expect(memory.bytes).toBe(bytes)
    spiller.kick()
    await new Promise((resolve) => setImmediate(resolve))
    expect(errors).toHaveLength(1)
  })
})

describe('Spiller slices', () => {
  it('a cycle moves sessions in slices of about 1 ms and yields between them; each step hands sessions down before they leave memory', async () => {
    // 400 sessions of ~100 bytes in 40 KB: 0.8 → 0.6 means ~80 sessions to move, in steps of 64.
    const memory = filledMemory(380, 40_000)
    let now = 0
    const steps: number[] = []
    const absent: string[] = []
    const slices: number[] = []
    const spiller = new Spiller({
      memory,
      highWatermark: 0.5,
      lowWatermark: 0.1,
      intervalMs: 3_600_000,
      // A full step of 64 takes half a slice (0.5 ms of the slice's clock): a slice holds two of them.
      moveDown: (records) => {
        now += records.length * (0.5 / 64)
        steps.push(records.length)
        for (const [sid] of records) if (memory.peek(sid) === undefined) absent.push(sid)
      },
      onSpill: (result) => slices.push(result.sessions),
      onError: (error) => {
        throw error
      },
      sliceClock: () => now,
    })
    const first = spiller.step()
    // One slice: two steps of 64, then it yields with memory still above the low watermark.
    expect(first.sessions).toBe(128)
    expect(memory.bytes).toBeGreaterThan(4000)
    while (memory.bytes > 4000) await new Promise((resolve) => setImmediate(resolve))
    expect(slices.length).toBeGreaterThan(1)
    expect(Math.max(...steps)).toBeLessThanOrEqual(64)
    expect(slices.every((n) => n <= 128)).toBe(true)
    expect(absent).toEqual([])
    spiller.stop()
  })

  it('makes steps smaller when moving sessions down is slow, so that one step takes about half a slice', async () => {
    const memory = filledMemory(950, 100_000)
    let now = 0
    const steps: Array<{ sessions: number; ms: number }> = []
    const spiller = new Spiller({
      memory,
      highWatermark: 0.5,
      lowWatermark: 0.05,
      intervalMs: 3_600_000,
      // 50 µs a session (a slow disk): a step of 64 would block 3.2 ms.
      moveDown: (records) => {
        now += records.length * 0.05
        steps.push({ sessions: records.length, ms: records.length * 0.05 })
      },
      onSpill: () => undefined,
      onError: (error) => {
        throw error
      },
      sliceClock: () => now,
    })
    spiller.cycle()
    expect(steps[0]?.sessions).toBe(64)
    // Halfway towards what fits each time: 37, 23, 16, ... down to the ~10 sessions that fit in 0.5 ms.
    expect(steps.slice(1, 4).map((s) => s.sessions)).toEqual([37, 23, 16])
    const later = steps.slice(6)
    expect(later.length).toBeGreaterThan(10)
    for (const step of later) expect(step.ms).toBeLessThanOrEqual(0.6)
    spiller.stop()
  })

  it('never makes a step smaller than 4 sessions', () => {
    const memory = filledMemory(190, 20_000)
    let now = 0
    const sizes: number[] = []
    const spiller = new Spiller({
      memory,
      highWatermark: 0.5,
      lowWatermark: 0.05,
      intervalMs: 3_600_000,
      moveDown: (records) => {
        now += records.length * 5
        sizes.push(records.length)
      },
      onSpill: () => undefined,
      onError: (error) => {
        throw error
      },
      sliceClock: () => now,
    })
    spiller.cycle()
    expect(Math.min(...sizes.slice(0, -1))).toBe(4)
    expect(sizes.slice(8, -1).every((n) => n === 4)).toBe(true)
    spiller.stop()
  })
})

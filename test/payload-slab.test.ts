import { describe, expect, it } from 'vitest'
import { payloadBytes } from '../src/codec.js'
import type { MemoryRecord } from '../src/tiers/memory-tier.js'
import { MemoryTier, recordIdentity } from '../src/tiers/memory-tier.js'
import { BLOCK_BYTES, PayloadSlab } from '../src/tiers/payload-slab.js'
import { ManualClock } from './helpers/manual-clock.js'

/** mulberry32: a small seeded PRNG, so a failure replays. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const PIECES = ['a', 'Z', '0', '"', '\\n', 'é', 'ß', '€', '中', '😀', '{"k":1}']

function text(r: () => number, length: number): string {
  let s = ''
  while (s.length < length) s += PIECES[Math.floor(r() * PIECES.length)]
  return s
}

describe('PayloadSlab', () => {
  it('returns every payload as stored, whatever its size and characters', () => {
    const slab = new PayloadSlab()
    const samples = [
      '',
      'x',
      'a'.repeat(BLOCK_BYTES - 1),
      'a'.repeat(BLOCK_BYTES),
      'a'.repeat(BLOCK_BYTES + 1),
      `${'é'.repeat(63)}€`,
      '😀'.repeat(100),
      JSON.stringify({ cart: [{ sku: 'ü', qty: 2 }], note: '中文' }),
      text(rng(1), 150_000),
    ]
    const heads = samples.map((s) => slab.store(s, payloadBytes(s)))
    samples.forEach((s, i) => {
      expect(slab.read(heads[i] as number, payloadBytes(s))).toBe(s)
    })
  })

  it('keeps every live payload intact while others are freed and their blocks reused, across pages', () => {
    const slab = new PayloadSlab()
    const r = rng(42)
    const live = new Map<number, string>()
    let stored = 0
    for (let step = 0; step < 30_000; step++) {
      if (live.size > 0 && r() < 0.45) {
        const heads = [...live.keys()]
        const head = heads[Math.floor(r() * heads.length)] as number
        slab.free(head, payloadBytes(live.get(head) as string))
        live.delete(head)
      } else {
        const s = text(r, Math.floor(r() * 1500))
        const head = slab.store(s, payloadBytes(s))
        expect(live.has(head)).toBe(false)
        live.set(head, s)
        stored += payloadBytes(s)
      }
    }
    // More than one 1 MiB page was in use at some point.
    expect(stored).toBeGreaterThan(4 * 1024 * 1024)
    expect(slab.capacityBytes).toBeGreaterThan(1024 * 1024)
    for (const [head, s] of live) expect(slab.read(head, payloadBytes(s))).toBe(s)
  })

  it('reuses freed blocks instead of growing', () => {
    const slab = new PayloadSlab()
    const payload = 'p'.repeat(1000)
    const bytes = payloadBytes(payload)
    for (let round = 0; round < 5; round++) {
      const heads = Array.from({ length: 2000 }, () => slab.store(payload, bytes))
      for (const head of heads) slab.free(head, bytes)
    }
    expect(slab.usedBytes).toBe(0)
    // 2,000 payloads of 8 blocks: 16,000 blocks, two pages of 8,192.
    expect(slab.capacityBytes).toBe(2 * 1024 * 1024)
  })
})

describe('MemoryTier with payloads in the slab', () => {
  function tier(maxBytes = 10_000) {
    const clock = new ManualClock()
    return { clock, memory: new MemoryTier({ maxBytes, clock }) }
  }

  it('hands out copies that stay readable after the session left memory and its blocks were reused', () => {
    const { clock, memory } = tier()
    const input = {
      payload: JSON.stringify({ user: 'a', pad: 'x'.repeat(500) }),
      expiresAt: clock.now() + 1000,
    }
    memory.write('a', { ...input, userId: 'a' })
    const copy = memory.get('a')
    memory.delete('a')
    // The freed blocks go to the next session of the same size.
    memory.write('b', {
      payload: JSON.stringify({ user: 'b', pad: 'y'.repeat(500) }),
      expiresAt: input.expiresAt,
      userId: 'b',
    })
    expect(copy?.payload).toBe(input.payload)
    expect(memory.get('b')?.payload).toContain('"user":"b"')
  })

  it('hands out plain data: a spread copy keeps the payload', () => {
    const { clock, memory } = tier()
    memory.write('a', { payload: '{"n":1}', expiresAt: clock.now() + 1000, userId: null })
    const copy = memory.peek('a')
    expect({ ...copy }).toMatchObject({ payload: '{"n":1}', version: 1, bytes: 7 })
  })

  it('peekMeta() gives the metadata of the record peek() would copy, and nothing for a session not held', () => {
    const { clock, memory } = tier()
    memory.write('a', { payload: '{"n":1}', expiresAt: clock.now() + 1000, userId: 'u', createdAt: 5 })
    const { payload: _payload, ...meta } = { ...(memory.peek('a') as MemoryRecord) }
    expect(memory.peekMeta('a')).toMatchObject(meta)
    expect(memory.peekMeta('b')).toBeUndefined()
    memory.delete('a')
    expect(memory.peekMeta('a')).toBeUndefined()
  })

  it('gives every copy of one stored record the same identity, and a rewrite a new one', () => {
    const { clock, memory } = tier()
    const written = memory.write('a', { payload: '{"n":1}', expiresAt: clock.now() + 1000, userId: null })
    const first = memory.get('a') as MemoryRecord
    const second = memory.peek('a') as MemoryRecord
    expect(first).not.toBe(second)
    expect(recordIdentity(first)).toBe(recordIdentity(written))
    expect(recordIdentity(second)).toBe(recordIdentity(written))
    memory.write('a', { payload: '{"n":2}', expiresAt: clock.now() + 1000, userId: null })
    expect(recordIdentity(memory.peek('a') as MemoryRecord)).not.toBe(recordIdentity(written))
  })

  it('refuses to read a spill candidate after it left memory rather than serve other bytes', () => {
    expect.assertions(2)
    const { clock, memory } = tier()
    memory.write('a', { payload: '{"n":1}', expiresAt: clock.now() + 1000, userId: null })
    const held = ([...memory.spillCandidates()][0] as readonly [string, MemoryRecord])[1]
    memory.delete('a')
    memory.write('b', { payload: '{"n":2}', expiresAt: clock.now() + 1000, userId: null })
    try {
      void held.payload
    } catch (error) {
      expect(error).toMatchObject({ code: 'TS_DECODE_FAILED' })
    }
    expect(memory.peek('b')?.payload).toBe('{"n":2}')
  })

  it('does not keep a session larger than the whole budget, and gives its blocks back', () => {
    const { clock, memory } = tier(100)
    const payload = JSON.stringify({ pad: 'x'.repeat(200) })
    const record = memory.write('big', { payload, expiresAt: clock.now() + 1000, userId: null })
    expect(record.payload).toBe(payload)
    expect(memory.peek('big')).toBeUndefined()
    expect(memory.bytes).toBe(0)
  })

  it('drops the spill candidates it was handed off the old end of the LRU, and gives their blocks back', () => {
    const { clock, memory } = tier()
    for (const sid of ['a', 'b', 'c'])
      memory.write(sid, { payload: `{"s":"${sid}"}`, expiresAt: clock.now() + 1000, userId: null })
    const victims = [...memory.spillCandidates()].slice(0, 2)
    expect(victims.map(([sid]) => sid)).toEqual(['a', 'b'])
    const freed = memory.dropOldest(victims)
    expect(freed).toBe(payloadBytes('{"s":"a"}') + payloadBytes('{"s":"b"}'))
    expect(memory.bytes).toBe(payloadBytes('{"s":"c"}'))
    expect([...memory.leastRecentlyUsed()]).toEqual(['c'])
    // Their blocks are free again: two more sessions take no new page.
    memory.write('d', { payload: '{"s":"d"}', expiresAt: clock.now() + 1000, userId: null })
    expect(memory.peek('c')?.payload).toBe('{"s":"c"}')
    expect(memory.peek('d')?.payload).toBe('{"s":"d"}')
  })

  it('drops by key once the order changed after the candidates were taken, never a newer record of a victim', () => {
    const { clock, memory } = tier()
    for (const sid of ['a', 'b', 'c'])
      memory.write(sid, { payload: `{"s":"${sid}"}`, expiresAt: clock.now() + 1000, userId: null })
    const victims = [...memory.spillCandidates()].slice(0, 2)
    // a read makes 'a' the most recent, and 'b' is written again: neither is at the old end any more.
    memory.get('a')
    memory.write('b', { payload: '{"s":"b2"}', expiresAt: clock.now() + 1000, userId: null })
    // The old end now holds 'c', which was no victim: taken off all the same (memory is only a copy), then 'a'
    // by its key; 'b' holds a newer record than the victim's and stays.
    const freed = memory.dropOldest(victims)
    expect(freed).toBe(payloadBytes('{"s":"a"}'))
    expect(memory.peek('a')).toBeUndefined()
    expect(memory.peek('c')).toBeUndefined()
    expect(memory.peek('b')?.payload).toBe('{"s":"b2"}')
    expect(memory.bytes).toBe(payloadBytes('{"s":"b2"}'))
  })
})

// The Tier contract on the memory tier and the disk tier, with each tier's own cases: the memory tier's
// byte count and LRU order; the disk tier's corrupt rows, spill cache upkeep and outbox log (shared mode).

import { join } from 'node:path'
import Database from 'better-sqlite3'
import { expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { MemoryTier } from '../src/tiers/memory-tier.js'
import { runTierConformance } from './conformance/tier-conformance.js'
import { ManualClock } from './helpers/manual-clock.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

runTierConformance(
  'memory',
  () => {
    const clock = new ManualClock()
    const tier = new MemoryTier({ maxBytes: 8 * 1024 * 1024, clock })
    return { tier, clock, close: () => tier.close() }
  },
  {
    extras: (open) => {
      it('counts exact UTF-8 payload bytes and lists ids least recently used first', async () => {
        const { tier, clock } = await open()
        tier.write('a', { payload: '"ü"', expiresAt: clock.now() + HOUR, userId: null })
        tier.write('b', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
        expect(tier.bytes).toBe(4 + 2)
        expect(tier.entries).toBe(2)
        tier.get('a')
        expect([...tier.leastRecentlyUsed()]).toEqual(['b', 'a'])
      })
    },
  },
)

let reopenPath = ''

runTierConformance(
  'disk',
  () => {
    const clock = new ManualClock()
    const dir = makeTempDir()
    reopenPath = join(dir.path, 'sessions.db')
    const tier = new DiskTier({ path: reopenPath, synchronous: 'normal', maxBatchSize: 100, clock })
    return {
      tier,
      clock,
      close: () => {
        tier.close()
        dir.remove()
      },
    }
  },
  {
    extras: (open) => {
      it('passes a row with columns of the wrong type to onCorrupt and lists the rest', async () => {
        const { tier, clock } = await open()
        await tier.write('good', { payload: '{}', expiresAt: clock.now() + HOUR, userId: 'u' })
        await tier.write('bad', { payload: '{}', expiresAt: clock.now() + HOUR, userId: 'u' })
        const db = new Database(tier.path)
        db.prepare("UPDATE sessions SET payload = x'00ff' WHERE sid = 'bad'").run()
        db.close()
        const errors: TieredSessionError[] = []
        expect(tier.rows((e) => errors.push(e)).map((r) => r.sid)).toEqual(['good'])
        expect(tier.rowsOfUser('u', (e) => errors.push(e)).map((r) => r.sid)).toEqual(['good'])
        expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED', 'TS_DECODE_FAILED'])
        expect(() => tier.get('bad')).toThrow(expect.objectContaining({ code: 'TS_DECODE_FAILED' }))
      })

      it('keeps spilled copies with their versions, and drops and clears them at once (spill cache)', async () => {
        const { tier, clock } = await open()
        const copy = { payload: '{"n":1}', expiresAt: clock.now() + HOUR, version: 77, userId: null }
        tier.keepNow([
          ['a', copy],
          ['b', { ...copy, version: 78 }],
        ])
        expect(tier.get('a')).toEqual(copy)
        tier.dropNow('a')
        tier.dropNow('never-kept')
        expect(tier.get('a')).toBeUndefined()
        tier.clearNow()
        expect(tier.get('b')).toBeUndefined()
        expect(tier.count()).toBe(0)
      })

      it('keeps the outbox log in order across a reopen, and removes entries one by one', async () => {
        const { tier, clock } = await open()
        const record = { payload: '{"n":1}', expiresAt: clock.now() + HOUR, version: 5, userId: 'u' }
        const seqs: number[] = []
        await tier.outboxLog.appendWrite('a', record, (seq) => seqs.push(seq))
        await tier.outboxLog.appendDelete('b', 9, (seq) => seqs.push(seq))
        expect(tier.get('a')).toEqual(record)
        expect(tier.outboxLog.size()).toBe(2)
        tier.close()
        const again = new DiskTier({ path: reopenPath, synchronous: 'normal', maxBatchSize: 100, clock })
        try {
          const entries = again.outboxLog.entries(() => undefined)
          expect(entries).toEqual([
            { seq: seqs[0], sid: 'a', op: 'set', record },
            {
              seq: seqs[1],
              sid: 'b',
              op: 'delete',
              record: { payload: '', expiresAt: 0, version: 9, userId: null },
            },
          ])
          again.outboxLog.remove(seqs[0] as number)
          expect(again.outboxLog.entries(() => undefined).map((e) => e.sid)).toEqual(['b'])
          expect(again.outboxLog.size()).toBe(1)
        } finally {
          again.close()
        }
      })
    },
  },
)

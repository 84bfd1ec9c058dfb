// The conformance suite every tier runs: get, set, delete, overwrite, expiry, large values, clear.

import { describe, expect, it, onTestFinished } from 'vitest'
import type { Tier } from '../../src/tiers/tier.js'
import type { ManualClock } from '../helpers/manual-clock.js'

export interface TierFixture {
  tier: Tier
  clock: ManualClock
  close(): Promise<void> | void
}

const HOUR = 3_600_000

/** Registers the conformance tests for the tier built by `create`. */
export function runTierConformance(name: string, create: () => TierFixture | Promise<TierFixture>): void {
  async function open(): Promise<TierFixture> {
    const fixture = await create()
    onTestFinished(() => fixture.close())
    return fixture
  }

  describe(`${name} tier conformance`, () => {
    it('misses an id it never stored', async () => {
      const { tier } = await open()
      expect(await tier.get('never-stored')).toBeUndefined()
    })

    it('returns what was set, byte for byte', async () => {
      const { tier, clock } = await open()
      const payload = JSON.stringify({ cart: [{ sku: 'A1', qty: 2 }], name: 'Zoë ✓ 🍕' })
      await tier.write('s1', { payload, expiresAt: clock.now() + HOUR, userId: 'u1' })
      const got = await tier.get('s1')
      expect(got).toMatchObject({ payload, expiresAt: clock.now() + HOUR, userId: 'u1' })
      expect(got?.version).toBeGreaterThanOrEqual(1)
    })

    it('replaces on overwrite and raises the version', async () => {
      const { tier, clock } = await open()
      const first = await tier.write('s1', {
        payload: '{"n":1}',
        expiresAt: clock.now() + HOUR,
        userId: null,
      })
      const second = await tier.write('s1', {
        payload: '{"n":2}',
        expiresAt: clock.now() + 2 * HOUR,
        userId: 'u2',
      })
      expect(second.version).toBeGreaterThan(first.version)
      expect(await tier.get('s1')).toMatchObject({
        payload: '{"n":2}',
        expiresAt: clock.now() + 2 * HOUR,
        userId: 'u2',
      })
    })

    it('deletes, and says whether the id was there', async () => {
      const { tier, clock } = await open()
      await tier.write('s1', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
      expect(await tier.delete('s1')).toBe(true)
      expect(await tier.get('s1')).toBeUndefined()
      expect(await tier.delete('s1')).toBe(false)
    })

    it('never returns a record at or after its expiry, to the millisecond', async () => {
      const { tier, clock } = await open()
      await tier.write('s1', { payload: '{}', expiresAt: clock.now() + 5, userId: null })
      clock.advance(4)
      expect(await tier.get('s1')).toBeDefined()
      clock.advance(1)
      expect(await tier.get('s1')).toBeUndefined()
    })

    it('stores a large value intact', async () => {
      const { tier, clock } = await open()
      const payload = JSON.stringify({ blob: 'x'.repeat(512 * 1024), tail: 'end' })
      await tier.write('big', { payload, expiresAt: clock.now() + HOUR, userId: null })
      expect((await tier.get('big'))?.payload).toBe(payload)
    })

    it('keeps ids apart, including odd but valid ones', async () => {
      const { tier, clock } = await open()
      const ids = ['a', 'A', 'a ', "o'neil", 'x;DROP TABLE sessions;--', '../../etc/passwd', '%00']
      for (const [i, id] of ids.entries()) {
        await tier.write(id, { payload: JSON.stringify({ i }), expiresAt: clock.now() + HOUR, userId: null })
      }
      for (const [i, id] of ids.entries()) expect((await tier.get(id))?.payload).toBe(JSON.stringify({ i }))
    })

    it('clears everything', async () => {
      const { tier, clock } = await open()
      for (let i = 0; i < 10; i++) {
        await tier.write(`s${i}`, { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
      }
      await tier.clear()
      for (let i = 0; i < 10; i++) expect(await tier.get(`s${i}`)).toBeUndefined()
    })
  })
}

import { afterEach, describe, expect, it, vi } from 'vitest'
import { TouchBatch } from '../src/redis/touch-batch.js'
import { TOUCH_COMMIT_MS } from '../src/tiers/tier.js'
import { openDiskTier } from './helpers/disk-tiers.js'

const HOUR = 3_600_000

afterEach(() => {
  vi.useRealTimers()
})

describe('deferred touches in local mode', () => {
  it('go to the group commit 64 per turn of the event loop once their interval is up', async () => {
    const { tier, clock } = openDiskTier({ maxBatchSize: 1000 })
    const sids = Array.from({ length: 200 }, (_, i) => `s${i}`)
    const written = await Promise.all(
      sids.map((sid) =>
        tier.write(sid, { payload: '{"n":1}', expiresAt: clock.now() + HOUR, userId: null }, {}),
      ),
    )
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    sids.forEach((sid, i) => {
      tier.touchLater(sid, {
        version: written[i]?.version ?? 0,
        expiresAt: clock.now() + 2 * HOUR,
        cookieText: '{}',
        userId: null,
        windowMs: TOUCH_COMMIT_MS,
      })
    })
    const before = tier.transactions
    expect(tier.pendingWrites).toBe(0)
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    const pending: number[] = [tier.pendingWrites]
    while (vi.getTimerCount() > 0 && pending.length < 50) {
      vi.advanceTimersToNextTimer()
      pending.push(tier.pendingWrites)
    }
    expect(Math.max(...pending)).toBe(64)
    expect(tier.transactions - before).toBe(4)
    expect(tier.pendingWrites).toBe(0)
    for (const sid of sids) expect(tier.get(sid)?.expiresAt).toBe(clock.now() + 2 * HOUR)
  })
})

describe('deferred touches in shared mode', () => {
  it('are sent at most 16 at a time, all of them', async () => {
    let inFlight = 0
    let most = 0
    const sent: string[] = []
    const batch = new TouchBatch(async (sid) => {
      inFlight++
      most = Math.max(most, inFlight)
      await new Promise((resolve) => setImmediate(resolve))
      sent.push(sid)
      inFlight--
    })
    for (let i = 0; i < 100; i++)
      batch.add(`s${i}`, { version: 1, expiresAt: 1, cookieText: '{}', userId: null, windowMs: 1000 })
    await batch.commit()
    expect(most).toBe(16)
    expect(sent.sort()).toEqual(Array.from({ length: 100 }, (_, i) => `s${i}`).sort())
  })
})

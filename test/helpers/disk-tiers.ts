// A DiskTier on a SQLite file of its own in a fresh temp dir, with a manual clock; closed and removed when the
// test ends.

import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { DiskTierOptions } from '../../src/tiers/disk-tier.js'
import { DiskTier } from '../../src/tiers/disk-tier.js'
import { ManualClock } from './manual-clock.js'
import { makeTempDir } from './temp-dir.js'

/** Opens the tier (`maxBatchSize` 100 unless given); `options` may set any other option of DiskTier. */
export function openDiskTier(options: Partial<DiskTierOptions> = {}): { tier: DiskTier; clock: ManualClock } {
  const dir = makeTempDir()
  const clock = new ManualClock()
  const tier = new DiskTier({
    path: join(dir.path, 'sessions.db'),
    synchronous: 'normal',
    maxBatchSize: 100,
    clock,
    ...options,
  })
  onTestFinished(() => {
    tier.close()
    dir.remove()
  })
  return { tier, clock }
}

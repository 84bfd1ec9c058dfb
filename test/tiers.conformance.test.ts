import { join } from 'node:path'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { MemoryTier } from '../src/tiers/memory-tier.js'
import { runTierConformance } from './conformance/tier-conformance.js'
import { ManualClock } from './helpers/manual-clock.js'
import { makeTempDir } from './helpers/temp-dir.js'

runTierConformance('memory', () => {
  const clock = new ManualClock()
  const tier = new MemoryTier({ maxBytes: 8 * 1024 * 1024, clock })
  return { tier, clock, close: () => tier.close() }
})

runTierConformance('disk', () => {
  const clock = new ManualClock()
  const dir = makeTempDir()
  const tier = new DiskTier({
    path: join(dir.path, 'sessions.db'),
    synchronous: 'normal',
    maxBatchSize: 100,
    clock,
  })
  return {
    tier,
    clock,
    close: () => {
      tier.close()
      dir.remove()
    },
  }
})

// The coherence tracker alone, on a real Redis: a memory copy is trusted only once verified, while the channel
// is live and within localTtlMs; an invalidation from another instance drops an older copy (keeping a newer
// one of ours) and marks reads in flight; a lost channel makes nothing trusted and every read in flight stale.

import { EventEmitter, once } from 'node:events'
import { describe, expect, it, onTestFinished } from 'vitest'
import { Coherence } from '../src/coherence.js'
import { RedisConnection } from '../src/redis/connection.js'
import { RedisTier } from '../src/redis/redis-tier.js'
import { MemoryTier } from '../src/tiers/memory-tier.js'
import { ManualClock } from './helpers/manual-clock.js'
import { useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

const HOUR = 3_600_000

describe('Coherence', () => {
  const redis = useRedis()

  async function setup(url: string) {
    const clock = new ManualClock(Date.now() + 60_000)
    const channel = uniquePrefix('coh')
    const connection = new RedisConnection({ url, commandTimeoutMs: 2000, connectTimeoutMs: 2000 })
    const writerConnection = new RedisConnection({
      url: redis.url,
      commandTimeoutMs: 2000,
      connectTimeoutMs: 2000,
    })
    const memory = new MemoryTier({ maxBytes: 1024 * 1024, clock })
    const dropped: string[] = []
    const live: boolean[] = []
    let invalidations = 0
    const heard = new EventEmitter()
    /** Waits (on the tracker's own hooks, no polling) until `check` holds. */
    const until = async (check: () => boolean) => {
      while (!check()) await once(heard, 'change')
    }
    const coherence = new Coherence({
      connection,
      channel,
      origin: 'me',
      // NB: this test drives the published channel itself; tracking has tests of its own.
      mode: 'channel',
      sidOf: () => undefined,
      localTtlMs: 1000,
      clock,
      memory,
      dropCopy: (sid) => dropped.push(sid),
      onInvalidation: () => {
        invalidations++
        heard.emit('change')
      },
      onLive: (isLive) => {
        live.push(isLive)
        heard.emit('change')
      },
      onGarbage: () => undefined,
    })
    onTestFinished(async () => {
      await coherence.close()
      await connection.close()
      await writerConnection.close()
    })
    while (!writerConnection.up) await once(writerConnection, 'status')
    const other = new RedisTier({
      connection: writerConnection,
      prefix: channel,
      channel,
      origin: 'other',
      clock,
    })
    await until(() => live.at(-1) === true)
    return { clock, memory, coherence, other, dropped, live, until, invalidations: () => invalidations }
  }

  it('trusts a verified copy while the channel is live and within localTtlMs only', async () => {
    const { clock, memory, coherence } = await setup(redis.url)
    const copy = memory.write('s', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
    expect(coherence.trusted(copy, clock.now())).toBe(false)
    coherence.verified(copy, clock.now())
    expect(coherence.trusted(copy, clock.now() + 999)).toBe(true)
    expect(coherence.trusted(copy, clock.now() + 1000)).toBe(false)
    // A new copy in memory is a new record: not trusted until it is verified itself.
    const next = memory.write('s', { payload: '{"n":2}', expiresAt: clock.now() + HOUR, userId: null })
    expect(coherence.trusted(next, clock.now())).toBe(false)
  })

  it("applies another instance's invalidation: drops an older copy, marks the read in flight", async () => {
    const { clock, memory, coherence, other, dropped, until, invalidations } = await setup(redis.url)
    memory.write('s', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null, version: 1 })
    const read = coherence.beginRead('s')
    const written = await other.write('s', {
      payload: '{"n":2}',
      expiresAt: clock.now() + HOUR,
      userId: null,
    })
    await until(() => invalidations() > 0)
    expect(memory.peek('s')).toBeUndefined()
    expect(dropped).toEqual(['s'])
    expect(coherence.isCurrent(read, written.version - 1)).toBe(false)
    expect(coherence.isCurrent(read, written.version)).toBe(true)
    coherence.endRead('s', read)
  })

  it('a lost channel makes nothing trusted and every read in flight stale, until it is live again', async () => {
    const proxy = await startProxy(redis.port)
    const { clock, memory, coherence, live, until } = await setup(proxy.url)
    const copy = memory.write('s', { payload: '{}', expiresAt: clock.now() + HOUR, userId: null })
    coherence.verified(copy, clock.now())
    const read = coherence.beginRead('s')
    proxy.dropSubscribers()
    await until(() => live.at(-1) === false)
    expect(coherence.trusted(copy, clock.now())).toBe(false)
    expect(coherence.isCurrent(read, Number.MAX_SAFE_INTEGER)).toBe(false)
    await until(() => live.at(-1) === true)
    // Copies verified before the loss stay unverified; new verifications count again.
    expect(coherence.trusted(copy, clock.now())).toBe(false)
    coherence.verified(copy, clock.now())
    expect(coherence.trusted(copy, clock.now())).toBe(true)
  })
})

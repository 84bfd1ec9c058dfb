// Regressions of `migrate: { from: 'connect-redis' }` on a real redis-server: legacy sessions are what
// connect-redis writes (the session's JSON at `${prefix}${sid}`, SET with EX; its touch is EXPIRE only), planted
// with plain Redis commands, as an old instance would. Three modes: the same prefix as ours (1), dualWrite (2),
// another prefix without dualWrite (3).

import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { MigrateOptions } from '../src/migrate/migrate-options.js'
import type { TieredStoreOptions } from '../src/options.js'
import { TieredStore } from '../src/store.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, ready, uniquePrefix } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR_MS = 3_600_000
const COMMAND_TIMEOUT = 300

type Mode = 'same prefix' | 'dualWrite' | 'other prefix'

/** Our prefix, connect-redis's, and the `migrate` option of `mode`. */
function prefixes(mode: Mode) {
  const prefix = uniquePrefix('ts')
  const legacyPrefix = mode === 'same prefix' ? prefix : uniquePrefix('cr')
  const migrate: MigrateOptions =
    mode === 'same prefix'
      ? { from: 'connect-redis' }
      : { from: 'connect-redis', prefix: legacyPrefix, dualWrite: mode === 'dualWrite' }
  return { prefix, legacyPrefix, migrate }
}

/** A session as connect-redis stores it: its JSON, the cookie expiring at `expires`. */
function legacyJson(expires: number, data: Record<string, unknown>): string {
  return JSON.stringify({
    cookie: { originalMaxAge: HOUR_MS, expires: new Date(expires).toISOString(), httpOnly: true, path: '/' },
    ...data,
  })
}

/** A session object expiring `ms` from now (real time: these stores run on the real clock). */
function session(ms: number, data: Record<string, unknown> = {}) {
  return {
    cookie: { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), path: '/' },
    ...data,
  }
}

/** A shared-mode TieredStore on `url` (real clock, its own SQLite file), closed when the test ends. */
function tieredStore(url: string, options: TieredStoreOptions): TieredStore {
  const dir = makeTempDir()
  const store = new TieredStore({
    disk: { path: join(dir.path, 's.db') },
    ...options,
    redis: { commandTimeout: COMMAND_TIMEOUT, ...options.redis, url },
  })
  onTestFinished(async () => {
    await store.close()
    dir.remove()
  })
  return store
}

describe('migrate: expiry, conversions, reads', () => {
  const redis = useRedis()
  const cmd = (...args: string[]) => redisCommand(redis.port, args)

  /** Plants a legacy session whose JSON's cookie.expires is past while its key lives another hour. */
  async function plantTouchedLegacy(mode: 'same prefix' | 'other prefix') {
    const { prefix, legacyPrefix, migrate } = prefixes(mode)
    // connect-redis's touch moved the key's expiry (EXPIRE) without rewriting the JSON, whose expires is past.
    await cmd('SET', `${legacyPrefix}s`, legacyJson(Date.now() - HOUR_MS, { user: 'alice' }), 'EX', '3600')
    const store = await ready(tieredStore(redis.url, { prefix, migrate }))
    return { store, key: `${prefix}s` }
  }

  for (const mode of ['same prefix', 'other prefix'] as const) {
    it(`${mode}: a legacy session whose JSON has expired but whose key has an hour left is served, and its first write (a touch) keeps the hour`, async () => {
      const { store, key } = await plantTouchedLegacy(mode)
      expect(await store.get('s')).toMatchObject({ user: 'alice' })
      // The request's cookie asks for 10 minutes; the key's own hour is the later expiry and wins.
      await store.touch('s', session(10 * 60_000, { user: 'alice' }))
      await store.flush()
      expect(await cmd('TYPE', key)).toBe('hash')
      expect(Math.abs(Number(await cmd('PTTL', key)) - HOUR_MS)).toBeLessThan(5000)
      expect(await store.get('s')).toMatchObject({ user: 'alice' })
    })

    // A merge with no cookie in the patch would take its expiry from the JSON's stale cookie.expires: the
    // first write keeps at least the key's TTL (found by this test: the session was lost).
    it(`${mode}: the first write of such a session being a merge, it keeps the key's hour`, async () => {
      const { store, key } = await plantTouchedLegacy(mode)
      expect(await store.get('s')).toMatchObject({ user: 'alice' })
      expect(await store.merge('s', { set: { cart: '["book"]' }, unset: [] })).toBe(true)
      expect(await cmd('TYPE', key)).toBe('hash')
      expect(Math.abs(Number(await cmd('PTTL', key)) - HOUR_MS)).toBeLessThan(5000)
      expect(await store.get('s')).toMatchObject({ user: 'alice', cart: ['book'] })
    })
  }

  for (const invalidation of ['tracking', 'channel'] as const) {
    it(`same prefix, ${invalidation}: an old instance's string over our converted hash is kept by a merge and not deleted by a deferred touch`, async () => {
      const { prefix, migrate } = prefixes('same prefix')
      const key = `${prefix}s`
      await cmd('SET', key, legacyJson(Date.now() + HOUR_MS, { user: 'alice' }), 'EX', '3600')
      const store = await ready(tieredStore(redis.url, { prefix, migrate, redis: { url: '', invalidation } }))
      expect(await store.merge('s', { set: { a: '1' }, unset: [] })).toBe(true)
      expect(await cmd('TYPE', key)).toBe('hash')
      // The hash is now the store's trusted memory copy. An old instance (rolling restart, same prefix) writes
      // the session in its format over our hash. In 'channel' mode nothing tells the store: the merge starts
      // from its memory copy (compare-and-set); with tracking, after the invalidation, from a fresh read.
      await cmd(
        'SET',
        key,
        legacyJson(Date.now() + HOUR_MS, { user: 'alice', old: 'instance' }),
        'EX',
        '3600',
      )
      await engineOf(store).invalidationsDelivered()
      expect(await store.merge('s', { set: { b: '2' }, unset: [] })).toBe(true)
      expect(await store.get('s')).toMatchObject({ user: 'alice', old: 'instance', b: 2 })
      expect(await cmd('TYPE', key)).toBe('hash')

      // A deferred touch of our hash, then the old instance's string lands before the touch is committed.
      await store.touch('s', session(2 * HOUR_MS, { user: 'alice', old: 'instance', b: 2 }))
      const oldValue = legacyJson(Date.now() + HOUR_MS, { user: 'alice', old: 'again' })
      await cmd('SET', key, oldValue, 'EX', '3600')
      await store.flush()
      expect(await cmd('GET', key)).toBe(oldValue)
      // (Read by a new instance: in 'channel' mode the store's own trusted copy is not told of the old write.)
      const other = await ready(tieredStore(redis.url, { prefix, migrate }))
      expect(await other.get('s')).toMatchObject({ user: 'alice', old: 'again' })
    })
  }

  for (const mode of ['same prefix', 'other prefix'] as const) {
    it(`${mode}: a read that started before another instance converted the legacy session still finds it`, async () => {
      const { prefix, legacyPrefix, migrate } = prefixes(mode)
      await cmd('SET', `${legacyPrefix}s`, legacyJson(Date.now() + HOUR_MS, { user: 'alice' }), 'EX', '3600')
      const proxy = await startProxy(redis.port)
      const reader = await ready(tieredStore(proxy.url, { prefix, migrate }))
      const converter = await ready(tieredStore(redis.url, { prefix, migrate }))
      const errors: unknown[] = []
      reader.on('error', (e) => errors.push(e))
      // The reader's first round trip (our key: no hash of ours yet) has been answered; its reply is held.
      const hold = proxy.holdNextReply()
      const reading = reader.get('s')
      await hold.held
      // Meanwhile the converter's first write turns the legacy session into our hash.
      expect(await converter.merge('s', { set: { by: '"converter"' }, unset: [] })).toBe(true)
      expect(await cmd('TYPE', `${prefix}s`)).toBe('hash')
      if (mode === 'other prefix') expect(await cmd('EXISTS', `${legacyPrefix}s`)).toBe(0)
      hold.release()
      expect(await reading).toMatchObject({ user: 'alice', by: 'converter' })
      expect(errors).toEqual([])
    })
  }
})

describe('migrate: a destroy of a legacy session replayed from the outbox', () => {
  // fsync'd append-only file: the legacy key planted before the SIGKILL is there after the restart.
  const redis = useRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  const cmd = (...args: string[]) => redisCommand(redis.port, args)

  for (const mode of ['other prefix', 'dualWrite'] as const) {
    it(`${mode}: a legacy session never converted, destroyed while Redis was down, stays destroyed after the replay`, async () => {
      const { prefix, legacyPrefix, migrate } = prefixes(mode)
      await cmd('SET', `${legacyPrefix}s`, legacyJson(Date.now() + HOUR_MS, { user: 'alice' }), 'EX', '3600')
      const store = await ready(tieredStore(redis.url, { prefix, migrate }))
      expect(await store.get('s')).toMatchObject({ user: 'alice' })

      const down = once(store, 'disconnect')
      await redis.server.kill9()
      await down
      // A legacy session is served, never cached: the store holds nothing of it, yet the destroy is queued.
      await store.destroy('s')
      expect(store.stats().outbox).toBe(1)

      const up = once(store, 'connect')
      await redis.server.restart()
      await up
      await engineOf(store).replayed()
      expect(store.stats().outbox).toBe(0)
      expect(await cmd('EXISTS', `${legacyPrefix}s`)).toBe(0)
      expect(await store.get('s')).toBeUndefined()
      const other = await ready(tieredStore(redis.url, { prefix, migrate }))
      expect(await other.get('s')).toBeUndefined()
    })
  }
})

describe('migrate dualWrite: an outbox write replayed after an old instance logged the session out', () => {
  const redis = useRedis()
  const cmd = (...args: string[]) => redisCommand(redis.port, args)

  /** A dualWrite store cut off from Redis (behind a stalled proxy), Redis itself up for everyone else. */
  async function cutOffStore(prefix: string, migrate: TieredStoreOptions['migrate']) {
    const proxy = await startProxy(redis.port)
    const store = await ready(tieredStore(proxy.url, { prefix, migrate }))
    return {
      store,
      async cutOff() {
        const stall = proxy.stallNewConnections()
        const down = once(store, 'disconnect')
        proxy.dropAll()
        await down
        return async () => {
          const up = once(store, 'connect')
          stall.release()
          await up
          await engineOf(store).replayed()
        }
      },
    }
  }

  it('converted session: the replay does not bring it back on either key', async () => {
    const { prefix, legacyPrefix, migrate } = prefixes('dualWrite')
    await cmd('SET', `${legacyPrefix}s`, legacyJson(Date.now() + HOUR_MS, { user: 'alice' }), 'EX', '3600')
    const { store, cutOff } = await cutOffStore(prefix, migrate)
    expect(await store.merge('s', { set: { a: '1' }, unset: [] })).toBe(true)
    expect(await cmd('TYPE', `${prefix}s`)).toBe('hash')
    expect(JSON.parse(String(await cmd('GET', `${legacyPrefix}s`)))).toMatchObject({ a: 1 })

    const reconnect = await cutOff()
    await store.set('s', session(HOUR_MS, { user: 'alice', a: 1, offline: true }))
    expect(store.stats().outbox).toBe(1)
    // Redis is up; only this store is cut off. An old instance logs the user out (connect-redis's destroy: DEL).
    await cmd('DEL', `${legacyPrefix}s`)
    await reconnect()
    expect(store.stats().outbox).toBe(0)
    expect(await cmd('EXISTS', `${legacyPrefix}s`)).toBe(0)
    expect(await store.get('s')).toBeUndefined()
    const other = await ready(tieredStore(redis.url, { prefix, migrate }))
    expect(await other.get('s')).toBeUndefined()
    expect(await cmd('EXISTS', `${legacyPrefix}s`)).toBe(0)
  })
})

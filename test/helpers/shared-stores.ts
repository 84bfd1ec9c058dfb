// Shared-mode stores for tests: TieredStores on a test-owned Redis, each with its own SQLite file, a unique
// key prefix per test, a manual clock that starts ahead of the real time, and cleanup when the test ends.

import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { TierManager } from '../../src/manager/tier-manager.js'
import type { TieredStoreOptions } from '../../src/options.js'
import type { RedisTier } from '../../src/redis/redis-tier.js'
import { managerOf, TieredStore } from '../../src/store.js'
import { ManualClock } from './manual-clock.js'
import { makeTempDir } from './temp-dir.js'

/** A prefix no other test uses. */
export function uniquePrefix(label = 't'): string {
  return `${label}-${randomBytes(6).toString('hex')}:`
}

export interface SharedFixture {
  clock: ManualClock
  prefix: string
  dir: string
  /**
   * Opens another instance on the same Redis and prefix, with its own SQLite file (the same name reopens the
   * same file). Resolves once it is connected and coherent, unless `wait` is false (Redis may be down).
   */
  open(name: string, options?: TieredStoreOptions, wait?: boolean): Promise<TieredStore>
}

/** The engine behind a shared-mode store. */
export function engineOf(store: TieredStore): TierManager {
  return managerOf(store) as TierManager
}

/** The Redis tier behind a shared-mode store. */
export function redisOf(store: TieredStore): RedisTier {
  const redis = engineOf(store).redis
  if (redis === undefined) throw new Error('not a shared-mode store')
  return redis
}

/** Resolves once the store is connected and its invalidation channel is live. */
export async function ready(store: TieredStore): Promise<TieredStore> {
  const engine = engineOf(store)
  const connected = engine.connected ? undefined : once(store, 'connect')
  await connected
  while (!engine.coherent) await once(store, 'coherence')
  return store
}

/** Instances on `redis` (a URL, or options building a client per instance). */
export function sharedStores(redis: () => TieredStoreOptions['redis']): SharedFixture {
  const dir = makeTempDir()
  // NB: ahead of the real time, and only ever moved forward: Redis expires keys on its own (real) clock, so a
  // session must never expire there before it does on ours.
  const clock = new ManualClock(Date.now() + 10 * 60_000)
  const prefix = uniquePrefix()
  const opened: TieredStore[] = []
  onTestFinished(async () => {
    for (const store of opened) await store.close()
    dir.remove()
  })
  return {
    clock,
    prefix,
    dir: dir.path,
    async open(name, options = {}, wait = true) {
      const store = new TieredStore({
        clock,
        prefix,
        redis: redis(),
        disk: { path: join(dir.path, `${name}.db`) },
        ...options,
      })
      opened.push(store)
      return wait ? ready(store) : store
    },
  }
}

/** Instances that each get a client from `makeClient` (the app's own client); the clients are quit afterwards. */
export function sharedStoresWithClients(makeClient: () => { quit(): Promise<unknown> }): SharedFixture {
  const clients: Array<{ quit(): Promise<unknown> }> = []
  const fixture = sharedStores(() => {
    const client = makeClient()
    clients.push(client)
    return { client: client as never }
  })
  // NB: registered after the fixture's own cleanup, so it runs first: stores close before their clients.
  onTestFinished(async () => {
    for (const client of clients) await client.quit()
  })
  return fixture
}

/**
 * Reads `sid` on `store` until Redis tracks it for that instance (tracking mode): its first read there is not
 * tracked, the second (another read, untracked) finds the copy still current, the third checks its version,
 * tracked, and trusts the copy. Returns the last read's session.
 */
export async function readUntilTracked(store: TieredStore, sid: string): Promise<unknown> {
  await store.get(sid)
  await store.get(sid)
  return store.get(sid)
}

/** A session expiring `ms` after `now`. */
export function sharedSession(now: number, ms: number, data: Record<string, unknown> = {}) {
  return { cookie: { originalMaxAge: ms, expires: new Date(now + ms).toISOString(), path: '/' }, ...data }
}

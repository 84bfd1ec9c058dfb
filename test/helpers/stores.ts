// Builds TieredStores on fresh temp dirs and closes them (and removes the dirs) when the test ends.

import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import type { TieredStoreOptions } from '../../src/options.js'
import { TieredStore } from '../../src/store.js'
import { ManualClock } from './manual-clock.js'
import { makeTempDir } from './temp-dir.js'

export interface StoreFixture {
  store: TieredStore
  clock: ManualClock
  dbPath: string
  /** Closes the store and opens a new one on the same file (a restart). */
  reopen(overrides?: TieredStoreOptions): TieredStore
}

/** A store in local mode on a fresh SQLite file with a manual clock; cleaned up after the test. */
export function createStore(options: TieredStoreOptions = {}): StoreFixture {
  const dir = makeTempDir()
  const clock = new ManualClock()
  const dbPath = join(dir.path, 'sessions', 'sessions.db')
  const opened: TieredStore[] = []
  const open = (extra: TieredStoreOptions = {}): TieredStore => {
    const store = new TieredStore({
      clock,
      ...options,
      ...extra,
      disk: { path: dbPath, ...(options.disk || {}) },
    })
    opened.push(store)
    return store
  }
  const fixture: StoreFixture = {
    store: open(),
    clock,
    dbPath,
    reopen(overrides) {
      fixture.store = open(overrides)
      return fixture.store
    },
  }
  onTestFinished(async () => {
    for (const store of opened) await store.close()
    dir.remove()
  })
  return fixture
}

/** A session shaped like express-session's, expiring `ms` after `now`. */
export function sessionFor(now: number, ms: number, data: Record<string, unknown> = {}) {
  return {
    cookie: { originalMaxAge: ms, expires: new Date(now + ms).toISOString(), httpOnly: true, path: '/' },
    ...data,
  }
}

import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { ManualClock } from './helpers/manual-clock.js'
import { sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

describe('an existing database file', () => {
  it('is made 0600 with its WAL when the store opens it', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const sub = join(dir.path, 'data')
    mkdirSync(sub)
    const path = join(sub, 'sessions.db')
    closeSync(openSync(path, 'w'))
    chmodSync(path, 0o644)
    const store = new TieredStore({ disk: { path }, clock: new ManualClock() })
    onTestFinished(() => store.close())
    await store.set('s', sessionFor(new ManualClock().now(), HOUR))
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(`${path}-wal`).mode & 0o777).toBe(0o600)
  })
})

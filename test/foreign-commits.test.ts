// Local mode: a store notices commits another connection made to its SQLite file (PRAGMA data_version) and
// stops serving from memory what they changed, without losing a touch it acknowledged.

import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { systemClock } from '../src/clock.js'
import { ForeignCommits } from '../src/manager/foreign-commits.js'
import { TieredStore } from '../src/store.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { MemoryTier } from '../src/tiers/memory-tier.js'
import { engineOf } from './helpers/shared-stores.js'
import { sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR_MS = 3_600_000

/** Two stores on one SQLite file: the app's and another connection's (what the command line tool opens). */
function twoStores(): { app: TieredStore; other: () => TieredStore; path: string } {
  const dir = makeTempDir()
  const path = join(dir.path, 'sessions.db')
  const opened: TieredStore[] = []
  const open = () => {
    const store = new TieredStore({ disk: { path } })
    opened.push(store)
    return store
  }
  onTestFinished(async () => {
    for (const store of opened) await store.close()
    dir.remove()
  })
  return { app: open(), other: open, path }
}

describe('when another connection changes the SQLite file (local mode)', () => {
  it('drops the memory copies of sessions it destroyed or changed, and keeps the others', async () => {
    const { app, other } = twoStores()
    for (const sid of ['gone', 'changed', 'same'])
      await app.set(sid, sessionFor(Date.now(), HOUR_MS, { v: 1 }))
    for (const sid of ['gone', 'changed', 'same']) await app.get(sid)
    const tool = other()
    await tool.destroy('gone')
    await tool.set('changed', sessionFor(Date.now(), HOUR_MS, { v: 2 }))
    await tool.close()

    expect(await engineOf(app).checkForeignCommits()).toBe(2)
    const memoryHits = app.stats().hits.memory
    expect(await app.get('gone')).toBeUndefined()
    expect(await app.get('changed')).toMatchObject({ v: 2 })
    expect(await app.get('same')).toMatchObject({ v: 1 })
    // 'same' still came from memory; the other two were read from the file.
    expect(app.stats().hits.memory).toBe(memoryHits + 1)
    expect(app.stats().invalidations).toBe(2)
  })

  it('finds nothing to drop when only its own connection committed', async () => {
    const { app } = twoStores()
    await app.set('mine', sessionFor(Date.now(), HOUR_MS))
    await app.destroy('mine')
    await app.set('also-mine', sessionFor(Date.now(), HOUR_MS))
    expect(await engineOf(app).checkForeignCommits()).toBe(0)
  })

  it('keeps a touch it acknowledged in memory (committed before comparing)', async () => {
    const { app, other, path } = twoStores()
    const now = Date.now()
    await app.set('touched', sessionFor(now, HOUR_MS, { v: 1 }))
    await app.get('touched')
    // A deferred touch: acknowledged in memory, committed in the background.
    await app.touch('touched', sessionFor(now, 2 * HOUR_MS, { v: 1 }))
    const tool = other()
    await tool.set('unrelated', sessionFor(now, HOUR_MS))
    await tool.close()

    expect(await engineOf(app).checkForeignCommits()).toBe(0)
    await app.close()
    const reopened = new TieredStore({ disk: { path } })
    onTestFinished(() => reopened.close())
    const entry = await engineOf(reopened).getEntry('touched')
    expect(entry?.expiresAt).toBe(now + 2 * HOUR_MS)
  })

  it('notices on its own timer, and says so with an invalidation event', async () => {
    const { app, other } = twoStores()
    await app.set('s', sessionFor(Date.now(), HOUR_MS))
    await app.get('s')
    const noticed = once(app, 'invalidation')
    const tool = other()
    await tool.destroy('s')
    await noticed
    expect(await app.get('s')).toBeUndefined()
  })
})

describe('ForeignCommits on a disk tier and a memory tier', () => {
  /** A disk tier on `path` (closed after the test). */
  function diskOn(path: string): DiskTier {
    const disk = new DiskTier({ path, synchronous: 'normal', maxBatchSize: 100, clock: systemClock })
    onTestFinished(() => disk.close())
    return disk
  }

  async function setUp(keys: readonly string[]) {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const path = join(dir.path, 'sessions.db')
    const disk = diskOn(path)
    const memory = new MemoryTier({ maxBytes: 1_000_000, clock: systemClock })
    for (const key of keys) {
      const stored = await disk.write(key, {
        payload: '{"a":1}',
        expiresAt: Date.now() + HOUR_MS,
        userId: null,
      })
      memory.write(key, stored)
    }
    const other = diskOn(path)
    await other.delete(keys[0] as string)
    return { disk, memory }
  }

  it('compares each copy with its row: only the one the other connection deleted goes', async () => {
    const { disk, memory } = await setUp(['k1', 'k2', 'k3'])
    const dropped: number[] = []
    const watcher = new ForeignCommits({
      disk,
      memory,
      onDropped: (n) => dropped.push(n),
      report: () => undefined,
    })
    expect(await watcher.check()).toBe(1)
    expect([memory.peek('k1'), memory.peek('k2') !== undefined, memory.peek('k3') !== undefined]).toEqual([
      undefined,
      true,
      true,
    ])
    expect(dropped).toEqual([1])
    // Nothing committed elsewhere since: nothing to do.
    expect(await watcher.check()).toBe(0)
  })

  it('drops every copy at once when memory holds more than a pass compares (maxCompared)', async () => {
    const { disk, memory } = await setUp(['k1', 'k2', 'k3'])
    const watcher = new ForeignCommits({
      disk,
      memory,
      maxCompared: 2,
      onDropped: () => undefined,
      report: () => undefined,
    })
    expect(await watcher.check()).toBe(3)
    expect(memory.entries).toBe(0)
    // The rows are still there: the next read finds them on disk.
    expect(disk.get('k2')).toMatchObject({ payload: '{"a":1}' })
  })
})

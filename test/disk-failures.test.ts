import { rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { TieredStore } from '../src/store.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

describe('when the disk is full', () => {
  it('refuses (does not acknowledge) what it cannot store, keeps serving, and recovers once the sweep frees space', async () => {
    const fixture = createStore({ disk: { maxBytes: 256 * 1024 }, memory: { maxBytes: 8 * 1024 * 1024 } })
    const { store, clock } = fixture
    const errors: TieredSessionError[] = []
    store.on('error', (e) => errors.push(e))
    const acknowledged: number[] = []
    let refusedAt = -1
    for (let i = 0; i < 2000; i++) {
      // The older half expires in a minute, so the sweep can make room later.
      const ttl = i % 2 === 0 ? 60_000 : HOUR
      try {
        await store.set(`s${i}`, sessionFor(clock.now(), ttl, { i, pad: 'p'.repeat(900) }))
        acknowledged.push(i)
      } catch (error) {
        expect(error).toMatchObject({ code: 'TS_DISK_IO' })
        refusedAt = i
        break
      }
    }
    expect(refusedAt).toBeGreaterThan(10)
    expect(await store.get(`s${refusedAt}`)).toBeUndefined()
    expect(store.stats().errors.TS_DISK_IO).toBe(1)
    expect(errors.map((e) => e.code)).toEqual(['TS_DISK_IO'])
    // Everything acknowledged is still served.
    for (const i of acknowledged) expect(await store.get(`s${i}`)).toMatchObject({ i })

    clock.advance(60_000)
    expect(await store.sweep()).toBeGreaterThan(0)
    await store.set('after', sessionFor(clock.now(), HOUR, { recovered: true }))
    expect(await store.get('after')).toMatchObject({ recovered: true })

    await store.close()
    const reopened = fixture.reopen()
    for (const i of acknowledged.filter((n) => n % 2 === 1))
      expect(await reopened.get(`s${i}`)).toMatchObject({ i })
    expect(await reopened.get('after')).toMatchObject({ recovered: true })
  })
})

describe('when the database file is removed while the store runs', () => {
  it('restores it from the open copy on the next write, reports it, and loses nothing acknowledged', async () => {
    const fixture = createStore()
    const { store, clock, dbPath } = fixture
    const errors: TieredSessionError[] = []
    store.on('error', (e) => errors.push(e))
    for (let i = 0; i < 50; i++) await store.set(`before-${i}`, sessionFor(clock.now(), HOUR, { i }))
    // `rm -rf` of the whole directory, files and all.
    rmSync(join(dbPath, '..'), { recursive: true, force: true })
    for (let i = 0; i < 50; i++) await store.set(`after-${i}`, sessionFor(clock.now(), HOUR, { i }))
    expect(errors.map((e) => e.code)).toEqual(['TS_DISK_IO'])
    expect(errors[0]?.message).toContain('restored')
    expect(store.stats().errors.TS_DISK_IO).toBe(1)

    await store.close()
    const reopened = fixture.reopen()
    for (let i = 0; i < 50; i++) {
      expect(await reopened.get(`before-${i}`)).toMatchObject({ i })
      expect(await reopened.get(`after-${i}`)).toMatchObject({ i })
    }
  })
})

describe('when the directory is unusable at start-up', () => {
  it('throws TS_DISK_OPEN_FAILED naming the path', () => {
    expect.assertions(2)
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    // A regular file where the directory should be.
    writeFileSync(join(dir.path, 'not-a-dir'), 'x')
    const path = join(dir.path, 'not-a-dir', 'sessions.db')
    try {
      new TieredStore({ disk: { path } })
    } catch (error) {
      expect(error).toMatchObject({ code: 'TS_DISK_OPEN_FAILED' })
      expect((error as Error).message).toContain(path)
    }
  })
})

// store.backup(path): an online, consistent copy of the SQLite file while writes go on, with progress events,
// 0600 in a 0700 directory, and typed errors without a disk tier or a writable target.

import { linkSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { hashSid } from '../src/at-rest/session-key.js'
import { TieredStore } from '../src/store.js'
import type { BackupProgress } from '../src/tiers/sqlite-backup.js'
import { readBackup } from './helpers/backup-copy.js'
import { useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'
import { sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR_MS = 3_600_000

function localStore(): { store: TieredStore; dir: string } {
  const dir = makeTempDir()
  const store = new TieredStore({ disk: { path: join(dir.path, 'data', 'sessions.db') } })
  onTestFinished(async () => {
    await store.close()
    dir.remove()
  })
  return { store, dir: dir.path }
}

describe('store.backup(path)', () => {
  it('copies a valid database holding every session acknowledged before the call, while 10,000 more are written', async () => {
    const { store, dir } = localStore()
    const acknowledged: string[] = []
    for (let i = 0; i < 2000; i++) {
      await store.set(`before-${i}`, sessionFor(Date.now(), HOUR_MS, { i, pad: 'x'.repeat(200) }))
      acknowledged.push(`before-${i}`)
    }
    // The writer: 10,000 sessions in flight in batches of 100, committing all through the backup.
    const writer = (async () => {
      for (let i = 0; i < 10_000; i += 100) {
        await Promise.all(
          Array.from({ length: 100 }, (_, j) =>
            store
              .set(`during-${i + j}`, sessionFor(Date.now(), HOUR_MS, { i: i + j, pad: 'y'.repeat(200) }))
              .then(() => acknowledged.push(`during-${i + j}`)),
          ),
        )
      }
    })()
    // Let the writer get going, then take the copy of what was acknowledged by then.
    while (acknowledged.length < 4000) await new Promise((resolve) => setImmediate(resolve))
    const before = [...acknowledged]
    const steps: BackupProgress[] = []
    store.on('backup', (step: BackupProgress) => steps.push(step))
    const target = join(dir, 'backups', 'nested', 'copy.db')
    const last = await store.backup(target)
    await writer

    expect(last.remainingPages).toBe(0)
    expect(steps.length).toBeGreaterThanOrEqual(2)
    expect(steps.at(-1)).toEqual(last)
    expect(statSync(target).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'backups', 'nested')).mode & 0o777).toBe(0o700)
    const copy = readBackup(target)
    expect(copy.integrity).toBe('ok')
    // NB: the file keys sessions by SHA-256 of their ids (hashIds, the default).
    expect(before.filter((sid) => !copy.keys.has(hashSid(sid)))).toEqual([])
  })

  it('takes a callback, and rejects with TS_BACKUP_FAILED when the target cannot be written', async () => {
    expect.assertions(3)
    const { store, dir } = localStore()
    await store.set('one', sessionFor(Date.now(), HOUR_MS))
    const aFile = join(dir, 'a-file')
    writeFileSync(aFile, 'not a directory')
    const error = await new Promise<unknown>((resolve) => store.backup(join(aFile, 'copy.db'), resolve))
    expect(error).toMatchObject({ code: 'TS_BACKUP_FAILED' })
    expect(String((error as Error).message)).toContain(join(aFile, 'copy.db'))
    // The store goes on working.
    expect(await store.get('one')).toBeDefined()
  })

  it('refuses to write the backup over the database itself, by any name (TS_BACKUP_FAILED), and loses nothing', async () => {
    expect.assertions(4)
    const { store, dir } = localStore()
    await store.set('kept', sessionFor(Date.now(), HOUR_MS))
    const path = join(dir, 'data', 'sessions.db')
    const link = join(dir, 'hard-link.db')
    linkSync(path, link)
    for (const target of [path, link, `${path}-wal`])
      await expect(store.backup(target)).rejects.toMatchObject({ code: 'TS_BACKUP_FAILED' })
    expect(await store.get('kept')).toBeDefined()
  })
})

describe('store.backup(path) without a disk tier', () => {
  const redis = useRedis()

  it('rejects with TS_NO_DISK_TIER', async () => {
    expect.assertions(1)
    const store = new TieredStore({ redis: { url: redis.url }, prefix: uniquePrefix('bk'), disk: false })
    onTestFinished(() => store.close())
    await expect(store.backup(join(makeTempDir().path, 'x.db'))).rejects.toMatchObject({
      code: 'TS_NO_DISK_TIER',
    })
  })
})

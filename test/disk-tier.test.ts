import { statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { storedKey } from './helpers/handles.js'
import { ManualClock } from './helpers/manual-clock.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

describe('the SQLite file', () => {
  it("is created 0600 in a 0700 directory, in WAL mode, with indexes on expiry and user, and the outbox's on session", async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { userId: 'u' }))
    expect(statSync(dbPath).mode & 0o777).toBe(0o600)
    expect(statSync(join(dbPath, '..')).mode & 0o777).toBe(0o700)
    expect(statSync(`${dbPath}-wal`).mode & 0o777).toBe(0o600)
    const db = new Database(dbPath, { readonly: true })
    onTestFinished(() => {
      db.close()
    })
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal')
    const columns = (db.pragma('table_info(sessions)') as Array<{ name: string }>).map((c) => c.name)
    expect(columns).toEqual(['sid', 'payload', 'expiresAt', 'version', 'userId', 'createdAt'])
    const metaColumns = (db.pragma('table_info(meta)') as Array<{ name: string }>).map((c) => c.name)
    expect(metaColumns).toEqual(['name', 'value'])
    expect(db.prepare("SELECT value FROM meta WHERE name = 'ids'").get()).toEqual({ value: 'sha256' })
    const indexes = (db.pragma('index_list(sessions)') as Array<{ name: string }>).map((i) => i.name)
    expect(indexes).toEqual(expect.arrayContaining(['sessions_by_expiry', 'sessions_by_user']))
    // A live destroy looks up its session's outbox entries (during an outage the log may hold a great many).
    expect(db.pragma('index_info(outbox_by_sid)')).toMatchObject([{ name: 'sid' }])
    expect(db.prepare('SELECT sid, userId, version FROM sessions').all()).toEqual([
      { sid: storedKey('s'), userId: 'u', version: 1 },
    ])
  })

  it("a file without the outbox's index and no room to build it (at disk.maxBytes) still opens, its entries intact", async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const path = join(dir.path, 'full.db')
    const clock = new ManualClock(Date.now())
    const first = new DiskTier({ path, synchronous: 'normal', maxBatchSize: 100, clock })
    const record = {
      payload: `{"pad":"${'x'.repeat(900)}"}`,
      expiresAt: clock.now() + HOUR,
      version: 1,
      userId: null,
    }
    for (let i = 0; i < 2_000; i++) await first.outboxLog.appendWrite(`s${i}`, record, () => undefined)
    first.close()
    // As a file written before the index existed: dropped, and the file shrunk to what it holds.
    const raw = new Database(path)
    raw.exec('DROP INDEX outbox_by_sid; VACUUM')
    const bytes =
      (raw.pragma('page_count', { simple: true }) as number) *
      (raw.pragma('page_size', { simple: true }) as number)
    raw.close()
    const again = new DiskTier({ path, synchronous: 'normal', maxBatchSize: 100, clock, maxBytes: bytes })
    try {
      expect(again.outboxLog.size()).toBe(2_000)
      expect(again.outboxLog.latestExpiry('s7')).toBe(record.expiresAt)
    } finally {
      again.close()
    }
    const check = new Database(path, { readonly: true })
    onTestFinished(() => {
      check.close()
    })
    expect(check.pragma('index_info(outbox_by_sid)')).toEqual([])
  })

  it('commits concurrent writes in one shared transaction, acknowledging each only after it', async () => {
    const { store, clock, dbPath } = createStore()
    const before = store.stats().disk?.transactions ?? 0
    const reader = new Database(dbPath, { readonly: true })
    onTestFinished(() => {
      reader.close()
    })
    const count = () => (reader.prepare('SELECT count(*) AS n FROM sessions').get() as { n: number }).n
    const seenAtAck: number[] = []
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.set(`s${i}`, sessionFor(clock.now(), HOUR, { i })).then(() => seenAtAck.push(count())),
      ),
    )
    expect(store.stats().disk?.transactions).toBe(before + 1)
    // When each write was acknowledged, another connection already saw all 50 rows committed.
    expect(seenAtAck).toEqual(Array(50).fill(50))
  })

  it('raises the version on every data write of a session; a touch (no data write) keeps it', async () => {
    const { store, clock, dbPath } = createStore()
    for (let i = 0; i < 3; i++) await store.set('s', sessionFor(clock.now(), HOUR, { i }))
    await store.touch('s', sessionFor(clock.now(), 2 * HOUR, {}))
    await store.flush()
    const db = new Database(dbPath, { readonly: true })
    onTestFinished(() => {
      db.close()
    })
    expect(db.prepare('SELECT version, expiresAt FROM sessions WHERE sid = ?').get(storedKey('s'))).toEqual({
      version: 3,
      expiresAt: clock.now() + 2 * HOUR,
    })
    await store.merge('s', { set: { i: '9' }, unset: [] })
    await store.flush()
    expect(db.prepare('SELECT version FROM sessions WHERE sid = ?').get(storedKey('s'))).toEqual({
      version: 4,
    })
  })

  it('a file that is not a SQLite database fails at construction with TS_DISK_OPEN_FAILED', () => {
    expect.assertions(2)
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const path = join(dir.path, 'sessions.db')
    writeFileSync(path, 'this is not a database, just some text that is long enough '.repeat(20))
    try {
      new TieredStore({ disk: { path } })
    } catch (error) {
      expect(error).toMatchObject({ code: 'TS_DISK_OPEN_FAILED' })
      expect((error as Error).message).toContain(path)
    }
  })
})

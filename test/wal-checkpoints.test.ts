// The SQLite log is checkpointed by a worker thread, not inside a commit on the event loop (issue 15: no stalls).
// Real files, a real worker thread; the app's connection has SQLite's automatic checkpoints turned off, so a log
// that stays small proves that the worker copied it into the database.

import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished, vi } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { GroupCommit } from '../src/tiers/group-commit.js'
import { WalCheckpointer } from '../src/tiers/wal-checkpointer.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000
const ROW = 'r'.repeat(1_000)

function openFile() {
  const dir = makeTempDir('ts-wal')
  const path = join(dir.path, 'wal.db')
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec('CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)')
  onTestFinished(() => {
    if (db.open) db.close()
    dir.remove()
  })
  const insert = db.prepare('INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)')
  let next = 0
  /** One transaction of `rows` rows of ~1 KB. */
  const write = (rows: number) =>
    db.transaction(() => {
      for (let i = 0; i < rows; i++) insert.run(next++, ROW)
    })()
  return { db, path, write }
}

/** A checkpointer on `file` whose checkpoints and holds the test can await and see. */
function checkpointerOn(file: ReturnType<typeof openFile>, sqliteModule?: string) {
  const holds: boolean[] = []
  const errors: TieredSessionError[] = []
  const results: Array<{ log: number; checkpointed: number }> = []
  let waiting: (() => void) | undefined
  const checkpointer = new WalCheckpointer({
    db: file.db,
    path: file.path,
    synchronous: 'normal',
    holdWrites: (held) => holds.push(held),
    onError: (error) => errors.push(error),
    onCheckpoint: (result) => {
      results.push(result)
      waiting?.()
    },
    ...(sqliteModule === undefined ? {} : { sqliteModule }),
  })
  onTestFinished(() => checkpointer.close())
  const nextCheckpoint = () => new Promise<void>((resolve) => (waiting = resolve))
  return { checkpointer, holds, errors, results, nextCheckpoint }
}

describe('checkpoints of the SQLite log in a worker thread', () => {
  it('turn off SQLite’s own checkpoints on the app’s connection and keep the log from growing', async () => {
    const file = openFile()
    const { checkpointer, holds, results, nextCheckpoint } = checkpointerOn(file)
    expect(file.db.pragma('wal_autocheckpoint', { simple: true })).toBe(0)
    expect(checkpointer.background).toBe(true)
    // ~25 MB written, in transactions of 500 rows; every 5 of them (~1,000 estimated pages) ask for a checkpoint.
    for (let round = 0; round < 10; round++) {
      const done = nextCheckpoint()
      for (let t = 0; t < 5; t++) {
        file.write(500)
        checkpointer.wrote(500)
      }
      await done
    }
    expect(results).toHaveLength(10)
    expect(checkpointer.count).toBe(10)
    // Each checkpoint copied the whole log (nothing was written meanwhile), so the log started over each time.
    for (const result of results) expect(result.checkpointed).toBe(result.log)
    expect(statSync(`${file.path}-wal`).size).toBeLessThan(8 * 1024 * 1024)
    // The log started over after each: no checkpoint had to hold writes back.
    expect(holds).toEqual([])
  })

  it('hold writes back during the next checkpoint once one found a log that did not start over', async () => {
    const file = openFile()
    const { checkpointer, holds, results, nextCheckpoint } = checkpointerOn(file)
    // ~20 MB in the log before the checkpointer hears of it (as when writes went on during checkpoints).
    for (let t = 0; t < 40; t++) file.write(500)
    let done = nextCheckpoint()
    checkpointer.wrote(2_500)
    await done
    expect(results[0]?.log).toBeGreaterThanOrEqual(4_000)
    expect(holds).toEqual([])
    // The next checkpoint holds the group commit's batches while it runs, and lets them go after it.
    done = nextCheckpoint()
    file.write(500)
    checkpointer.wrote(2_500)
    expect(holds).toEqual([true])
    await done
    expect(holds).toEqual([true, false])
    expect(results[1]?.checkpointed).toBe(results[1]?.log)
  })

  it('without the worker the same writes grow the log to their whole size (the control)', () => {
    const file = openFile()
    file.db.pragma('wal_autocheckpoint = 0')
    for (let round = 0; round < 10; round++) for (let t = 0; t < 5; t++) file.write(500)
    expect(statSync(`${file.path}-wal`).size).toBeGreaterThan(20 * 1024 * 1024)
  })

  it('checkpoint a log with little in it a second after the write', async () => {
    const file = openFile()
    const { checkpointer, results, nextCheckpoint } = checkpointerOn(file)
    const done = nextCheckpoint()
    file.write(1)
    checkpointer.wrote(1)
    await done
    expect(results).toEqual([{ log: expect.any(Number), checkpointed: expect.any(Number) }])
    expect(results[0]?.log).toBeGreaterThan(0)
    expect(results[0]?.checkpointed).toBe(results[0]?.log)
  })

  it('let go of the file synchronously on close, so the app’s connection closes last and removes the log', () => {
    const file = openFile()
    const { checkpointer } = checkpointerOn(file)
    file.write(10)
    checkpointer.wrote(10)
    checkpointer.close()
    file.db.close()
    expect(existsSync(`${file.path}-wal`)).toBe(false)
  })

  it('fall back to SQLite’s checkpoints on the app’s connection when the worker cannot run, and say so once', async () => {
    const file = openFile()
    const { checkpointer, errors } = checkpointerOn(file, join(file.path, '..', 'no-such-module.js'))
    await vi.waitFor(() => expect(errors).toHaveLength(1), { timeout: 10_000 })
    expect(checkpointer.background).toBe(false)
    expect(file.db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000)
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ code: 'TS_DISK_IO' })
    expect(errors[0]?.message).toMatch(/checkpoints of .* run on the app's connection from now on/)
    // Writes go on, and SQLite checkpoints them itself: the log stays small.
    for (let t = 0; t < 50; t++) file.write(500)
    expect(statSync(`${file.path}-wal`).size).toBeLessThan(8 * 1024 * 1024)
  })
})

describe('the group commit while a checkpoint runs', () => {
  it('holds batches back, commits them when released, and commits at once when asked to', async () => {
    const committed: number[][] = []
    const writes = new GroupCommit<number, number>({
      maxBatchSize: 2,
      commit: (ops) => {
        committed.push([...ops])
        return ops
      },
    })
    const turn = () => new Promise((resolve) => setImmediate(resolve))
    writes.hold(true)
    const first = [writes.enqueue(1), writes.enqueue(2), writes.enqueue(3)]
    await turn()
    await turn()
    expect(committed).toEqual([])
    writes.hold(false)
    expect(await Promise.all(first)).toEqual([1, 2, 3])
    expect(committed).toEqual([[1, 2], [3]])
    writes.hold(true)
    const fourth = writes.enqueue(4)
    writes.commitNow()
    expect(await fourth).toBe(4)
    expect(committed.at(-1)).toEqual([4])
  })
})

describe('a store', () => {
  it('reports its checkpoints in stats() and serves every session after many writes and a reopen', async () => {
    const fixture = createStore()
    const { store, clock } = fixture
    expect(store.stats().disk?.checkpoints).toEqual({ background: true, count: 0 })
    const writes = []
    for (let i = 0; i < 3_000; i++)
      writes.push(store.set(`s${i}`, sessionFor(clock.now(), HOUR, { i, pad: 'p'.repeat(1_000) })))
    await Promise.all(writes)
    await store.flush()
    await vi.waitFor(() => expect(store.stats().disk?.checkpoints.count).toBeGreaterThan(0), {
      timeout: 10_000,
    })
    expect(store.stats().disk?.checkpoints.background).toBe(true)
    await store.close()
    const again = fixture.reopen()
    for (const i of [0, 1_499, 2_999]) expect(await again.get(`s${i}`)).toMatchObject({ i })
  })
})

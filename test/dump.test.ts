// Promise 10: a dump holds nothing usable. Sessions whose data carries a known marker are written under known
// ids; then the raw bytes of the SQLite file and its WAL, every Redis key and value, and an RDB file made with
// SAVE are searched. With hashIds no id appears; with encryption no marker appears. A control store without
// either shows that the search finds them when they are there.

import { randomBytes, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TieredStoreOptions } from '../src/options.js'
import type { RespValue } from './helpers/redis-server.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000
const KEYS = { keys: [randomBytes(32)] }

/** Ids shaped like express-session's (24 random bytes, base64url). */
function newIds(n: number): string[] {
  return Array.from({ length: n }, () => randomBytes(24).toString('base64url'))
}

/** The bytes of the SQLite file and of its WAL (if any), as latin1 text to search. */
function fileBytes(dbPath: string): string {
  const parts = [readFileSync(dbPath)]
  if (existsSync(`${dbPath}-wal`)) parts.push(readFileSync(`${dbPath}-wal`))
  return Buffer.concat(parts).toString('latin1')
}

function flat(value: RespValue): string {
  return Array.isArray(value) ? value.map(flat).join('\n') : String(value)
}

/** Every key under `prefix` with its value, whatever its type, as one text. */
async function redisDump(port: number, prefix: string): Promise<string> {
  const out: string[] = []
  let cursor = '0'
  do {
    const [next, keys] = (await redisCommand(port, [
      'SCAN',
      cursor,
      'MATCH',
      `${prefix}*`,
      'COUNT',
      '1000',
    ])) as [string, string[]]
    cursor = next
    for (const key of keys) {
      const type = String(await redisCommand(port, ['TYPE', key]))
      const read =
        type === 'hash'
          ? ['HGETALL', key]
          : type === 'set'
            ? ['SMEMBERS', key]
            : type === 'zset'
              ? ['ZRANGE', key, '0', '-1', 'WITHSCORES']
              : ['GET', key]
      out.push(key, flat(await redisCommand(port, read)))
    }
  } while (cursor !== '0')
  return out.join('\n')
}

/** Which of `ids` and whether `marker` occur in `text`. */
function leaks(text: string, ids: readonly string[], marker: string) {
  return { ids: ids.filter((id) => text.includes(id)), marker: text.includes(marker) }
}

describe('a dump holds nothing usable (local mode)', () => {
  async function writeAndRead(options: TieredStoreOptions) {
    const marker = `MARKER-${randomUUID()}`
    const ids = newIds(20)
    const { store, clock, dbPath } = createStore(options)
    for (const [n, sid] of ids.entries())
      await store.set(sid, sessionFor(clock.now(), HOUR, { userId: 'u1', secret: marker, n }))
    await store.touch(ids[0] as string, sessionFor(clock.now(), 2 * HOUR, { userId: 'u1' }))
    await store.destroy(ids[1] as string)
    await store.flush()
    const whileOpen = fileBytes(dbPath)
    const served = await store.get(ids[2] as string)
    await store.close()
    return { ids, marker, served, whileOpen, afterClose: fileBytes(dbPath) }
  }

  it('with hashIds and encryption: no id and no marker in the file or its WAL, and every session is served', async () => {
    const { ids, marker, served, whileOpen, afterClose } = await writeAndRead({ encryption: KEYS })
    expect(served).toMatchObject({ secret: marker, n: 2 })
    expect(leaks(whileOpen, ids, marker)).toEqual({ ids: [], marker: false })
    expect(leaks(afterClose, ids, marker)).toEqual({ ids: [], marker: false })
  })

  it('with hashIds alone: no id, and the marker is there (the control of the search)', async () => {
    const { ids, marker, whileOpen } = await writeAndRead({})
    expect(leaks(whileOpen, ids, marker)).toEqual({ ids: [], marker: true })
  })

  it('control: with hashIds: false the ids are found', async () => {
    const { ids, whileOpen } = await writeAndRead({ hashIds: false })
    expect(leaks(whileOpen, ids, '').ids.length).toBeGreaterThan(0)
  })
})

describe('a dump holds nothing usable (shared mode, with the outbox holding writes during an outage)', () => {
  const redis = useRedis({
    args: ['--appendonly', 'yes', '--appendfsync', 'always', '--rdbcompression', 'no'],
  })

  async function scenario(options: TieredStoreOptions) {
    const marker = `MARKER-${randomUUID()}`
    const ids = newIds(12)
    const { open, clock, prefix, dir } = sharedStores(() => ({ url: redis.url, commandTimeout: 300 }))
    const store = await open('a', options)
    const data = (n: number) => ({ userId: 'u1', secret: marker, n })
    for (const [n, sid] of ids.entries())
      if (n < 6) await store.set(sid, sharedSession(clock.now(), HOUR, data(n)))
    // Spill some into the disk cache, so its rows are on the floor too.
    await store.flush()

    const down = once(store, 'disconnect')
    await redis.server.kill9()
    await down
    for (const [n, sid] of ids.entries())
      if (n >= 6) await store.set(sid, sharedSession(clock.now(), HOUR, data(n)))
    expect(store.stats().outbox).toBe(6)
    const dbPath = join(dir, 'a.db')
    const outboxFile = fileBytes(dbPath)

    const up = once(store, 'connect')
    await redis.server.restart()
    await up
    await engineOf(store).replayed()
    expect(store.stats().outbox).toBe(0)
    const keys = await redisDump(redis.port, prefix)
    await redisCommand(redis.port, ['SAVE'])
    const rdb = readFileSync(join(redis.server.dir, 'dump.rdb')).toString('latin1')
    const served = await store.get(ids[7] as string)
    return { ids, marker, served, outboxFile, keys, rdb }
  }

  it('with hashIds and encryption: no id and no marker in SQLite (outbox), Redis keys and values, or the RDB file', async () => {
    const { ids, marker, served, outboxFile, keys, rdb } = await scenario({ encryption: KEYS })
    expect(served).toMatchObject({ secret: marker, n: 7 })
    expect(leaks(outboxFile, ids, marker)).toEqual({ ids: [], marker: false })
    expect(keys.length).toBeGreaterThan(0)
    expect(leaks(keys, ids, marker)).toEqual({ ids: [], marker: false })
    expect(leaks(rdb, ids, marker)).toEqual({ ids: [], marker: false })
  })

  it('control: without either, the ids and the marker are found in the same places', async () => {
    const { ids, marker, outboxFile, keys, rdb } = await scenario({ hashIds: false })
    expect(leaks(outboxFile, ids, marker).marker).toBe(true)
    expect(leaks(outboxFile, ids, marker).ids.length).toBeGreaterThan(0)
    expect(leaks(keys, ids, marker)).toEqual({ ids, marker: true })
    expect(leaks(rdb, ids, marker)).toEqual({ ids, marker: true })
  })
})

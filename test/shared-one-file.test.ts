// Shared mode with two live stores on ONE SQLite file (as PM2 or node cluster workers get with the default
// disk.path): their spill caches and their outboxes share the file. Coherence while both spill, an outage both
// write through, and one of them closing while the other keeps running.

import { once } from 'node:events'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import type { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { engineOf, ready, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

const HOUR = 3_600_000
const COMMAND_TIMEOUT = 300
/** Small enough that a few dozen ~1 KiB sessions cross the high watermark and spill. */
const MEMORY = { maxBytes: 32 * 1024 }
const PAD = 'p'.repeat(900)
/** The one file both instances use (the fixture names a file after the instance: same name, same file). */
const SHARED = 'sessions'
/** The only error an outage may bring: Redis unavailable. */
const OUTAGE_CODES = new Set(['TS_REDIS_UNAVAILABLE'])

/** Collects the codes of every `error` event the stores emit. */
function collectErrors(...stores: TieredStore[]): string[] {
  const codes: string[] = []
  for (const store of stores) store.on('error', (error: TieredSessionError) => codes.push(error.code))
  return codes
}

/** Reads what the shared SQLite file holds, on a connection of the test's own (read-only). */
function fileRows(path: string): {
  sessions: Map<string, number>
  outbox: Array<{ sid: string; op: string; version: number }>
  integrity: string
} {
  const db = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const sessions = new Map<string, number>()
    for (const row of db
      .prepare<[], { sid: string; version: number }>('SELECT sid, version FROM sessions')
      .all())
      sessions.set(row.sid, row.version)
    const outbox = db
      .prepare<[], { sid: string; op: string; version: number }>(
        'SELECT sid, op, version FROM outbox ORDER BY seq',
      )
      .all()
    const integrity = String(db.pragma('integrity_check', { simple: true }))
    return { sessions, outbox, integrity }
  } finally {
    db.close()
  }
}

/** The acknowledged writes (`sid` to its data) that `reader`, an instance that never held them, does not read back. */
async function notInRedis(
  reader: TieredStore,
  acknowledged: Map<string, Record<string, unknown>>,
): Promise<string[]> {
  const missing: string[] = []
  for (const [sid, data] of acknowledged) {
    const got = (await reader.get(sid)) as Record<string, unknown> | undefined
    const same = got !== undefined && Object.entries(data).every(([key, value]) => got[key] === value)
    if (!same)
      missing.push(`${sid}: acknowledged ${JSON.stringify(data)}, Redis has ${JSON.stringify(got ?? null)}`)
  }
  return missing
}

/** Both instances have applied every invalidation Redis sent so far. */
async function delivered(...stores: TieredStore[]): Promise<void> {
  await Promise.all(stores.map((store) => engineOf(store).invalidationsDelivered()))
}

describe('two shared-mode instances on one SQLite file', () => {
  // NB: an fsync'd append-only file, so a SIGKILL keeps what Redis acknowledged before the outage.
  const redis = useRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })

  /** Kills Redis and waits until every store saw it go. */
  async function outage(...stores: TieredStore[]): Promise<void> {
    const down = stores.map((store) => once(store, 'disconnect'))
    await redis.server.kill9()
    await Promise.all(down)
  }

  it('while both spill into the shared file, a read by one after a write by the other returns the latest data', async () => {
    const { open, clock, dir, prefix } = sharedStores(() => ({
      url: redis.url,
      commandTimeout: COMMAND_TIMEOUT,
    }))
    const a = await open(SHARED, { memory: MEMORY })
    const b = await open(SHARED, { memory: MEMORY })
    const path = join(dir, `${SHARED}.db`)
    const errors = collectErrors(a, b)

    // A spills its copy of X to the file; B writes X; A reads X at once, before it has heard the invalidation.
    // NB: B has put nothing into the file yet, so its write skips dropping the file's row of X (DiskTier's
    // #mayHoldSessions): A's older row stays in the shared file until A hears the invalidation. The read must not
    // serve it.
    for (let k = 0; k < 5; k++) {
      const x = `x${k}`
      clock.advance(1)
      await a.set(x, sharedSession(clock.now(), HOUR, { by: 'a', v: 1, pad: PAD }))
      for (let i = 0; i < 40; i++)
        await a.set(`fill-${k}-${i}`, sharedSession(clock.now(), HOUR, { by: 'a', pad: PAD }))
      await a.flush()
      const spilledByA = fileRows(path).sessions.get(storedKey(x))
      expect(spilledByA, `A spilled ${x} into the shared file`).toBeDefined()
      clock.advance(1)
      await b.set(x, sharedSession(clock.now(), HOUR, { by: 'b', v: 2 }))
      expect(await a.get(x), x).toMatchObject({ by: 'b', v: 2 })
    }
    // NB: the case above is exercised while A's old row is still in the file at the read, which is usual (the
    // invalidation arrives on another socket, after B's reply) but not certain; the read is right either way.

    // Now both fill their memory tiers well past the budget: both spill into the one file.
    for (let i = 0; i < 80; i++) {
      await a.set(`a${i}`, sharedSession(clock.now(), HOUR, { by: 'a', v: 0, pad: PAD }))
      await b.set(`b${i}`, sharedSession(clock.now(), HOUR, { by: 'b', v: 0, pad: PAD }))
    }
    await a.flush()
    await b.flush()
    expect(a.stats().spills).toBeGreaterThan(0)
    expect(b.stats().spills).toBeGreaterThan(0)
    const spilled = fileRows(path).sessions
    expect(spilled.has(storedKey('a0'))).toBe(true)
    expect(spilled.has(storedKey('b0'))).toBe(true)

    // The other way round, with the invalidation delivered first: B spills Y, A writes it, B reads it.
    clock.advance(1)
    await b.set('y', sharedSession(clock.now(), HOUR, { by: 'b', v: 1, pad: PAD }))
    for (let i = 0; i < 40; i++)
      await b.set(`fill-y-${i}`, sharedSession(clock.now(), HOUR, { by: 'b', pad: PAD }))
    await b.flush()
    expect(fileRows(path).sessions.has(storedKey('y'))).toBe(true)
    clock.advance(1)
    await a.set('y', sharedSession(clock.now(), HOUR, { by: 'a', v: 2 }))
    await delivered(a, b)
    expect(await b.get('y')).toMatchObject({ by: 'a', v: 2 })
    // Whatever copy of Y the file holds now is not older than what Redis has.
    const inRedis = Number(await redisCommand(redis.port, ['HGET', `${prefix}${storedKey('y')}`, 'v']))
    expect(inRedis).toBeGreaterThan(0)
    const rowOfY = fileRows(path).sessions.get(storedKey('y'))
    if (rowOfY !== undefined) expect(rowOfY).toBeGreaterThanOrEqual(inRedis)

    // Ping-pong over sessions both keep spilling: each write by one, then a read by the other.
    const stores = [a, b] as const
    const model = new Map<string, number>()
    let reads = 0
    for (let round = 1; round <= 4; round++) {
      for (let i = 0; i < 16; i++) {
        const sid = i % 2 === 0 ? `a${i}` : `b${i}`
        const writer = stores[(round + i) % 2] as TieredStore
        const reader = stores[(round + i + 1) % 2] as TieredStore
        clock.advance(1)
        const v = round * 100 + i
        await writer.set(sid, sharedSession(clock.now(), HOUR, { v, pad: PAD }))
        model.set(sid, v)
        await delivered(a, b)
        expect(await reader.get(sid), `${sid} round ${round}`).toMatchObject({ v })
        reads++
      }
      // Push what was just read out of memory again, into the shared file.
      for (let i = 0; i < 40; i++) {
        await a.set(`more-a${round}-${i}`, sharedSession(clock.now(), HOUR, { pad: PAD }))
        await b.set(`more-b${round}-${i}`, sharedSession(clock.now(), HOUR, { pad: PAD }))
      }
      await a.flush()
      await b.flush()
      await delivered(a, b)
      for (const [sid, v] of model) {
        expect(await a.get(sid), `${sid} from A after round ${round}`).toMatchObject({ v })
        expect(await b.get(sid), `${sid} from B after round ${round}`).toMatchObject({ v })
      }
    }
    expect(reads).toBe(64)
    // The shared file served some of those reads (copies spilled by one instance or the other).
    expect(a.stats().hits.disk + b.stats().hits.disk).toBeGreaterThan(0)
    expect(errors).toEqual([])
  })

  // Scenario 2. Both instances write into the one outbox while Redis is down; both replay when it returns.
  async function outageBothWrite(staggered: boolean): Promise<void> {
    const proxy = staggered ? await startProxy(redis.port) : undefined
    const { open, clock, dir } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open(SHARED, { memory: MEMORY })
    // NB: B reaches the same Redis through a proxy only so that the test can hold its reconnection back.
    const b = await open(SHARED, {
      memory: MEMORY,
      ...(proxy === undefined ? {} : { redis: { url: proxy.url, commandTimeout: COMMAND_TIMEOUT } }),
    })
    const path = join(dir, `${SHARED}.db`)
    const errors = collectErrors(a, b)
    await a.set('common', sharedSession(clock.now(), HOUR, { by: 'a', n: 0 }))
    expect(await b.get('common')).toMatchObject({ n: 0 })

    await outage(a, b)
    const acknowledged = new Map<string, Record<string, unknown>>()
    const write = async (store: TieredStore, sid: string, data: Record<string, unknown>) => {
      // NB: versions are wall-clock based: two writes of one session are never made in the same millisecond.
      clock.advance(1)
      await store.set(sid, sharedSession(clock.now(), HOUR, data))
      acknowledged.set(sid, data)
    }
    for (let i = 0; i < 5; i++) {
      await write(a, `a${i}`, { by: 'a', i })
      await write(b, `b${i}`, { by: 'b', i })
    }
    await write(a, 'common', { by: 'a', n: 1 })
    await write(b, 'common', { by: 'b', n: 2 })
    await write(a, 'common', { by: 'a', n: 3 })
    await write(b, 'common', { by: 'b', n: 4 })
    // Every write was acknowledged from the one outbox in the shared file.
    expect(fileRows(path).outbox).toHaveLength(14)
    expect(a.health().outbox.depth).toBeGreaterThan(0)
    expect(b.health().outbox.depth).toBeGreaterThan(0)

    const stall = proxy?.stallNewConnections()
    const aUp = once(a, 'connect')
    const bUp = once(b, 'connect')
    await redis.server.restart()
    await aUp
    if (stall !== undefined) {
      await engineOf(a).replayed()
      stall.release()
    }
    await bUp
    await engineOf(a).replayed()
    await engineOf(b).replayed()

    // Redis holds every acknowledged write (of `common`, the last): read back by an instance that never held any.
    const witness = await open('witness')
    expect(await notInRedis(witness, acknowledged)).toEqual([])
    // Both outboxes drained: nothing left in the file, nothing reported by either instance.
    expect(fileRows(path).outbox).toEqual([])
    for (const store of [a, b]) {
      expect(store.stats().outbox).toBe(0)
      expect(store.health().outbox).toEqual({ depth: 0, oldestAgeMs: null })
    }
    // Both serve the last acknowledged write of `common`.
    await ready(a)
    await ready(b)
    await delivered(a, b)
    expect(await a.get('common')).toMatchObject({ by: 'b', n: 4 })
    expect(await b.get('common')).toMatchObject({ by: 'b', n: 4 })
    expect(errors.filter((code) => !OUTAGE_CODES.has(code))).toEqual([])
  }

  it('an outage both write through, both reconnecting together: Redis gets every acknowledged write, both outboxes drain', async () => {
    // Both reconnect within a few ms of each other, in either order, and each may replay (and remove) the
    // other's rows before that one reads the log: an entry of another store on the file is replayed, never
    // dropped unreplayed (src/outbox.ts). Before that rule, B reconnecting first lost A's a0 about 1 run in 5.
    await outageBothWrite(false)
  })

  it('an outage both write through, B reconnecting after A replayed: Redis gets every acknowledged write, both outboxes drain', async () => {
    // A replays the whole log, B's rows included, before B reads it: B finds its entries gone, counts them as
    // replayed elsewhere (its copies dropped: the next read asks Redis) and reports an empty outbox. Before that
    // rule, A removed B's rows unreplayed and B's writes never reached Redis.
    await outageBothWrite(true)
  })

  // Scenario 3. One instance goes away (a PM2 reload, a scale-down) while the other runs on.
  it("closing A during an outage keeps B's outbox entries and B's spilled sessions", async () => {
    const { open, clock, dir } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open(SHARED, { memory: MEMORY })
    const b = await open(SHARED, { memory: MEMORY })
    const path = join(dir, `${SHARED}.db`)
    const errors = collectErrors(a, b)
    for (let i = 0; i < 60; i++) {
      await b.set(`kept${i}`, sharedSession(clock.now(), HOUR, { by: 'b', i, pad: PAD }))
      await a.set(`mine${i}`, sharedSession(clock.now(), HOUR, { by: 'a', i, pad: PAD }))
    }
    await a.flush()
    await b.flush()
    const spilled = [...Array(60).keys()].filter((i) => fileRows(path).sessions.has(storedKey(`kept${i}`)))
    expect(spilled.length).toBeGreaterThan(10)

    await outage(a, b)
    const acknowledged = new Map<string, Record<string, unknown>>()
    for (let i = 0; i < 5; i++) {
      clock.advance(1)
      await b.set(`outage-b${i}`, sharedSession(clock.now(), HOUR, { by: 'b', i }))
      acknowledged.set(`outage-b${i}`, { by: 'b', i })
      await a.set(`outage-a${i}`, sharedSession(clock.now(), HOUR, { by: 'a', i }))
    }
    clock.advance(1)
    await b.destroy(`kept${spilled[0]}`)
    await a.close()

    // B's spilled sessions are still served from the shared file (Redis is down: the file is all there is).
    for (const i of spilled.slice(1))
      expect(await b.get(`kept${i}`), `kept${i}`).toMatchObject({ by: 'b', i })
    expect(await b.get(`kept${spilled[0]}`)).toBeUndefined()
    // B's outbox entries are still in the file, and B goes on writing into it.
    const waiting = fileRows(path).outbox.map((row) => row.sid)
    for (const sid of acknowledged.keys()) expect(waiting).toContain(storedKey(sid))
    clock.advance(1)
    await b.set('after-close', sharedSession(clock.now(), HOUR, { by: 'b', late: true }))
    acknowledged.set('after-close', { by: 'b', late: true })
    expect(fileRows(path).integrity).toBe('ok')

    const up = once(b, 'connect')
    await redis.server.restart()
    await up
    await engineOf(b).replayed()
    const witness = await open('witness')
    expect(await notInRedis(witness, acknowledged)).toEqual([])
    expect(await witness.get(`kept${spilled[0]}`)).toBeUndefined()
    expect(await witness.get(`kept${spilled[1]}`)).toMatchObject({ by: 'b' })
    // B's entries left the file's outbox. NB: not "depth 0": A's entries, left for A's next start, are another
    // matter (see the next test).
    const left = new Set(fileRows(path).outbox.map((row) => row.sid))
    for (const sid of [...acknowledged.keys(), `kept${spilled[0]}`])
      expect(left.has(storedKey(sid)), sid).toBe(false)
    // B's cache is still sound after the replay.
    await ready(b)
    for (const i of spilled.slice(1))
      expect(await b.get(`kept${i}`), `kept${i}`).toMatchObject({ by: 'b', i })
    expect(fileRows(path).integrity).toBe('ok')
    expect(errors.filter((code) => !OUTAGE_CODES.has(code))).toEqual([])
  })

  it('writes A acknowledged into the shared outbox before it closed reach Redis once B replays and A restarts', async () => {
    // A closes with its outage writes in the file's outbox. B, running on, replays them with its own (to B they
    // are another store's entries), so they reach Redis without waiting for A's next start; A, restarted, finds
    // nothing left to replay. Before that rule, B removed them unreplayed and they were lost.
    const { open, clock, dir } = sharedStores(() => ({ url: redis.url, commandTimeout: COMMAND_TIMEOUT }))
    const a = await open(SHARED, { memory: MEMORY })
    const b = await open(SHARED, { memory: MEMORY })
    const path = join(dir, `${SHARED}.db`)
    const errors = collectErrors(a, b)

    await outage(a, b)
    const acknowledged = new Map<string, Record<string, unknown>>()
    for (let i = 0; i < 3; i++) {
      clock.advance(1)
      await a.set(`outage-a${i}`, sharedSession(clock.now(), HOUR, { by: 'a', i }))
      acknowledged.set(`outage-a${i}`, { by: 'a', i })
      await b.set(`outage-b${i}`, sharedSession(clock.now(), HOUR, { by: 'b', i }))
      acknowledged.set(`outage-b${i}`, { by: 'b', i })
    }
    await a.close()
    expect(fileRows(path).outbox).toHaveLength(6)

    const up = once(b, 'connect')
    await redis.server.restart()
    await up
    await engineOf(b).replayed()
    const witness = await open('witness')
    expect(await notInRedis(witness, acknowledged)).toEqual([])
    expect(fileRows(path).outbox).toEqual([])
    // A starts again on the same file (PM2 restarting the worker): nothing is left for it, nothing changes.
    const restarted = await open(SHARED, { memory: MEMORY })
    await engineOf(restarted).replayed()
    expect(await notInRedis(witness, acknowledged)).toEqual([])
    expect(restarted.health().outbox).toEqual({ depth: 0, oldestAgeMs: null })
    expect(errors.filter((code) => !OUTAGE_CODES.has(code))).toEqual([])
  })

  it("a live destroy of a session Redis never had, with another store's outage write of it in the file, leaves a tombstone until that write's expiry", async () => {
    // B alone is cut off (behind a stalled proxy) and acknowledges a write of x into the file's outbox; A, still
    // connected, destroys x, which Redis never had. A's destroy drops B's entry, and since B's replay of it may be
    // on its way at that moment (outbox.test.ts holds one there), Redis keeps a tombstone of x until the entry's
    // expiry. B, reconnected, brings nothing back.
    const proxy = await startProxy(redis.port)
    const { open, clock, dir, prefix } = sharedStores(() => ({
      url: redis.url,
      commandTimeout: COMMAND_TIMEOUT,
    }))
    const a = await open(SHARED, { memory: MEMORY })
    const b = await open(SHARED, {
      memory: MEMORY,
      redis: { url: proxy.url, commandTimeout: COMMAND_TIMEOUT },
    })
    const path = join(dir, `${SHARED}.db`)
    const errors = collectErrors(a, b)
    const stall = proxy.stallNewConnections()
    const down = once(b, 'disconnect')
    proxy.dropAll()
    await down

    const written = sharedSession(clock.now(), HOUR, { by: 'b' })
    await b.set('x', written)
    expect(fileRows(path).outbox).toMatchObject([{ sid: storedKey('x'), op: 'set' }])
    const key = `${prefix}${storedKey('x')}`
    expect(await redisCommand(redis.port, ['EXISTS', key])).toBe(0)
    await a.destroy('x')
    expect(fileRows(path).outbox).toEqual([])
    expect(await redisCommand(redis.port, ['HGET', key, 'd'])).toBe('1')
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', key]))).toBe(
      Date.parse(written.cookie.expires),
    )

    const up = once(b, 'connect')
    stall.release()
    await up
    await engineOf(b).replayed()
    const witness = await open('witness')
    expect(await witness.get('x')).toBeUndefined()
    expect(await a.get('x')).toBeUndefined()
    // A destroy of a session with nothing of it in the file leaves no key.
    await a.destroy('never')
    expect(await redisCommand(redis.port, ['EXISTS', `${prefix}${storedKey('never')}`])).toBe(0)
    expect(errors.filter((code) => !OUTAGE_CODES.has(code))).toEqual([])
  })
})

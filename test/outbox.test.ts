// The outbox alone, on a real SQLite log and a real Redis: entries survive a restart, only the latest entry
// of a session is replayed (in order), a destroy wins, expired entries are dropped, a stale write yields to
// what Redis holds, and a live write superseding an entry means it is never replayed.

import { once } from 'node:events'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { Outbox, type ReplayTarget } from '../src/outbox.js'
import { RedisConnection } from '../src/redis/connection.js'
import { RedisTier } from '../src/redis/redis-tier.js'
import { DiskTier } from '../src/tiers/disk-tier.js'
import { ManualClock } from './helpers/manual-clock.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR = 3_600_000

/**
 * A replay target over `tier` whose replayed writes are held once sent: `onItsWay` resolves when the first one
 * reaches it (read from the log, not yet run by Redis), and each waits for `release()`.
 */
function heldReplay(tier: RedisTier): { target: ReplayTarget; onItsWay: Promise<void>; release: () => void } {
  let sent!: () => void
  const onItsWay = new Promise<void>((resolve) => {
    sent = resolve
  })
  let release!: () => void
  const gate = new Promise<void>((resolve) => {
    release = resolve
  })
  const target: ReplayTarget = {
    setIfNewer: async (sid, written) => {
      sent()
      await gate
      return tier.setIfNewer(sid, written)
    },
    delete: (sid, options) => tier.delete(sid, options),
    confirm: (sid) => tier.confirm(sid),
  }
  return { target, onItsWay, release }
}

describe('Outbox', () => {
  const redis = useRedis()

  async function setup() {
    const clock = new ManualClock(Date.now() + 60_000)
    const dir = makeTempDir()
    const path = join(dir.path, 'outbox.db')
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 2000, connectTimeoutMs: 2000 })
    while (!connection.up) await once(connection, 'status')
    const tier = new RedisTier({ connection, prefix: uniquePrefix('ob'), channel: 'ob', origin: 'me', clock })
    const opened: DiskTier[] = []
    const stale: string[] = []
    /** A store's outbox on the one file; `redis`: what it replays to (the tier itself unless a test holds it). */
    const open = (target: ReplayTarget = tier) => {
      const log = new DiskTier({ path, synchronous: 'normal', maxBatchSize: 100, clock })
      opened.push(log)
      const outbox = new Outbox({
        log: log.outboxLog,
        redis: target,
        isUp: () => connection.up,
        settleMs: 2000,
        clock,
        report: (error) => {
          throw error
        },
        onStale: (sid) => stale.push(sid),
      })
      return { log, outbox }
    }
    onTestFinished(async () => {
      for (const log of opened) log.close()
      await tier.clear()
      await connection.close()
      dir.remove()
    })
    /** A session `{"n":n}` live for an hour. */
    const record = (n: number) => ({ payload: `{"n":${n}}`, expiresAt: clock.now() + HOUR, userId: null })
    return { clock, tier, open, stale, record }
  }

  it('replays the latest entry of each session after a restart, in order, then empties the log', async () => {
    const { clock, tier, open, record } = await setup()
    const first = open()
    await first.outbox.append('a', record(1), 10, () => undefined)
    await first.outbox.append('a', record(2), 11, () => undefined)
    await first.outbox.append('b', record(3), 12, () => undefined)
    await first.outbox.append('b', null, 13, () => undefined)
    await first.outbox.append('c', { ...record(4), expiresAt: clock.now() + 5 }, 14, () => undefined)
    expect(first.outbox.depth()).toBe(5)
    await first.outbox.close()
    first.log.close()

    clock.advance(5)
    const again = open()
    expect(again.outbox.get('a')?.record.version).toBe(11)
    expect(again.outbox.get('b')?.op).toBe('delete')
    again.outbox.replay()
    await again.outbox.replayed()
    expect((await tier.get('a'))?.payload).toBe('{"n":2}')
    expect(await tier.get('b')).toBeUndefined()
    expect(await tier.get('c')).toBeUndefined()
    expect(again.outbox.depth()).toBe(0)
    expect(again.outbox.has('a')).toBe(false)
  })

  it('yields to a newer value in Redis (reported stale) and skips an entry a live write superseded', async () => {
    const { clock, tier, open, stale } = await setup()
    const { outbox } = open()
    const live = await tier.write('s', { payload: '{"live":1}', expiresAt: clock.now() + HOUR, userId: null })
    await outbox.append(
      's',
      { payload: '{"old":1}', expiresAt: clock.now() + HOUR, userId: null },
      live.version - 1,
      () => undefined,
    )
    await outbox.append(
      't',
      { payload: '{"t":1}', expiresAt: clock.now() + HOUR, userId: null },
      1,
      () => undefined,
    )
    outbox.superseded('t', 1)
    outbox.replay()
    await outbox.replayed()
    expect((await tier.get('s'))?.payload).toBe('{"live":1}')
    expect(stale).toEqual(['s'])
    expect(await tier.get('t')).toBeUndefined()
    expect(outbox.depth()).toBe(0)
  })

  it('settle() lets the replay put a pending entry into Redis before a live write goes ahead', async () => {
    const { clock, tier, open } = await setup()
    const { outbox } = open()
    await outbox.append(
      's',
      { payload: '{"outage":1}', expiresAt: clock.now() + HOUR, userId: null },
      5,
      () => undefined,
    )
    await outbox.settle('s')
    expect(outbox.has('s')).toBe(false)
    expect((await tier.get('s'))?.payload).toBe('{"outage":1}')
  })

  it("replays another store's entries on the same file instead of dropping them; that store then counts them as replayed elsewhere", async () => {
    const { clock, tier, open, stale, record } = await setup()
    const a = open()
    const b = open()
    // B's entries come after A opened the log: to A they are another store's (another process on the file).
    await b.outbox.append('b1', record(1), 10, () => undefined)
    await b.outbox.append('b1', record(2), 11, () => undefined)
    await b.outbox.append('b2', null, 12, () => undefined)
    await a.outbox.append('a1', record(3), 13, () => undefined)
    await tier.write('b2', {
      payload: '{"doomed":1}',
      expiresAt: clock.now() + HOUR,
      userId: null,
      version: 5,
    })
    a.outbox.replay()
    await a.outbox.replayed()
    expect((await tier.get('b1'))?.payload).toBe('{"n":2}')
    expect(await tier.get('b2')).toBeUndefined()
    expect((await tier.get('a1'))?.payload).toBe('{"n":3}')
    expect(a.outbox.depth()).toBe(0)
    // A's copies of B's sessions are stale (A's own writes of B's entries are not reported back to A: NOLOOP).
    expect(stale).toEqual(['b1', 'b1', 'b2'])
    stale.length = 0
    // B finds its entries gone from the log: no longer pending, its copies reported stale (the next read asks Redis).
    expect(b.outbox.has('b1')).toBe(true)
    b.outbox.replay()
    await b.outbox.replayed()
    expect(b.outbox.has('b1')).toBe(false)
    expect(b.outbox.has('b2')).toBe(false)
    expect(b.outbox.oldestAgeMs()).toBeNull()
    expect(stale.sort()).toEqual(['b1', 'b2'])
  })

  it("a clear empties the log at once, another store's entries included: none is replayed after it", async () => {
    const { clock, tier, open } = await setup()
    const a = open()
    const b = open()
    await b.outbox.append(
      'x',
      { payload: '{"x":1}', expiresAt: clock.now() + HOUR, userId: null },
      10,
      () => undefined,
    )
    await a.outbox.append(
      'y',
      { payload: '{"y":1}', expiresAt: clock.now() + HOUR, userId: null },
      11,
      () => undefined,
    )
    a.outbox.clear()
    expect(a.outbox.depth()).toBe(0)
    // B replays before A does: nothing of either is left to bring back.
    b.outbox.replay()
    await b.outbox.replayed()
    a.outbox.replay()
    await a.outbox.replayed()
    expect(await tier.get('x')).toBeUndefined()
    expect(await tier.get('y')).toBeUndefined()
  })

  it('entries a live destroy superseded leave the log at once: another store replaying later does not bring the session back', async () => {
    const { tier, open, record } = await setup()
    const a = open()
    const b = open()
    await a.outbox.append('x', record(1), 10, () => undefined)
    await a.outbox.append('x', record(2), 11, () => undefined)
    // Redis back: A's live destroy of x reaches Redis first (x was never there: no tombstone is left).
    await tier.delete('x')
    a.outbox.destroyed('x', tier.proposedVersion())
    expect(a.outbox.depth()).toBe(0)
    b.outbox.replay()
    await b.outbox.replayed()
    expect(await tier.get('x')).toBeUndefined()
  })

  it("skips another store's entry that left the log while this replay was under way", async () => {
    const { tier, open, record } = await setup()
    const b = open()
    const a = open()
    await b.outbox.append('own', record(1), 10, () => undefined)
    await a.outbox.append('x', record(2), 11, () => undefined)
    // B reads the log (its own entry, then A's) and waits on Redis for its own; meanwhile A's live destroy of x
    // supersedes A's entry.
    b.outbox.replay()
    await tier.delete('x')
    a.outbox.destroyed('x', tier.proposedVersion())
    await b.outbox.replayed()
    expect((await tier.get('own'))?.payload).toBe('{"n":1}')
    expect(await tier.get('x')).toBeUndefined()
    expect(b.outbox.depth()).toBe(0)
  })

  it("a live destroy removes another store's entries of the session made before it; a live write only those not newer than it", async () => {
    const { tier, open, record } = await setup()
    const a = open()
    const b = open()
    // B's outage write of x; A, with nothing of x pending, destroys x live (Redis never had it: no tombstone).
    await b.outbox.append('x', record(1), 10, () => undefined)
    await tier.delete('x')
    a.outbox.destroyed('x', tier.proposedVersion())
    // A's live write of y at version 50 supersedes A's entry (40) and B's older one (30), not B's newer one (60).
    await b.outbox.append('y', record(30), 30, () => undefined)
    await a.outbox.append('y', record(40), 40, () => undefined)
    await b.outbox.append('y', record(60), 60, () => undefined)
    await tier.write('y', { ...record(50), version: 50 })
    a.outbox.superseded('y', 50)
    expect(a.outbox.depth()).toBe(1)
    b.outbox.replay()
    await b.outbox.replayed()
    expect(await tier.get('x')).toBeUndefined()
    expect((await tier.get('y'))?.payload).toBe('{"n":60}')
    expect(b.outbox.depth()).toBe(0)
  })

  it("a live destroy of a session Redis never had leaves a tombstone while another store's write of it waits in the log: a replay of that write already on its way is refused", async () => {
    const { clock, tier, open, record } = await setup()
    // B's replay is held between reading its entry (still in the log, so B sends it) and Redis running it.
    const { target, onItsWay, release } = heldReplay(tier)
    const b = open(target)
    const a = open()
    const outageWrite = record(1)
    await b.outbox.append('x', outageWrite, 10, () => undefined)
    b.outbox.replay()
    await onItsWay
    // A destroys x live, as the store does: it asks the log first, then Redis (which never had x), then drops
    // the entries. Without the tombstone, B's replay landing next would bring x back for an hour.
    const until = a.outbox.replayableUntil('x')
    expect(until).toBe(outageWrite.expiresAt)
    expect(await tier.delete('x', { tombstoneUntil: until })).toBe(false)
    a.outbox.destroyed('x', tier.proposedVersion())
    release()
    await b.outbox.replayed()
    expect(await tier.get('x')).toBeUndefined()
    expect(b.outbox.depth()).toBe(0)
    // The tombstone lasts until the latest expiry of those writes, and a new live write of x is not blocked by it.
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', tier.key('x')]))).toBe(outageWrite.expiresAt)
    await tier.write('x', record(2))
    expect((await tier.get('x'))?.payload).toBe('{"n":2}')
    // With nothing of a session in the log (none written, or only expired ones), a destroy of a key Redis never
    // had leaves no key.
    await b.outbox.append('gone', { ...record(3), expiresAt: clock.now() + 5 }, 20, () => undefined)
    clock.advance(5)
    for (const sid of ['never', 'gone']) {
      expect(a.outbox.replayableUntil(sid)).toBeUndefined()
      await tier.delete(sid, { tombstoneUntil: a.outbox.replayableUntil(sid) })
      expect(await redisCommand(redis.port, ['EXISTS', tier.key(sid)])).toBe(0)
    }
  })

  it("a live destroy's tombstone lasts until the later of the session's expiry and its waiting writes' expiry; an existing tombstone is extended to it", async () => {
    const { clock, tier, open, record } = await setup()
    const a = open()
    const b = open()
    const soon = clock.now() + 10 * 60_000
    // Redis holds x until `soon`; a write of x waiting in the log (made later, its cookie rolled) lasts an hour.
    await tier.write('x', { ...record(1), expiresAt: soon })
    await b.outbox.append('x', record(2), 10, () => undefined)
    expect(await tier.delete('x', { tombstoneUntil: a.outbox.replayableUntil('x') })).toBe(true)
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', tier.key('x')]))).toBe(record(2).expiresAt)
    // y: destroyed already (a tombstone until `soon`); a write of it waiting in the log moves it out.
    await tier.write('y', { ...record(3), expiresAt: soon })
    await tier.delete('y')
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', tier.key('y')]))).toBe(soon)
    await b.outbox.append('y', record(4), 11, () => undefined)
    expect(await tier.delete('y', { tombstoneUntil: a.outbox.replayableUntil('y') })).toBe(false)
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', tier.key('y')]))).toBe(record(4).expiresAt)
    // ...and never in: a later destroy with a sooner time leaves it.
    await tier.delete('y', { tombstoneUntil: soon })
    expect(Number(await redisCommand(redis.port, ['PEXPIRETIME', tier.key('y')]))).toBe(record(4).expiresAt)
    // A replay of either waiting write is refused.
    b.outbox.replay()
    await b.outbox.replayed()
    expect(await tier.get('x')).toBeUndefined()
    expect(await tier.get('y')).toBeUndefined()
  })

  it("replaying another store's entry drops this store's copy of that session: Redis does not tell a connection of its own writes (NOLOOP)", async () => {
    const { tier, open, stale, record } = await setup()
    const a = open()
    const b = open()
    // Both wrote x through an outage; A replays the log in order: its own write, then B's later one.
    await a.outbox.append('x', record(1), 10, () => undefined)
    await b.outbox.append('x', record(2), 11, () => undefined)
    await b.outbox.append('y', null, 12, () => undefined)
    a.outbox.replay()
    await a.outbox.replayed()
    expect((await tier.get('x'))?.payload).toBe('{"n":2}')
    // A's copy of x is its own write (n 1), and B's destroy of y went out through A's connection too.
    expect(stale).toEqual(['x', 'y'])
  })

  it('an entry of ours that another store replays while our replay is under way leaves our pending set: its stale data is not served', async () => {
    const { tier, open, stale, record } = await setup()
    // A's replay is held on its first entry; meanwhile B replays the whole file, A's next entry (x) included.
    const { target, onItsWay, release } = heldReplay(tier)
    const a = open(target)
    await a.outbox.append('first', record(1), 10, () => undefined)
    await a.outbox.append('x', record(2), 11, () => undefined)
    const b = open()
    a.outbox.replay()
    await onItsWay
    b.outbox.replay()
    await b.outbox.replayed()
    // Another store writes x live after that (Redis tells A, which never read x there, nothing).
    await tier.write('x', record(3))
    release()
    await a.outbox.replayed()
    // A no longer answers for x from its outbox (a read would serve {"n":2}); its copy goes, the next read asks Redis.
    expect(a.outbox.has('x')).toBe(false)
    expect(a.outbox.depth()).toBe(0)
    expect(stale).toContain('x')
    expect((await tier.get('x'))?.payload).toBe('{"n":3}')
  })
})

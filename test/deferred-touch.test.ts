// Promise 8, deferred touches: a touch of a session held in memory updates that copy and resolves at once;
// its durable part (an UPDATE folded into the next group commit, or a small script on Redis) is coalesced
// per session and committed in the background, by flush() and by close(). It never raises the version,
// never undoes, reorders or revives data, and never shortens a session.

import { once } from 'node:events'
import { createServer, connect as netConnect, type Socket } from 'node:net'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import { commandCalls, redisCommand, useRedis } from './helpers/redis-server.js'
import { sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE

/** The part of a stored session these tests look at. */
type Sess = { cookie: { expires: string; originalMaxAge: number }; [key: string]: unknown }

async function read(store: TieredStore, sid: string): Promise<Sess | undefined> {
  return (await store.get(sid)) as Sess | undefined
}

// ---- local mode: the row, read from the SQLite file by a connection of our own ----------------------------

interface Row {
  expiresAt: number
  version: number
  payload: string
}

/** The row of `sid` as the file has it now (committed transactions only), or undefined. */
function rowOf(dbPath: string, sid: string): Row | undefined {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true })
  try {
    return db.prepare('SELECT expiresAt, version, payload FROM sessions WHERE sid = ?').get(storedKey(sid)) as
      | Row
      | undefined
  } finally {
    db.close()
  }
}

// ---- shared mode: the hash, read on a connection of our own ---------------------------------------------

interface Hash {
  p: string | null
  e: number | null
  v: string | null
  c: string | null
  t: string | null
  d: string | null
}

async function hashOf(port: number, key: string): Promise<Hash> {
  const reply = (await redisCommand(port, ['HMGET', key, 'p', 'e', 'v', 'c', 't', 'd'])) as Array<
    string | null
  >
  const [p, e, v, c, t, d] = reply
  return {
    p: p ?? null,
    e: e == null ? null : Number(e),
    v: v ?? null,
    c: c ?? null,
    t: t ?? null,
    d: d ?? null,
  }
}

/** Scripts the server ran (EVALSHA, and EVAL for a script it did not have yet). */
async function scriptCalls(port: number): Promise<number> {
  return (await commandCalls(port, 'evalsha')) + (await commandCalls(port, 'eval'))
}

/**
 * A TCP proxy in front of Redis that can hold what its clients send (their commands) until `release()`, while
 * replies and pub/sub messages keep flowing: a store behind it cannot get a command to Redis meanwhile.
 */
async function commandHoldingProxy(targetPort: number) {
  let held: Array<() => void> | undefined
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    const upstream = netConnect(targetPort, '127.0.0.1')
    sockets.add(client)
    sockets.add(upstream)
    client.on('data', (chunk) => {
      if (held !== undefined) held.push(() => upstream.write(chunk))
      else upstream.write(chunk)
    })
    upstream.on('data', (chunk) => client.write(chunk))
    const end = () => {
      sockets.delete(client)
      sockets.delete(upstream)
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      socket.on('close', end)
      socket.on('error', end)
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('the proxy has no TCP address')
  onTestFinished(async () => {
    for (const socket of sockets) socket.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return {
    url: `redis://127.0.0.1:${address.port}`,
    /** Commands sent from now on wait in the proxy. */
    hold(): void {
      held ??= []
    },
    /** Sends the held commands on, in order, and lets new ones through. */
    release(): void {
      const waiting = held ?? []
      held = undefined
      for (const send of waiting) send()
    },
  }
}

// =========================================================================================================

describe('deferred touches, local mode', () => {
  it('resolve with the memory copy updated; the row keeps its old expiry until flush(), then gets the new one at the same version', async () => {
    const { store, clock, dbPath } = createStore()
    const saved = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] })
    await store.set('s', saved)
    const before = rowOf(dbPath, 's')
    expect(before?.expiresAt).toBe(clock.now() + HOUR)

    clock.advance(10 * MINUTE)
    const touched = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] })
    await store.touch('s', touched)
    expect((await read(store, 's'))?.cookie.expires).toBe(touched.cookie.expires)
    // Nothing durable yet: the touch is queued for the next group commit.
    expect(rowOf(dbPath, 's')).toEqual(before)

    await store.flush()
    const after = rowOf(dbPath, 's')
    expect(after?.expiresAt).toBe(clock.now() + HOUR)
    expect(after?.version).toBe(before?.version)
    expect(JSON.parse(after?.payload ?? '{}')).toEqual(touched)
  })

  it('coalesces 50 touches of one session into one durable change with the latest expiry', async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    const { version } = rowOf(dbPath, 's') as Row
    const transactions = store.stats().disk?.transactions ?? 0
    let last = ''
    for (let i = 0; i < 50; i++) {
      clock.advance(SECOND)
      const sess = sessionFor(clock.now(), HOUR, { n: 1 })
      last = sess.cookie.expires
      await store.touch('s', sess)
    }
    await store.flush()
    expect((store.stats().disk?.transactions ?? 0) - transactions).toBeLessThanOrEqual(1)
    const row = rowOf(dbPath, 's') as Row
    expect(row.expiresAt).toBe(Date.parse(last))
    expect(row.version).toBe(version)
    expect((await read(store, 's'))?.cookie.expires).toBe(last)
  })

  describe('a data write after a touch that is still queued stands as written', () => {
    it('set: its data, expiry and version stand (even with a shorter life than the touch gave)', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      const v1 = (rowOf(dbPath, 's') as Row).version
      clock.advance(MINUTE)
      await store.touch('s', sessionFor(clock.now(), 2 * HOUR, { cart: ['tea'] }))
      const written = sessionFor(clock.now(), HOUR, { cart: ['tea', 'milk'] })
      await store.set('s', written)
      await store.flush()
      const row = rowOf(dbPath, 's') as Row
      expect(JSON.parse(row.payload)).toEqual(written)
      expect(row.expiresAt).toBe(clock.now() + HOUR)
      expect(row.version).toBe(v1 + 1)
      expect(await read(store, 's')).toEqual(written)
    })

    it('merge: applied on top of the touched copy, one version up', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      const v1 = (rowOf(dbPath, 's') as Row).version
      clock.advance(MINUTE)
      const touched = sessionFor(clock.now(), HOUR, { cart: ['tea'] })
      await store.touch('s', touched)
      expect(await store.merge('s', { set: { cart: '["tea","milk"]' }, unset: [] })).toBe(true)
      await store.flush()
      const row = rowOf(dbPath, 's') as Row
      expect(JSON.parse(row.payload)).toEqual({ ...touched, cart: ['tea', 'milk'] })
      expect(row.version).toBe(v1 + 1)
      expect(row.expiresAt).toBe(Date.parse(touched.cookie.expires))
      expect(await read(store, 's')).toMatchObject({ cart: ['tea', 'milk'] })
    })

    it('destroy: the session stays destroyed', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(MINUTE)
      await store.touch('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      await store.destroy('s')
      await store.flush()
      expect(rowOf(dbPath, 's')).toBeUndefined()
      expect(await read(store, 's')).toBeUndefined()
    })

    it('another instance on the same file writes new data before the touch commits: its data and version stand', async () => {
      const fixture = createStore()
      const { clock, dbPath } = fixture
      const a = fixture.store
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(MINUTE)
      await a.touch('s', sessionFor(clock.now(), 2 * HOUR, { cart: ['tea'] }))
      // Another store on the same file (a second process, say) commits its write first.
      const b = fixture.reopen()
      const written = sessionFor(clock.now(), HOUR, { cart: ['coffee'] })
      const writing = b.set('s', written)
      await b.flush()
      await writing
      const theirs = rowOf(dbPath, 's') as Row
      await a.flush()
      // A's touch was made on the version B replaced: it is dropped.
      expect(rowOf(dbPath, 's')).toEqual(theirs)
      expect(JSON.parse(theirs.payload)).toEqual(written)
      const c = fixture.reopen()
      expect(await read(c, 's')).toEqual(written)
    })

    it('a set that repeats the memory copy while a newer write is queued still stands (it is the latest write)', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(SECOND)
      const newer = store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea', 'milk'] }))
      clock.advance(SECOND)
      // Called after the write above, so it must be applied after it, even though its data equals what
      // memory still holds (the write above has not committed yet).
      const latest = sessionFor(clock.now(), HOUR, { cart: ['tea'] })
      const last = store.set('s', latest)
      await Promise.all([newer, last])
      await store.flush()
      expect(await read(store, 's')).toEqual(latest)
      expect(JSON.parse((rowOf(dbPath, 's') as Row).payload)).toEqual(latest)
    })

    it('a set that repeats the memory copy right after a destroy still in flight stores the session', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(SECOND)
      const destroying = store.destroy('s')
      const again = sessionFor(clock.now(), HOUR, { cart: ['tea'] })
      const setting = store.set('s', again)
      await Promise.all([destroying, setting])
      await store.flush()
      // The set was acknowledged after the destroy was called: it is the session's latest state.
      expect(await read(store, 's')).toEqual(again)
      expect(JSON.parse(rowOf(dbPath, 's')?.payload ?? 'null')).toEqual(again)
    })
  })

  describe('never brings a session back', () => {
    it('an expired session stays expired', async () => {
      const fixture = createStore()
      const { store, clock, dbPath } = fixture
      await store.set('s', sessionFor(clock.now(), MINUTE, { n: 1 }))
      const before = rowOf(dbPath, 's') as Row
      clock.advance(MINUTE + SECOND)
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await store.flush()
      expect(await read(store, 's')).toBeUndefined()
      const row = rowOf(dbPath, 's')
      // Swept or not, it was not moved forward.
      if (row !== undefined) expect(row).toEqual(before)
      expect(await read(fixture.reopen(), 's')).toBeUndefined()
    })

    it('a destroyed session stays destroyed', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await store.destroy('s')
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await store.flush()
      expect(await read(store, 's')).toBeUndefined()
      expect(rowOf(dbPath, 's')).toBeUndefined()
    })

    it('a sweep between a touch and its commit leaves memory and the file agreeing on the session', async () => {
      const fixture = createStore()
      const { store, clock } = fixture
      await store.set('s', sessionFor(clock.now(), MINUTE, { n: 1 }))
      clock.advance(MINUTE - SECOND)
      // Acknowledged while the session is live; its durable part is still queued when the old expiry passes.
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      clock.advance(2 * SECOND)
      await store.sweep()
      await store.flush()
      const served = await read(store, 's')
      const merged = await store.merge('s', { set: { n: '2' }, unset: [] })
      await store.close()
      const afterRestart = await read(fixture.reopen(), 's')
      // Whichever way it goes, the store must not serve a session that merge() and a restart say is gone.
      expect({ merged, afterRestart: afterRestart !== undefined }).toEqual({
        merged: served !== undefined,
        afterRestart: served !== undefined,
      })
    })

    it('a touch made while a destroy is in flight does not bring it back', async () => {
      const { store, clock, dbPath } = createStore()
      await store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      clock.advance(SECOND)
      const destroying = store.destroy('s')
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await destroying
      await store.flush()
      expect(await read(store, 's')).toBeUndefined()
      expect(rowOf(dbPath, 's')).toBeUndefined()
    })
  })

  it('close() commits pending touches', async () => {
    const fixture = createStore()
    const { clock, dbPath } = fixture
    await fixture.store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    const { version } = rowOf(dbPath, 's') as Row
    clock.advance(10 * MINUTE)
    const touched = sessionFor(clock.now(), HOUR, { n: 1 })
    await fixture.store.touch('s', touched)
    await fixture.store.close()
    const row = rowOf(dbPath, 's') as Row
    expect(row.expiresAt).toBe(Date.parse(touched.cookie.expires))
    expect(row.version).toBe(version)
    const reopened = fixture.reopen()
    expect((await read(reopened, 's'))?.cookie.expires).toBe(touched.cookie.expires)
  })

  describe('touchAfter', () => {
    it('0.5: a touch less than half a lifetime after the save changes nothing; past half, it slides the expiry', async () => {
      const fixture = createStore({ touchAfter: 0.5 })
      const { store, clock, dbPath } = fixture
      const saved = sessionFor(clock.now(), HOUR, { n: 1 })
      await store.set('s', saved)
      const before = rowOf(dbPath, 's') as Row

      clock.advance(20 * MINUTE)
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      expect((await read(store, 's'))?.cookie.expires).toBe(saved.cookie.expires)
      await store.flush()
      expect(rowOf(dbPath, 's')).toEqual(before)

      clock.advance(11 * MINUTE)
      const touched = sessionFor(clock.now(), HOUR, { n: 1 })
      await store.touch('s', touched)
      expect((await read(store, 's'))?.cookie.expires).toBe(touched.cookie.expires)
      await store.flush()
      const row = rowOf(dbPath, 's') as Row
      expect(row.expiresAt).toBe(Date.parse(touched.cookie.expires))
      expect(row.version).toBe(before.version)
    })

    it('0.5 holds on the durable path too (no copy in memory)', async () => {
      const fixture = createStore({ touchAfter: 0.5 })
      const { clock, dbPath } = fixture
      await fixture.store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await fixture.store.close()
      const before = rowOf(dbPath, 's') as Row
      const store = fixture.reopen()
      clock.advance(20 * MINUTE)
      await store.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await store.flush()
      expect(rowOf(dbPath, 's')).toEqual(before)
    })

    it.each([1.5, 'x'])('rejects touchAfter: %s with TS_INVALID_OPTION naming it', (value) => {
      const dir = makeTempDir()
      onTestFinished(() => dir.remove())
      const path = join(dir.path, 'sessions.db')
      expect(() => new TieredStore({ touchAfter: value as number, disk: { path } })).toThrow(
        expect.objectContaining({
          code: 'TS_INVALID_OPTION',
          message: expect.stringContaining('touchAfter'),
        }),
      )
    })
  })

  it('a set of the same data with a later cookie is a touch (same version); a set of changed data raises it', async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] }))
    const v1 = (rowOf(dbPath, 's') as Row).version

    clock.advance(5 * MINUTE)
    const resaved = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] })
    await store.set('s', resaved)
    expect((await read(store, 's'))?.cookie.expires).toBe(resaved.cookie.expires)
    await store.flush()
    let row = rowOf(dbPath, 's') as Row
    expect(row.version).toBe(v1)
    expect(row.expiresAt).toBe(Date.parse(resaved.cookie.expires))

    clock.advance(5 * MINUTE)
    const changed = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea', 'milk'] })
    await store.set('s', changed)
    await store.flush()
    row = rowOf(dbPath, 's') as Row
    expect(row.version).toBe(v1 + 1)
    expect(JSON.parse(row.payload)).toEqual(changed)
  })
})

// =========================================================================================================

describe('deferred touches, shared mode', () => {
  const redis = useRedis()

  it('resolve without a round trip to Redis, with the memory copy updated; the hash gets the new expiry, cookie and the same version once sent', async () => {
    const proxy = await commandHoldingProxy(redis.port)
    const { open, clock, prefix } = sharedStores(() => ({ url: proxy.url }))
    const a = await open('a')
    await a.set('s', sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] }))
    const before = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(before.e).toBe(clock.now() + HOUR)

    clock.advance(5 * SECOND)
    const touched = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] })
    // A's commands cannot reach Redis now: the touch must not wait for it.
    proxy.hold()
    await a.touch('s', touched)
    expect((await read(a, 's'))?.cookie.expires).toBe(touched.cookie.expires)
    expect(await hashOf(redis.port, `${prefix}${storedKey('s')}`)).toEqual(before)
    proxy.release()

    await a.flush()
    const after = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(after.e).toBe(Date.parse(touched.cookie.expires))
    expect(after.v).toBe(before.v)
    expect(after.p).toBe(before.p)
    expect(JSON.parse(after.c ?? 'null')).toEqual(touched.cookie)
    expect(after.t).toBe(before.v)
    const expireTime = Number(await redisCommand(redis.port, ['PEXPIRETIME', `${prefix}${storedKey('s')}`]))
    expect(expireTime).toBe(Date.parse(touched.cookie.expires))
    const fresh = await open('fresh')
    expect(await read(fresh, 's')).toEqual(touched)
  })

  it('coalesces 50 touches of one session into one small script with the latest expiry', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    await a.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    const before = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    const scripts = await scriptCalls(redis.port)
    let last = ''
    for (let i = 0; i < 50; i++) {
      clock.advance(SECOND)
      const sess = sessionFor(clock.now(), HOUR, { n: 1 })
      last = sess.cookie.expires
      await a.touch('s', sess)
    }
    await a.flush()
    expect((await scriptCalls(redis.port)) - scripts).toBeLessThanOrEqual(3)
    const after = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(after.e).toBe(Date.parse(last))
    expect(after.v).toBe(before.v)
    expect(after.p).toBe(before.p)
  })

  describe('a data write after a touch that is still queued stands as written', () => {
    it('set: its data and a newer version stand', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      const v1 = Number((await hashOf(redis.port, `${prefix}${storedKey('s')}`)).v)
      clock.advance(SECOND)
      await a.touch('s', sessionFor(clock.now(), 2 * HOUR, { cart: ['tea'] }))
      const written = sessionFor(clock.now(), HOUR, { cart: ['tea', 'milk'] })
      await a.set('s', written)
      await a.flush()
      const hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      expect(Number(hash.v)).toBeGreaterThan(v1)
      expect(JSON.parse(hash.p ?? 'null')).toEqual(written)
      expect(hash.e).toBe(clock.now() + HOUR)
      expect(await read(a, 's')).toEqual(written)
      expect(await read(await open('fresh'), 's')).toEqual(written)
    })

    it('merge: applied on top of the touched copy', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      const v1 = Number((await hashOf(redis.port, `${prefix}${storedKey('s')}`)).v)
      clock.advance(SECOND)
      const touched = sessionFor(clock.now(), HOUR, { cart: ['tea'] })
      await a.touch('s', touched)
      expect(await a.merge('s', { set: { cart: '["tea","milk"]' }, unset: [] })).toBe(true)
      await a.flush()
      const hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      expect(Number(hash.v)).toBeGreaterThan(v1)
      const expected = { ...touched, cart: ['tea', 'milk'] }
      expect(await read(a, 's')).toEqual(expected)
      expect(await read(await open('fresh'), 's')).toEqual(expected)
    })

    it('destroy: the session stays destroyed', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(SECOND)
      await a.touch('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      await a.destroy('s')
      await a.flush()
      const hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      expect(hash.p).toBeNull()
      expect(hash.c).toBeNull()
      expect(await read(a, 's')).toBeUndefined()
      expect(await read(await open('fresh'), 's')).toBeUndefined()
    })

    it('another instance writes new data while the touch waits to be sent: its data and version stand', async () => {
      const proxy = await commandHoldingProxy(redis.port)
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a', { redis: { url: proxy.url } })
      const b = await open('b')
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(SECOND)
      proxy.hold()
      await a.touch('s', sessionFor(clock.now(), 2 * HOUR, { cart: ['tea'] }))
      const written = sessionFor(clock.now(), HOUR, { cart: ['coffee'] })
      const invalidated = once(a, 'invalidation')
      await b.set('s', written)
      const theirs = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      proxy.release()
      await a.flush()
      // NB: B's invalidation reaches A on its own connection, maybe after the touch's reply.
      await invalidated
      // A's touch was made on the version B replaced: it is dropped.
      expect(await hashOf(redis.port, `${prefix}${storedKey('s')}`)).toEqual(theirs)
      expect(theirs.c).toBeNull()
      expect(JSON.parse(theirs.p ?? 'null')).toEqual(written)
      expect(await read(a, 's')).toEqual(written)
      expect(await read(await open('fresh'), 's')).toEqual(written)
    })

    it('a set that repeats the memory copy while a newer write is in flight still stands (it is the latest write)', async () => {
      const { open, clock } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea'] }))
      clock.advance(SECOND)
      const newer = a.set('s', sessionFor(clock.now(), HOUR, { cart: ['tea', 'milk'] }))
      clock.advance(SECOND)
      const latest = sessionFor(clock.now(), HOUR, { cart: ['tea'] })
      const last = a.set('s', latest)
      await Promise.all([newer, last])
      await a.flush()
      expect(await read(a, 's')).toEqual(latest)
      expect(await read(await open('fresh'), 's')).toEqual(latest)
    })
  })

  describe('never brings a session back', () => {
    it('an expired session stays expired', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), MINUTE, { n: 1 }))
      const before = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      clock.advance(MINUTE + SECOND)
      await a.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await a.flush()
      expect(await read(a, 's')).toBeUndefined()
      const hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      // Gone (Redis's own expiry, or forgotten) or untouched: never moved forward.
      if (hash.v !== null) expect(hash).toEqual(before)
      expect(await read(await open('fresh'), 's')).toBeUndefined()
    })

    it('a destroyed session stays destroyed', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await a.destroy('s')
      const tombstone = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      await a.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await a.flush()
      expect(await hashOf(redis.port, `${prefix}${storedKey('s')}`)).toEqual(tombstone)
      expect(tombstone.p).toBeNull()
      expect(await read(a, 's')).toBeUndefined()
      expect(await read(await open('fresh'), 's')).toBeUndefined()
    })

    it('a touch made while a destroy is in flight does not bring it back', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a')
      await a.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      clock.advance(SECOND)
      const destroying = a.destroy('s')
      await a.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      await destroying
      await a.flush()
      const hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      expect(hash.p).toBeNull()
      expect(hash.c).toBeNull()
      expect(await read(a, 's')).toBeUndefined()
      expect(await read(await open('fresh'), 's')).toBeUndefined()
    })
  })

  it('close() commits pending touches', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    await a.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    const before = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    clock.advance(10 * SECOND)
    const touched = sessionFor(clock.now(), HOUR, { n: 1 })
    await a.touch('s', touched)
    await a.close()
    const after = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(after.e).toBe(Date.parse(touched.cookie.expires))
    expect(after.v).toBe(before.v)
    const fresh = await open('fresh')
    expect((await read(fresh, 's'))?.cookie.expires).toBe(touched.cookie.expires)
  })

  it('tracking: another instance holding a copy hears of the touch from Redis and serves the touched session', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const saved = sessionFor(clock.now(), 10 * MINUTE, { user: 'ann', cart: ['tea'] })
    await a.set('s', saved)
    const b = await open('b')
    expect(await read(b, 's')).toEqual(saved)
    // NB: B's reads are tracked from its third there (see readUntilTracked).
    expect(await read(b, 's')).toEqual(saved)
    expect(await read(b, 's')).toEqual(saved)
    clock.advance(5 * MINUTE)
    const touched = sessionFor(clock.now(), 10 * MINUTE, { user: 'ann', cart: ['tea'] })
    const heard = once(b, 'invalidation')
    await a.touch('s', touched)
    await a.flush()
    await heard
    expect(await read(b, 's')).toEqual(touched)
  })

  it('channel: another instance whose copy looks expired by its old expiry re-reads Redis and serves the touched session; the touch published no invalidation', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url, invalidation: 'channel' }))
    const a = await open('a')
    const saved = sessionFor(clock.now(), 10 * MINUTE, { user: 'ann', cart: ['tea'] })
    await a.set('s', saved)
    const b = await open('b')
    expect(await read(b, 's')).toEqual(saved)
    let heard = 0
    b.on('invalidation', () => heard++)
    const invalidations = b.stats().invalidations
    const publishes = await commandCalls(redis.port, 'publish')

    clock.advance(5 * MINUTE)
    const touched = sessionFor(clock.now(), 10 * MINUTE, { user: 'ann', cart: ['tea'] })
    await a.touch('s', touched)
    await a.flush()
    expect(await commandCalls(redis.port, 'publish')).toBe(publishes)
    // A real write after it: its invalidation reaches B behind any the touch might have sent.
    const probe = once(b, 'invalidation')
    await a.set('probe', sessionFor(clock.now(), HOUR, { n: 1 }))
    await probe
    expect(heard).toBe(1)
    expect(b.stats().invalidations).toBe(invalidations + 1)
    expect((await hashOf(redis.port, `${prefix}${storedKey('s')}`)).e).toBe(
      Date.parse(touched.cookie.expires),
    )

    // Past the old expiry, before the new one.
    clock.advance(6 * MINUTE)
    expect(await read(b, 's')).toEqual(touched)
  })

  describe('touchAfter', () => {
    it('0.5: a touch less than half a lifetime after the save changes nothing; past half, it slides the expiry', async () => {
      const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
      const a = await open('a', { touchAfter: 0.5 })
      const saved = sessionFor(clock.now(), HOUR, { n: 1 })
      await a.set('s', saved)
      const before = await hashOf(redis.port, `${prefix}${storedKey('s')}`)

      clock.advance(20 * MINUTE)
      await a.touch('s', sessionFor(clock.now(), HOUR, { n: 1 }))
      expect((await read(a, 's'))?.cookie.expires).toBe(saved.cookie.expires)
      await a.flush()
      expect(await hashOf(redis.port, `${prefix}${storedKey('s')}`)).toEqual(before)

      clock.advance(11 * MINUTE)
      const touched = sessionFor(clock.now(), HOUR, { n: 1 })
      await a.touch('s', touched)
      expect((await read(a, 's'))?.cookie.expires).toBe(touched.cookie.expires)
      await a.flush()
      const after = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
      expect(after.e).toBe(Date.parse(touched.cookie.expires))
      expect(after.v).toBe(before.v)
    })
  })

  it('a set of the same data with a later cookie is a touch (same version); a set of changed data raises it', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    await a.set('s', sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] }))
    const v1 = (await hashOf(redis.port, `${prefix}${storedKey('s')}`)).v

    clock.advance(5 * SECOND)
    const resaved = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea'] })
    await a.set('s', resaved)
    expect((await read(a, 's'))?.cookie.expires).toBe(resaved.cookie.expires)
    await a.flush()
    let hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(hash.v).toBe(v1)
    expect(hash.e).toBe(Date.parse(resaved.cookie.expires))
    expect(await read(await open('fresh'), 's')).toEqual(resaved)

    clock.advance(5 * SECOND)
    const changed = sessionFor(clock.now(), HOUR, { user: 'ann', cart: ['tea', 'milk'] })
    await a.set('s', changed)
    await a.flush()
    hash = await hashOf(redis.port, `${prefix}${storedKey('s')}`)
    expect(Number(hash.v)).toBeGreaterThan(Number(v1))
    expect(JSON.parse(hash.p ?? 'null')).toEqual(changed)
  })
})

describe('a touch near the end of a session is durable at once', () => {
  const redis = useRedis()

  it('shared mode: another instance sees the new expiry without any flush, past the old one', async () => {
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a')
    const b = await open('b')
    await a.set('late', sessionFor(clock.now(), 1500, { v: 1 }))
    expect(await a.get('late')).toMatchObject({ v: 1 })
    await a.touch('late', sessionFor(clock.now(), 60_000, { v: 1 }))
    clock.advance(1600)
    expect(await b.get('late')).toMatchObject({ v: 1 })
  })

  it('local mode: the row has the new expiry without any flush', async () => {
    const { store, clock, dbPath } = createStore()
    await store.set('late', sessionFor(clock.now(), 1500, { v: 1 }))
    await store.touch('late', sessionFor(clock.now(), 60_000, { v: 1 }))
    const db = new Database(dbPath, { readonly: true })
    onTestFinished(() => {
      db.close()
    })
    expect(db.prepare('SELECT expiresAt FROM sessions WHERE sid = ?').get(storedKey('late'))).toEqual({
      expiresAt: clock.now() + 60_000,
    })
  })
})

// `encryption`: AES-256-GCM of stored payloads with key rotation; a payload that does not authenticate (wrong
// key, a flipped byte, moved to another session's row) is a miss plus TS_DECODE_FAILED, and the store keeps
// serving the others. Checked on the real SQLite file and a real redis-server.

import { randomBytes } from 'node:crypto'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { AesGcmSealer } from '../src/at-rest/payload-sealer.js'
import { hashSid } from '../src/at-rest/session-key.js'
import type { TieredSessionError } from '../src/errors.js'
import type { TieredStoreOptions } from '../src/options.js'
import { TieredStore } from '../src/store.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000
const k1 = randomBytes(32)
const k2 = randomBytes(32)

/** The stored payload of a session, as the file holds it. */
function storedPayload(dbPath: string, sid: string): string {
  const db = new Database(dbPath, { readonly: true })
  try {
    return (db.prepare('SELECT payload FROM sessions WHERE sid = ?').get(hashSid(sid)) as { payload: string })
      .payload
  } finally {
    db.close()
  }
}

function rewrite(dbPath: string, sid: string, payload: string): void {
  const db = new Database(dbPath)
  try {
    db.prepare('UPDATE sessions SET payload = ? WHERE sid = ?').run(payload, hashSid(sid))
  } finally {
    db.close()
  }
}

/** The key id in an envelope `ts1.<id>.<body>`. */
const keyIdOf = (stored: string) => stored.split('.')[1]

describe('encryption options', () => {
  it.each([
    [{ keys: [] }, 'encryption.keys'],
    [{ keys: [randomBytes(16)] }, 'encryption.keys[0]'],
    [{ keys: [k1, 'not base64!'] }, 'encryption.keys[1]'],
    [{ keys: [randomBytes(32).toString('base64').slice(0, 20)] }, 'encryption.keys[0]'],
    [{ keys: [42] }, 'encryption.keys[0]'],
    [{ keys: [k1], other: 1 }, 'encryption.other'],
  ])('refuses %o with TS_INVALID_OPTION naming %s, and never echoes a key', (encryption, option) => {
    expect.assertions(3)
    try {
      new TieredStore({ encryption } as unknown as TieredStoreOptions)
    } catch (error) {
      expect(error).toMatchObject({ code: 'TS_INVALID_OPTION' })
      expect((error as Error).message).toContain(option)
      expect((error as Error).message).not.toContain(k1.toString('base64'))
    }
  })

  it('takes base64 strings as well as Buffers', async () => {
    const { store, clock } = createStore({ encryption: { keys: [k1.toString('base64'), k2] } })
    await store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    expect(await store.get('s')).toMatchObject({ n: 1 })
  })

  it('refuses encryption with migrate.dualWrite (the mirror is plain JSON)', () => {
    expect(
      () =>
        new TieredStore({
          redis: { url: 'redis://127.0.0.1:1' },
          migrate: { from: 'connect-redis', prefix: 'old:', dualWrite: true },
          encryption: { keys: [k1] },
        }),
    ).toThrow(expect.objectContaining({ code: 'TS_INVALID_OPTION' }))
  })
})

describe('the sealer', () => {
  it('never reuses an IV: 1,000 seals of one payload under one key are all different, and all open', () => {
    const sealer = new AesGcmSealer([k1])
    const sealed = Array.from({ length: 1000 }, () => sealer.seal('key', '{"n":1}'))
    expect(new Set(sealed.map((s) => s.split('.')[2]?.slice(0, 16))).size).toBe(1000)
    for (const s of sealed) expect(sealer.open('key', s)).toBe('{"n":1}')
  })
})

describe('encryption in local mode', () => {
  it('rotates keys: written with [k1], read with [k2, k1], rewritten under k2, read with [k2] alone', async () => {
    const fixture = createStore({ encryption: { keys: [k1] } })
    const { clock, dbPath } = fixture
    await fixture.store.set('s', sessionFor(clock.now(), HOUR, { n: 1 }))
    await fixture.store.set('other', sessionFor(clock.now(), HOUR, { n: 9 }))
    const underK1 = keyIdOf(storedPayload(dbPath, 's'))

    const rotated = fixture.reopen({ encryption: { keys: [k2, k1] } })
    expect(await rotated.get('s')).toMatchObject({ n: 1 })
    await rotated.set('s', sessionFor(clock.now(), HOUR, { n: 2 }))
    await rotated.flush()
    const underK2 = keyIdOf(storedPayload(dbPath, 's'))
    expect(underK2).not.toBe(underK1)
    expect(keyIdOf(storedPayload(dbPath, 'other'))).toBe(underK1)

    const errors: TieredSessionError[] = []
    const only = fixture.reopen({ encryption: { keys: [k2] } })
    only.on('error', (error) => errors.push(error))
    expect(await only.get('s')).toMatchObject({ n: 2 })
    // `other` was never rewritten: without k1 it is a miss plus TS_DECODE_FAILED (the next test's case).
    expect(await only.get('other')).toBeUndefined()
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
  })

  it('wrong key only: a miss plus TS_DECODE_FAILED; the store keeps serving sessions it can open', async () => {
    const fixture = createStore({ encryption: { keys: [k1] } })
    await fixture.store.set('old', sessionFor(fixture.clock.now(), HOUR, { n: 1 }))
    const store = fixture.reopen({ encryption: { keys: [k2] } })
    const errors: TieredSessionError[] = []
    store.on('error', (error) => errors.push(error))
    expect(await store.get('old')).toBeUndefined()
    await store.set('new', sessionFor(fixture.clock.now(), HOUR, { n: 2 }))
    expect(await store.get('new')).toMatchObject({ n: 2 })
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
    expect(store.stats().errors).toMatchObject({ TS_DECODE_FAILED: 1 })
  })

  it('a flipped byte in a stored ciphertext: a miss plus TS_DECODE_FAILED', async () => {
    const fixture = createStore({ encryption: { keys: [k1] } })
    await fixture.store.set('s', sessionFor(fixture.clock.now(), HOUR, { n: 1 }))
    await fixture.store.set('t', sessionFor(fixture.clock.now(), HOUR, { n: 2 }))
    await fixture.store.close()
    const stored = storedPayload(fixture.dbPath, 's')
    const at = stored.length - 5
    const flipped = `${stored.slice(0, at)}${stored[at] === 'A' ? 'B' : 'A'}${stored.slice(at + 1)}`
    rewrite(fixture.dbPath, 's', flipped)
    const store = fixture.reopen()
    const errors: TieredSessionError[] = []
    store.on('error', (error) => errors.push(error))
    expect(await store.get('s')).toBeUndefined()
    expect(await store.get('t')).toMatchObject({ n: 2 })
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
  })

  it("a payload moved to another id's row does not open (the hashed id is its AAD)", async () => {
    const fixture = createStore({ encryption: { keys: [k1] } })
    await fixture.store.set('victim', sessionFor(fixture.clock.now(), HOUR, { admin: true }))
    await fixture.store.set('attacker', sessionFor(fixture.clock.now(), HOUR, { admin: false }))
    await fixture.store.close()
    rewrite(fixture.dbPath, 'attacker', storedPayload(fixture.dbPath, 'victim'))
    const store = fixture.reopen()
    const errors: TieredSessionError[] = []
    store.on('error', (error) => errors.push(error))
    expect(await store.get('attacker')).toBeUndefined()
    expect(await store.get('victim')).toMatchObject({ admin: true })
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
  })

  it('sessions written before encryption was turned on are served, and sealed by their next write', async () => {
    const fixture = createStore()
    await fixture.store.set('s', sessionFor(fixture.clock.now(), HOUR, { n: 1 }))
    expect(storedPayload(fixture.dbPath, 's').startsWith('{')).toBe(true)
    const store = fixture.reopen({ encryption: { keys: [k1] } })
    expect(await store.get('s')).toMatchObject({ n: 1 })
    await store.set('s', sessionFor(fixture.clock.now(), HOUR, { n: 2 }))
    await store.flush()
    expect(storedPayload(fixture.dbPath, 's').startsWith('ts1.')).toBe(true)
  })
})

describe('encryption in shared mode', () => {
  const redis = useRedis()

  it('Redis holds envelopes; another instance with the key list reads them; a value moved to another key does not open', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const a = await open('a', { encryption: { keys: [k1] } })
    await a.set('s', sharedSession(clock.now(), HOUR, { marker: 'plain-text-marker' }))
    await a.set('t', sharedSession(clock.now(), HOUR, { n: 2 }))
    const stored = String(await redisCommand(redis.port, ['HGET', `${prefix}${hashSid('s')}`, 'p']))
    expect(stored.startsWith('ts1.')).toBe(true)
    expect(stored).not.toContain('plain-text-marker')

    const b = await open('b', { encryption: { keys: [k2, k1] } })
    expect(await b.get('s')).toMatchObject({ marker: 'plain-text-marker' })

    await redisCommand(redis.port, ['HSET', `${prefix}${hashSid('t')}`, 'p', stored])
    const c = await open('c', { encryption: { keys: [k1] } })
    const errors: TieredSessionError[] = []
    c.on('error', (error) => errors.push(error))
    expect(await c.get('t')).toBeUndefined()
    expect(await c.get('s')).toMatchObject({ marker: 'plain-text-marker' })
    expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
  })
})

import Database from 'better-sqlite3'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { isTieredSessionError } from '../src/errors.js'
import { storedKey } from './helpers/handles.js'
import { redisCommand, useRedis } from './helpers/redis-server.js'
import { sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000
const SEED = 20261127

/** Accepts only our typed errors with one of the given codes. */
function expectTyped(error: unknown, codes: string[]): void {
  expect(isTieredSessionError(error)).toBe(true)
  expect(codes).toContain((error as { code: string }).code)
}

const nastyKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'cookie',
)
const nastyObject = fc.dictionary(
  fc.oneof(nastyKey, fc.string({ maxLength: 12 })),
  fc.jsonValue({ maxDepth: 4 }),
  {
    maxKeys: 8,
  },
)

describe('fuzzing the store (local mode)', () => {
  it('session ids: long, odd, path-like or unicode ids are a clean miss or TS_INVALID_SID, never anything else', async () => {
    const { store, clock } = createStore()
    const sid = fc.oneof(
      fc.string({ maxLength: 300 }),
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.constantFrom(
        '../../etc/passwd',
        '/',
        '.',
        '\0',
        'a\nb',
        ' ',
        '%2e%2e',
        'x'.repeat(257),
        'x'.repeat(10_000),
      ),
    )
    await fc.assert(
      fc.asyncProperty(sid, async (id) => {
        const stored = await store.set(id, sessionFor(clock.now(), HOUR, { id }) as never).then(
          () => true,
          (error: unknown) => {
            expectTyped(error, ['TS_INVALID_SID'])
            return false
          },
        )
        const got = await store.get(id)
        if (stored) expect(got).toMatchObject({ id })
        else expect(got).toBeUndefined()
        await store.destroy(id)
        expect(await store.get(id)).toBeUndefined()
      }),
      { numRuns: 300, seed: SEED },
    )
  })

  it('payloads: nested, cyclic, huge, or with __proto__/constructor/prototype keys round-trip or fail typed, and never pollute', async () => {
    const { store, clock } = createStore({ maxSessionBytes: 64 * 1024 })
    await fc.assert(
      fc.asyncProperty(nastyObject, fc.nat(3), async (data, shape) => {
        let session: Record<string, unknown> = { ...sessionFor(clock.now(), HOUR), data }
        for (const [k, v] of Object.entries(data))
          Object.defineProperty(session, k, { value: v, enumerable: true })
        if (shape === 1) session.self = session
        if (shape === 2) session.big = 'x'.repeat(70 * 1024)
        if (shape === 3) {
          let deep: Record<string, unknown> = {}
          const root = deep
          for (let i = 0; i < 5000; i++) {
            const next: Record<string, unknown> = {}
            deep.next = next
            deep = next
          }
          session = { ...sessionFor(clock.now(), HOUR), root }
        }
        const ok = await store.set('s', session as never).then(
          () => true,
          (error: unknown) => {
            expectTyped(error, ['TS_ENCODE_FAILED', 'TS_SESSION_TOO_LARGE'])
            return false
          },
        )
        if (ok) expect(JSON.stringify(await store.get('s'))).toBe(JSON.stringify(session))
        // An own "__proto__" key, as JSON.parse makes it (an object literal would set the prototype instead).
        const set = JSON.parse('{"__proto__":"{\\"polluted\\":true}","constructor":"{\\"x\\":1}"}')
        await store
          .merge('s', { set, unset: ['prototype'] })
          .catch((error: unknown) => expectTyped(error, ['TS_SESSION_TOO_LARGE']))
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
        const after = await store.get('s')
        if (after !== undefined) {
          expect(Object.getPrototypeOf(after)).toBe(Object.prototype)
          expect(Object.hasOwn(after, '__proto__')).toBe(true)
        }
        await store.destroy('s')
      }),
      { numRuns: 200, seed: SEED },
    )
  })

  it('garbage rows in SQLite: every read is a clean miss plus a counted error; the store keeps working', async () => {
    const fixture = createStore()
    const { clock, dbPath } = fixture
    await fixture.store.set('seed', sessionFor(clock.now(), HOUR))
    await fixture.store.close()
    const garbage = fc.record({
      payload: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 64 }), fc.constant(null), fc.double()),
      expiresAt: fc.oneof(fc.constant(clock.now() + HOUR), fc.string(), fc.constant(null)),
      version: fc.oneof(fc.integer(), fc.string()),
    })
    const rows = fc.sample(garbage, { numRuns: 200, seed: SEED })
    const db = new Database(dbPath)
    const insert = db.prepare(
      'INSERT OR REPLACE INTO sessions (sid, payload, expiresAt, version, userId) VALUES (?, ?, ?, ?, NULL)',
    )
    db.pragma('ignore_check_constraints = ON')
    rows.forEach((row, i) => {
      try {
        insert.run(storedKey(`g${i}`), row.payload as never, row.expiresAt as never, row.version as never)
      } catch {
        // NOT NULL columns refuse some garbage outright; those rows simply do not exist.
      }
    })
    db.close()
    const store = fixture.reopen()
    store.on('error', () => undefined)
    for (let i = 0; i < rows.length; i++) {
      const got = await store.get(`g${i}`)
      if (got !== undefined) expect(typeof got).toBe('object')
    }
    expect(store.stats().errors.TS_DECODE_FAILED ?? 0).toBeGreaterThan(0)
    await store.all()
    await store.set('fresh', sessionFor(clock.now(), HOUR, { ok: true }))
    expect(await store.get('fresh')).toMatchObject({ ok: true })
  })
})

describe('fuzzing garbage values in Redis (shared mode)', () => {
  const redis = useRedis()

  it('any value at a session key is a clean miss or a session; destroy and clear always work', async () => {
    const { open, clock, prefix } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    store.on('error', () => undefined)
    const value = fc.oneof(
      fc.string({ maxLength: 50 }).map((s) => ['SET', s]),
      fc
        .array(fc.tuple(fc.constantFrom('p', 'v', 'e', 'u', 'd', 'x'), fc.string({ maxLength: 20 })), {
          minLength: 1,
          maxLength: 5,
        })
        .map((pairs) => ['HSET', ...pairs.flat()]),
      fc.array(fc.string({ maxLength: 10 }), { minLength: 1, maxLength: 4 }).map((m) => ['SADD', ...m]),
    )
    const samples = fc.sample(value, { numRuns: 150, seed: SEED })
    for (const [i, [command, ...args]] of samples.entries()) {
      const key = `${prefix}${storedKey(`r${i}`)}`
      await redisCommand(redis.port, [command as string, key, ...(args as string[])])
      const got = await store.get(`r${i}`)
      if (got !== undefined) expect(typeof got).toBe('object')
      if (i % 3 === 0) await store.destroy(`r${i}`)
      if (i % 3 === 1) await store.set(`r${i}`, sessionFor(clock.now(), HOUR, { i }))
    }
    await store.clear()
    expect(await store.length()).toBe(0)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })
})

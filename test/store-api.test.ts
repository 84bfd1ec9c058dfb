import { describe, expect, it } from 'vitest'
import { handleOf, hashSid } from '../src/at-rest/session-key.js'
import type { TieredStore } from '../src/store.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

/** Calls `fn` with a callback and resolves with every call the callback received, after a few turns. */
async function callbackCalls(fn: (cb: (...args: unknown[]) => void) => void): Promise<unknown[][]> {
  const calls: unknown[][] = []
  let first: () => void = () => undefined
  const called = new Promise<void>((resolve) => {
    first = resolve
  })
  fn((...args) => {
    calls.push(args)
    first()
  })
  await called
  // Give a second (wrong) call every chance to happen.
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
  return calls
}

describe('TieredStore API', () => {
  it('is an express-session Store', async () => {
    const { store } = createStore()
    const { Store } = (await import('express-session')).default
    expect(store).toBeInstanceOf(Store)
    expect(typeof store.regenerate).toBe('function')
    expect(typeof store.createSession).toBe('function')
  })

  it('calls every callback exactly once, with (null, value)', async () => {
    const { store, clock } = createStore()
    const sess = sessionFor(clock.now(), HOUR, { userId: 'u', n: 1 }) as never
    expect(await callbackCalls((cb) => store.set('s', sess, cb))).toEqual([[null, undefined]])
    expect(await callbackCalls((cb) => store.get('s', cb))).toEqual(
      [[null, sess]].map(([e, s]) => [e, JSON.parse(JSON.stringify(s))]),
    )
    expect(await callbackCalls((cb) => store.touch('s', sess, cb))).toEqual([[null, undefined]])
    // NB: with hashIds (the default) the store knows no ids: all() and ids() name sessions by handle.
    const handle = handleOf(hashSid('s'))
    expect(await callbackCalls((cb) => store.all(cb))).toEqual([
      [null, { [handle]: JSON.parse(JSON.stringify(sess)) }],
    ])
    expect(await callbackCalls((cb) => store.ids(cb))).toEqual([[null, [handle]]])
    expect(await callbackCalls((cb) => store.length(cb))).toEqual([[null, 1]])
    const listed = await callbackCalls((cb) => store.listByUser('u', cb))
    expect(listed).toHaveLength(1)
    expect(((listed[0]?.[1] ?? []) as Array<{ handle: string }>).map((s) => s.handle)).toEqual([handle])
    expect(await callbackCalls((cb) => store.flush(cb))).toEqual([[null, { sessions: 0, bytes: 0 }]])
    expect(await callbackCalls((cb) => store.destroyByUser('u', { except: [] }, cb))).toEqual([[null, 1]])
    expect(await callbackCalls((cb) => store.destroy('s', cb))).toEqual([[null, undefined]])
    expect(await callbackCalls((cb) => store.get('s', cb))).toEqual([[null, undefined]])
    expect(await callbackCalls((cb) => store.clear(cb))).toEqual([[null, undefined]])
    expect(await callbackCalls((cb) => store.sweep(cb))).toEqual([[null, 0]])
    expect(await callbackCalls((cb) => store.close(cb))).toEqual([[null, undefined]])
  })

  it('passes an error to the callback once, and does not call it again when the callback throws', async () => {
    const { store, clock } = createStore({ maxSessionBytes: 100 })
    const calls = await callbackCalls((cb) =>
      store.set('s', sessionFor(clock.now(), HOUR, { pad: 'x'.repeat(200) }) as never, cb),
    )
    expect(calls).toHaveLength(1)
    expect(calls[0]?.[0]).toMatchObject({ code: 'TS_SESSION_TOO_LARGE' })

    let n = 0
    const rejections: unknown[] = []
    const onRejection = (reason: unknown) => rejections.push(reason)
    process.on('unhandledRejection', onRejection)
    try {
      store.get('s', () => {
        n++
        throw new Error('callback bug')
      })
      for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
    } finally {
      process.off('unhandledRejection', onRejection)
    }
    expect(n).toBe(1)
    expect(rejections).toHaveLength(1)
  })

  it('refuses a session over maxSessionBytes with TS_SESSION_TOO_LARGE and writes nothing', async () => {
    expect.assertions(4)
    const { store, clock } = createStore({ maxSessionBytes: 1000 })
    await store.set('s', sessionFor(clock.now(), HOUR, { v: 'small' }))
    await expect(
      store.set('s', sessionFor(clock.now(), HOUR, { v: 'x'.repeat(1000) })),
    ).rejects.toMatchObject({
      code: 'TS_SESSION_TOO_LARGE',
    })
    expect(await store.get('s')).toMatchObject({ v: 'small' })
    expect(store.stats().errors).toEqual({ TS_SESSION_TOO_LARGE: 1 })
    expect(store.stats().writes).toBe(1)
  })

  it('refuses invalid session ids on write and misses them on read', async () => {
    expect.assertions(6)
    const { store, clock } = createStore()
    for (const sid of ['', 'x'.repeat(257), 'tab\there', 'ünïcode']) {
      await expect(store.set(sid, sessionFor(clock.now(), HOUR))).rejects.toMatchObject({
        code: 'TS_INVALID_SID',
      })
    }
    expect(await store.get('x'.repeat(10_000))).toBeUndefined()
    await store.destroy('new\nline')
    expect(await store.length()).toBe(0)
  })

  it('refuses sessions that cannot be serialized with TS_ENCODE_FAILED', async () => {
    expect.assertions(2)
    const { store, clock } = createStore()
    const cyclic: Record<string, unknown> = sessionFor(clock.now(), HOUR)
    cyclic.self = cyclic
    await expect(store.set('s', cyclic as never)).rejects.toMatchObject({ code: 'TS_ENCODE_FAILED' })
    await expect(store.set('s', { n: 1n } as never)).rejects.toMatchObject({ code: 'TS_ENCODE_FAILED' })
  })

  it('keeps "__proto__" and friends as ordinary ids in all() (hashIds: false)', async () => {
    const { store, clock } = createStore({ hashIds: false })
    for (const sid of ['__proto__', 'constructor', 'prototype'])
      await store.set(sid, sessionFor(clock.now(), HOUR, { sid }))
    const all = await store.all()
    expect(Object.keys(all).sort()).toEqual(['__proto__', 'constructor', 'prototype'])
    expect(Object.getPrototypeOf(all)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).sid).toBeUndefined()
  })

  it('returns a fresh copy on every read, so callers cannot mutate the stored session', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR, { cart: ['a'] }))
    const first = (await store.get('s')) as unknown as { cart: string[] }
    first.cart.push('mutated')
    expect(await store.get('s')).toMatchObject({ cart: ['a'] })
  })

  it('stats() and metrics() carry counts, never session ids or data', async () => {
    const { store, clock } = createStore()
    await store.set('secret-sid-123', sessionFor(clock.now(), HOUR, { password: 'hunter2' }))
    await store.get('secret-sid-123')
    await store.get('missing-sid-456')
    const stats = store.stats()
    expect(stats).toMatchObject({
      memory: { entries: 1, maxBytes: 64 * 1024 * 1024 },
      disk: { entries: 1 },
      redis: null,
      hits: { memory: 1, disk: 0, redis: 0 },
      misses: 1,
      writes: 1,
      outbox: 0,
      errors: {},
    })
    const text = store.metrics()
    expect(text).toContain('tiered_session_memory_entries 1')
    expect(text).toContain('tiered_session_hits_total{tier="memory"} 1')
    expect(text).toMatch(/# TYPE tiered_session_misses_total counter/)
    for (const secret of ['secret-sid', 'missing-sid', 'hunter2']) {
      expect(text).not.toContain(secret)
      expect(JSON.stringify(stats)).not.toContain(secret)
    }
  })

  it('close() commits queued writes so a new store sees them', async () => {
    const fixture = createStore()
    const pending = fixture.store.set('queued', sessionFor(fixture.clock.now(), HOUR, { q: 1 }))
    await fixture.store.close()
    await pending
    const store: TieredStore = fixture.reopen()
    expect(await store.get('queued')).toMatchObject({ q: 1 })
  })
})

// Writes are queued within the call that makes them, in both modes: a set followed at once by a destroy (or a
// merge) reaches the authority in that order, a flush right after a set commits it, and a clear empties memory
// at its commit, so no read in between serves a session the authority no longer has.

import { describe, expect, it } from 'vitest'
import type { TieredStore } from '../src/store.js'
import { useRedis } from './helpers/redis-server.js'
import { sharedSession, sharedStores } from './helpers/shared-stores.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('write ordering', () => {
  const redis = useRedis()

  const modes: Array<[string, () => Promise<{ store: TieredStore; now: () => number }>]> = [
    [
      'local',
      async () => {
        const { store, clock } = createStore()
        return { store, now: () => clock.now() }
      },
    ],
    [
      'shared',
      async () => {
        const { open, clock } = sharedStores(() => ({ url: redis.url }))
        return { store: await open('a'), now: () => clock.now() }
      },
    ],
  ]

  it.each(modes)('%s mode: set then destroy, not awaited in between, leaves no session', async (_, make) => {
    const { store, now } = await make()
    const writes = [store.set('s', sessionFor(now(), HOUR, { v: 1 })), store.destroy('s')]
    await Promise.all(writes)
    expect(await store.get('s')).toBeUndefined()
    expect(await store.ids()).toEqual([])
  })

  it('shared mode: a get right after a set, not awaited in between, on an instance that never read the session, reads the set', async () => {
    // NB: such a read is not tracked (CLIENT CACHING no, sent at once): it must not overtake the write.
    const { open, clock } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    const writing = store.set('s', sessionFor(clock.now(), HOUR, { v: 1 }))
    const reading = store.get('s')
    await writing
    expect(await reading).toMatchObject({ v: 1 })
  })

  it.each(modes)('%s mode: set then merge, not awaited in between, keeps both', async (_, make) => {
    const { store, now } = await make()
    const session = sharedSession(now(), HOUR, { a: 1 })
    const writes = [store.set('s', session), store.merge('s', { set: { b: '2' }, unset: [] })]
    expect(await Promise.all(writes)).toEqual([undefined, true])
    expect(await store.get('s')).toMatchObject({ a: 1, b: 2 })
  })

  it('local mode: a flush right after a set commits it', async () => {
    const { store, clock } = createStore()
    const written = store.set('s', sessionFor(clock.now(), HOUR))
    await store.flush()
    expect(store.stats().disk?.pendingWrites).toBe(0)
    await written
    expect(store.stats().disk?.entries).toBe(1)
  })

  it('local mode: memory is cleared at the commit of a clear, not after it', async () => {
    const { store, clock } = createStore()
    await store.set('s', sessionFor(clock.now(), HOUR))
    const clearing = store.clear()
    void store.flush() // commits the clear now, synchronously
    const read = store.get('s') // the read happens at the call
    await clearing
    expect(await read).toBeUndefined()
  })
})

describe('closing a shared-mode store', () => {
  const redis = useRedis()

  it('emits no disconnect: a clean shutdown is no outage', async () => {
    const { open } = sharedStores(() => ({ url: redis.url }))
    const store = await open('a')
    const heard: string[] = []
    store.on('disconnect', () => heard.push('disconnect'))
    store.on('connect', () => heard.push('connect'))
    await store.close()
    expect(heard).toEqual([])
    expect(store.stats().redis).toMatchObject({ connected: false })
  })
})

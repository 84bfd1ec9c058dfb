import { Cluster } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { useCluster } from './helpers/redis-server.js'
import { sharedSession, sharedStoresWithClients } from './helpers/shared-stores.js'

const HOUR = 3_600_000

describe('shared mode on a 3-master Redis Cluster', () => {
  const cluster = useCluster()

  it('get, set, destroy, all, length, listByUser and destroyByUser work across slots', async () => {
    const { open, clock } = sharedStoresWithClients(() => new Cluster(cluster.nodes))
    const a = await open('a')
    const b = await open('b')
    // 60 ids land on every master (16384 slots over 3 nodes).
    for (let i = 0; i < 60; i++) {
      await a.set(
        `sid-${i}`,
        sharedSession(clock.now(), HOUR, { i, userId: i % 3 === 0 ? 'carol' : `user-${i}` }),
      )
    }
    expect(await b.get('sid-7')).toMatchObject({ i: 7 })
    expect(await b.length()).toBe(60)
    expect(Object.keys(await b.all())).toHaveLength(60)
    expect((await b.ids()).sort()).toEqual(Array.from({ length: 60 }, (_, i) => `sid-${i}`).sort())

    const carol = (await b.listByUser('carol')).map((s) => s.sid).sort()
    expect(carol).toEqual(Array.from({ length: 20 }, (_, k) => `sid-${k * 3}`).sort())
    expect(await b.destroyByUser('carol', { except: 'sid-0' })).toBe(19)
    expect((await a.listByUser('carol')).map((s) => s.sid)).toEqual(['sid-0'])
    await a.destroy('sid-1')
    expect(await a.length()).toBe(40)
    expect(await b.get('sid-1')).toBeUndefined()
    expect(await b.get('sid-3')).toBeUndefined()

    await a.merge('sid-2', { set: { cart: '["tea"]' }, unset: [] })
    expect(await b.get('sid-2')).toMatchObject({ i: 2, cart: ['tea'] })
    await b.clear()
    expect(await a.length()).toBe(0)
  })
})

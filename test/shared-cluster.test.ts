import { Cluster } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { cli } from './helpers/cli.js'
import { handlesFor } from './helpers/handles.js'
import { commandCalls, useCluster } from './helpers/redis-server.js'
import { sharedSession, sharedStoresWithClients, uniquePrefix } from './helpers/shared-stores.js'

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
    expect((await b.ids()).sort()).toEqual(handlesFor(...Array.from({ length: 60 }, (_, i) => `sid-${i}`)))

    const carol = (await b.listByUser('carol')).map((s) => s.handle).sort()
    expect(carol).toEqual(handlesFor(...Array.from({ length: 20 }, (_, k) => `sid-${k * 3}`)))
    expect(await b.destroyByUser('carol', { except: 'sid-0' })).toBe(19)
    expect((await a.listByUser('carol')).map((s) => s.handle)).toEqual(handlesFor('sid-0'))
    await a.destroy('sid-1')
    expect(await a.length()).toBe(40)
    expect(await b.get('sid-1')).toBeUndefined()
    expect(await b.get('sid-3')).toBeUndefined()

    await a.merge('sid-2', { set: { cart: '["tea"]' }, unset: [] })
    expect(await b.get('sid-2')).toMatchObject({ i: 2, cart: ['tea'] })
    await b.clear()
    expect(await a.length()).toBe(0)
  })

  it('a write that adds a user-index entry keeps two script calls on Cluster (the index is on another slot)', async () => {
    const { open, clock } = sharedStoresWithClients(() => new Cluster(cluster.nodes))
    const a = await open('a')
    const scriptCalls = async () => {
      let total = 0
      for (const node of cluster.nodes) {
        total += (await commandCalls(node.port, 'evalsha')) + (await commandCalls(node.port, 'eval'))
      }
      return total
    }
    // NB: the first script call on a master loads the script (a NOSCRIPT miss, then EVAL): these warm up the
    // write script on the master of 's' and the index script on the master of dana's index.
    await a.set('s', sharedSession(clock.now(), HOUR, { userId: 'erin' }))
    await a.set('other', sharedSession(clock.now(), HOUR, { userId: 'dana' }))
    const before = await scriptCalls()
    await a.set('s', sharedSession(clock.now(), HOUR, { userId: 'dana' }))
    expect((await scriptCalls()) - before).toBe(2)
    expect((await a.listByUser('erin')).map((s) => s.handle)).toEqual([])
    expect((await a.listByUser('dana')).map((s) => s.handle).sort()).toEqual(handlesFor('other', 's'))
  })

  it('migrate from connect-redis on Cluster: a legacy session is served, moved by its first write (ours created, then the legacy key dropped); the tool converts the rest on every master; dualWrite is refused', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const client = new Cluster(cluster.nodes)
    onTestFinished(async () => {
      await client.quit()
    })
    const expires = new Date(Date.now() + HOUR).toISOString()
    const legacy = (i: number) =>
      JSON.stringify({ cookie: { originalMaxAge: HOUR, expires, path: '/' }, i, userId: `u${i}` })
    for (let i = 0; i < 60; i++) await client.set(`${legacyPrefix}sid-${i}`, legacy(i), 'EX', 3600)
    const { open, prefix } = sharedStoresWithClients(() => new Cluster(cluster.nodes))
    const migrate = { from: 'connect-redis' as const, prefix: legacyPrefix }
    const a = await open('a', { migrate })
    expect(await a.get('sid-4')).toMatchObject({ i: 4 })
    expect(await a.merge('sid-4', { set: { cart: '["tea"]' }, unset: [] })).toBe(true)
    expect(await client.exists(`${legacyPrefix}sid-4`)).toBe(0)
    expect(await client.type(`${prefix}sid-4`)).toBe('hash')
    expect(await a.get('sid-4')).toMatchObject({ i: 4, cart: ['tea'] })

    const port = cluster.nodes[1]?.port as number
    const run = await cli([
      'migrate',
      '--from',
      'connect-redis',
      '--redis',
      `redis://127.0.0.1:${port}`,
      '--legacy-prefix',
      legacyPrefix,
      '--prefix',
      prefix,
      '--json',
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toMatchObject({ scanned: 59, migrated: 59, notASession: 0 })
    const b = await open('b')
    expect(await b.length()).toBe(60)
    expect(await b.listByUser('u17')).toHaveLength(1)
    expect(await client.exists(`${legacyPrefix}sid-17`)).toBe(0)

    await expect(open('c', { migrate: { ...migrate, dualWrite: true } })).rejects.toMatchObject({
      code: 'TS_INVALID_OPTION',
      message: expect.stringContaining('migrate.dualWrite'),
    })
  })
})

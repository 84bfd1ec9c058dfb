// The user index's expiry, as the scripts set it (src/redis/scripts.ts, INDEX_ADD): at least the session's, on
// Redis's own clock, never shortened. On Redis 7 the index script never reads the index key, so a connection
// with client tracking running it alone (Cluster; a session that changes user) does not track that key.

import { once } from 'node:events'
import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import { INDEX_ADD_SCRIPT } from '../src/redis/scripts.js'
import { useRedis } from './helpers/redis-server.js'

const HOUR = 3_600_000

describe('the user index expiry set by the scripts', () => {
  const redis = useRedis()

  // NB: RESP2: tracking invalidations reach a subscriber as pub/sub messages (as src/redis/invalidation-channel.ts).
  const client = () => {
    const c = new Redis(redis.url, { protocol: 2 })
    onTestFinished(() => c.disconnect())
    return c
  }

  it('gives a key without expiry the asked one, moves a sooner one out, and never shortens one', async () => {
    const c = client()
    const add = (key: string, at: number) => c.eval(INDEX_ADD_SCRIPT, 1, key, 'sid', String(at))
    const at = Date.now() + HOUR
    await add('ix:new', at)
    expect(Number(await c.pexpiretime('ix:new'))).toBe(at)
    await add('ix:new', at + 5_000)
    expect(Number(await c.pexpiretime('ix:new'))).toBe(at + 5_000)
    await add('ix:new', at - 5_000)
    expect(Number(await c.pexpiretime('ix:new'))).toBe(at + 5_000)
    // A set that exists without an expiry (written by hand, or by an older version) gets one.
    await c.sadd('ix:persistent', 'other')
    await add('ix:persistent', at)
    expect(Number(await c.pexpiretime('ix:persistent'))).toBe(at)
    expect((await c.smembers('ix:persistent')).sort()).toEqual(['other', 'sid'])
  })

  it('INDEX_ADD_SCRIPT alone does not make a tracking connection track the index key', async () => {
    const writer = client()
    const other = client()
    const subscriber = client()
    const id = await subscriber.client('ID')
    const invalidated: string[] = []
    subscriber.on('messageBuffer', (_channel: Buffer, keys: Buffer[] | Buffer | null) => {
      if (Array.isArray(keys)) invalidated.push(...keys.map(String))
    })
    await subscriber.subscribe('__redis__:invalidate')
    await writer.client('TRACKING', 'ON', 'REDIRECT', String(id))
    const at = Date.now() + HOUR
    await writer.eval(INDEX_ADD_SCRIPT, 1, 'trk:{u1}', 's1', String(at))
    // A key the writer reads, as the control: its change is sent; the index key's is not.
    await writer.get('trk:control')
    await other.sadd('trk:{u1}', 's2')
    const controlInvalidated = once(subscriber, 'messageBuffer')
    await other.set('trk:control', '1')
    await controlInvalidated
    expect(invalidated).toEqual(['trk:control'])
    expect(Number(await other.pexpiretime('trk:{u1}'))).toBe(at)
  })
})

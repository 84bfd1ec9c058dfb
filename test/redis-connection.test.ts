// The Redis connection's state is one status union, changed in one place that emits one `status` event per
// change: connecting → ready, ready → reconnecting on a lost connection, → ready again, → hung when a command
// times out on a connection that looks ready, and → closed, after which nothing changes any more.

import { once } from 'node:events'
import { Redis } from 'ioredis'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { ConnectionStatus, StatusChange } from '../src/redis/connection.js'
import { RedisConnection } from '../src/redis/connection.js'
import { useRedis } from './helpers/redis-server.js'
import { engineOf, sharedStores } from './helpers/shared-stores.js'
import { startProxy } from './helpers/tcp-proxy.js'

function track(connection: RedisConnection): Array<[ConnectionStatus, ConnectionStatus]> {
  const seen: Array<[ConnectionStatus, ConnectionStatus]> = []
  connection.on('status', ({ status, previous }: StatusChange) => seen.push([previous, status]))
  return seen
}

async function until(connection: RedisConnection, status: ConnectionStatus): Promise<void> {
  while (connection.status !== status) await once(connection, 'status')
}

/** A connection to `port` through a test proxy, closed when the test ends. */
async function throughProxy(port: number, commandTimeoutMs: number) {
  const proxy = await startProxy(port)
  const connection = new RedisConnection({ url: proxy.url, commandTimeoutMs, connectTimeoutMs: 2000 })
  onTestFinished(() => connection.close())
  return { proxy, connection }
}

describe('RedisConnection status', () => {
  const redis = useRedis()

  it('moves connecting → ready → reconnecting → ready → closed, one event per change', async () => {
    const { proxy, connection } = await throughProxy(redis.port, 2000)
    const seen = track(connection)
    expect(connection.status).toBe('connecting')
    expect(connection.up).toBe(false)
    await until(connection, 'ready')
    expect(connection.up).toBe(true)
    proxy.dropAll()
    await until(connection, 'reconnecting')
    expect(connection.up).toBe(false)
    await until(connection, 'ready')
    await connection.close()
    expect(connection.status).toBe('closed')
    await expect(connection.run('a ping', (c) => c.ping())).rejects.toMatchObject({ code: 'TS_STORE_CLOSED' })
    expect(seen).toEqual([
      ['connecting', 'ready'],
      ['ready', 'reconnecting'],
      ['reconnecting', 'ready'],
      ['ready', 'closed'],
    ])
  })

  it('a command that times out on a ready connection makes it hung until a PING is answered', async () => {
    const { proxy, connection } = await throughProxy(redis.port, 200)
    await until(connection, 'ready')
    const seen = track(connection)
    const held = proxy.holdNextReply()
    await expect(connection.run('a ping', (c) => c.ping())).rejects.toMatchObject({
      code: 'TS_REDIS_UNAVAILABLE',
    })
    expect(connection.status).toBe('hung')
    await expect(connection.run('a ping', (c) => c.ping())).rejects.toMatchObject({
      code: 'TS_REDIS_UNAVAILABLE',
    })
    held.release()
    await until(connection, 'ready')
    expect(seen).toEqual([
      ['ready', 'hung'],
      ['hung', 'ready'],
    ])
  })

  it('a command Redis refuses is TS_REDIS_REFUSED and leaves the connection ready', async () => {
    const connection = new RedisConnection({ url: redis.url, commandTimeoutMs: 2000, connectTimeoutMs: 2000 })
    onTestFinished(() => connection.close())
    await until(connection, 'ready')
    const key = `refused-${process.pid}-${Date.now()}`
    await connection.run('a set', (c) => c.sadd(key, 'x'))
    onTestFinished(async () => {
      await connection.run('a cleanup', (c) => c.del(key))
    })
    await expect(connection.run('a read', (c) => c.hmget(key, 'p'))).rejects.toMatchObject({
      code: 'TS_REDIS_REFUSED',
      message: expect.stringContaining('WRONGTYPE'),
    })
    expect(connection.status).toBe('ready')
  })

  it('an app-made client that gives up reconnecting ends the connection: the store reports it once, typed', async () => {
    const proxy = await startProxy(redis.port)
    const client = new Redis(proxy.url, { retryStrategy: () => null })
    onTestFinished(() => client.disconnect())
    const { open } = sharedStores(() => ({ client: client as never }))
    const store = await open('a')
    const errors: Array<{ code?: string; message: string }> = []
    store.on('error', (e) => errors.push(e))
    const ended = once(client, 'end')
    proxy.dropAll()
    await ended
    expect(errors).toEqual([
      expect.objectContaining({
        code: 'TS_REDIS_UNAVAILABLE',
        message: expect.stringContaining('will not reconnect'),
      }),
    ])
    expect(engineOf(store).connected).toBe(false)
  })
})

describe('RedisConnection sending', () => {
  const redis = useRedis()

  it('a command goes out while an earlier one still waits for its reply (no batch waits for the one before)', async () => {
    const { proxy, connection } = await throughProxy(redis.port, 5000)
    const direct = new Redis(redis.url)
    onTestFinished(() => direct.disconnect())
    await until(connection, 'ready')
    const [first, second] = [
      `sending-1-${process.pid}-${Date.now()}`,
      `sending-2-${process.pid}-${Date.now()}`,
    ]
    onTestFinished(async () => {
      await direct.del(first, second)
    })
    const hold = proxy.holdNextReply()
    const firstDone = connection.run('a first add', (c) => c.sadd(first, 'x'))
    await hold.held
    // NB: a later pass of the event loop, with the first command's reply still held by the proxy.
    await new Promise((resolve) => setImmediate(resolve))
    const secondDone = connection.run('a second add', (c) => c.sadd(second, 'y'))
    // Redis runs the second command while the first one's reply is held: it was sent without waiting for it.
    // (ioredis's auto-pipelining sends it only once the first batch is answered.)
    let ran = 0
    for (let i = 0; i < 2000 && ran === 0; i++) ran = await direct.exists(second)
    expect(ran).toBe(1)
    hold.release()
    expect(await firstDone).toBe(1)
    expect(await secondDone).toBe(1)
  })
})

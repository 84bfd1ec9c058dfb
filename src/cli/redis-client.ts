// The tool's connection to Redis from `--redis URL`: a single node, or a Cluster when the node says it is one
// (then every master is scanned). Unreachable is one clear line, not a stack.

import { once } from 'node:events'
import { Cluster, Redis } from 'ioredis'
import type { RedisClientLike } from '../redis/connection.js'
import { RedisConnection } from '../redis/connection.js'
import { CliError } from './cli-error.js'

/** How long the tool waits for Redis to answer (ms). */
const CONNECT_TIMEOUT_MS = 3000

/** The URL without its password, for messages. */
function shown(url: string): string {
  return url.replace(/\/\/([^:@/]*):[^@/]*@/, '//$1:***@')
}

/** A connection to the Redis of `url`, ready; a CliError when it cannot be reached. */
export async function connectRedis(url: string): Promise<RedisConnection> {
  if (!/^rediss?:\/\//.test(url))
    throw new CliError(`--redis must be a redis:// or rediss:// URL, not '${shown(url)}'`, 2)
  const probe = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: CONNECT_TIMEOUT_MS,
    // NB: a probe that could not connect has nothing to wait for: ioredis's default keeps the tool alive 2 s.
    disconnectTimeout: 0,
  })
  // NB: the connection's own error (ECONNREFUSED, ENOTFOUND) says more than the rejected connect().
  let lastError: string | undefined
  probe.on('error', (error: Error) => {
    lastError = error.message
  })
  let clustered = false
  try {
    await probe.connect()
    clustered = /cluster_enabled:1/.test(await probe.info('cluster'))
  } catch (error) {
    probe.disconnect()
    const reason = (lastError ?? String((error as Error)?.message ?? error)).split('\n')[0]
    throw new CliError(`cannot reach Redis at ${shown(url)}: ${reason}`)
  }
  let client: RedisClientLike = probe as unknown as RedisClientLike
  if (clustered) {
    probe.disconnect()
    const { protocol, hostname, port, username, password } = new URL(url)
    const cluster = new Cluster([{ host: hostname, port: Number(port || 6379) }], {
      redisOptions: {
        username: username || undefined,
        password: password ? decodeURIComponent(password) : undefined,
        ...(protocol === 'rediss:' ? { tls: {} } : {}),
      },
    })
    cluster.on('error', () => undefined)
    const timer = setTimeout(() => cluster.emit('error', new Error('timeout')), CONNECT_TIMEOUT_MS)
    try {
      await once(cluster, 'ready')
    } catch {
      cluster.disconnect()
      throw new CliError(`cannot reach the Redis Cluster at ${shown(url)}`)
    } finally {
      clearTimeout(timer)
    }
    client = cluster as unknown as RedisClientLike
  }
  const connection = new RedisConnection({
    client,
    commandTimeoutMs: CONNECT_TIMEOUT_MS,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
  })
  await connection.whenReady(CONNECT_TIMEOUT_MS)
  return connection
}

/** Closes what connectRedis opened. */
export async function closeRedis(connection: RedisConnection): Promise<void> {
  await connection.close()
  connection.client.disconnect()
}

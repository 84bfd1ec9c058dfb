// The stores under test, opened the same way by every benchmark (store level, HTTP servers, memory).
//
//   memory       express-session's MemoryStore (keeps nothing across a restart, unbounded)
//   memorystore  memorystore 1.6 (lru-cache 4 bounded by a session *count*, `max`)
//   file         session-file-store 1.5 (one JSON file per session, write-file-atomic)
//   local        TieredStore, local mode (memory over SQLite)
//   shared       TieredStore, shared mode (Redis authority + near cache, SQLite spill cache)
//   cr9          connect-redis 9 over node-redis 5
//   cr8          connect-redis 8 over ioredis 5 (the client its own tests use)

import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { RedisStore as RedisStore9 } from 'connect-redis'
import { RedisStore as RedisStore8 } from 'connect-redis8'
import session from 'express-session'
import { Redis as Redis5 } from 'ioredis5'
import createMemoryStore from 'memorystore'
import { createClient } from 'redis'
import createFileStore from 'session-file-store'
import { TieredStore } from 'tiered-session'
import { waitForEvent, withTimeout } from './procs.js'
import { MiB } from './sessions.js'
import { sqliteFloorStore } from './sqlite-floor-store.js'

export const STORE_LABEL = {
  memory: 'express-session MemoryStore',
  memorystore: 'memorystore',
  'memory+sqlite': 'MemoryStore + a bare SQLite write (floor)',
  file: 'session-file-store',
  local: 'TieredStore local',
  shared: 'TieredStore shared',
  cr9: 'connect-redis 9 + node-redis 5',
  cr8: 'connect-redis 8 + ioredis 5',
}

export const NEEDS_REDIS = new Set(['shared', 'shared+plain', 'shared+enc', 'cr9', 'cr8'])

/** The encryption key of the `+enc` variants (a fixed one: a benchmark protects nothing). */
const BENCH_KEY = Buffer.alloc(32, 7)

const MemoryStoreLru = createMemoryStore(session)
const FileStore = createFileStore(session)

/**
 * Opens one store. Options: tmpRoot (a directory we own), redisUrl, prefix (Redis key prefix, distinct per
 * contender so their invalidation channels never cross), maxBytes (ours: memory budget), memorystoreMax
 * (memorystore: sessions), ttlSeconds.
 * Resolves to { kind, store, stats(), close() }; stats() is null for peers.
 */
export async function openStore(kind, options) {
  const { tmpRoot, redisUrl, prefix = `bench:${kind}:`, maxBytes = 64 * MiB } = options
  const ttl = options.ttlSeconds ?? 86_400
  const errors = options.errors ?? []
  const onError = (error) => errors.push(`${kind}: ${error?.code ?? ''} ${error?.message ?? error}`)
  switch (kind) {
    case 'memory': {
      const store = new session.MemoryStore()
      return { kind, store, stats: () => null, close: async () => {} }
    }
    case 'memory+sqlite': {
      const { store, close } = sqliteFloorStore(mkdtempSync(join(tmpRoot, 'floor-')))
      return { kind, store, stats: () => null, close: async () => close() }
    }
    case 'memorystore': {
      if (!Number.isFinite(options.memorystoreMax)) throw new Error('memorystore needs memorystoreMax')
      // checkPeriod as its README suggests (one day: it never runs during a benchmark).
      const store = new MemoryStoreLru({ max: options.memorystoreMax, checkPeriod: 86_400_000 })
      return {
        kind,
        store,
        stats: () => null,
        close: async () => store.stopInterval(),
      }
    }
    case 'file': {
      const path = mkdtempSync(join(tmpRoot, 'file-store-'))
      const store = new FileStore({ path, ttl, reapInterval: -1, logFn: () => {} })
      return { kind, store, stats: () => null, close: async () => {}, path }
    }
    case 'local':
    case 'shared':
    case 'local+plain':
    case 'shared+plain':
    case 'local+enc':
    case 'shared+enc': {
      const dir = mkdtempSync(join(tmpRoot, `${kind.replace('+', '-')}-`))
      const shared = kind.startsWith('shared')
      // NB: the at-rest variants (bench/at-rest cost): ids kept plain, or payloads encrypted.
      const atRest = kind.endsWith('+plain')
        ? { hashIds: false }
        : kind.endsWith('+enc')
          ? { encryption: { keys: [BENCH_KEY] } }
          : {}
      const store = new TieredStore({
        memory: { maxBytes, ...(options.watermarks ?? {}) },
        disk: { path: join(dir, 'sessions.db') },
        ttl,
        ...(shared ? { prefix, redis: { url: redisUrl } } : {}),
        ...atRest,
      })
      store.on('error', onError)
      if (shared) {
        // Attached synchronously after construction: the client connects asynchronously, so neither has fired.
        const connected = waitForEvent(store, 'connect')
        const live = waitForEvent(store, 'coherence', (c) => c?.live === true)
        await withTimeout(Promise.all([connected, live]), 10_000, 'TieredStore shared: connect + coherence')
      }
      return { kind, store, stats: () => store.stats(), close: () => store.close(), dir }
    }
    case 'cr9': {
      const client = createClient({ url: redisUrl })
      client.on('error', onError)
      await client.connect()
      const store = new RedisStore9({ client, prefix, ttl })
      return { kind, store, stats: () => null, close: () => client.close() }
    }
    case 'cr8': {
      const client = new Redis5(redisUrl)
      client.on('error', onError)
      if (client.status !== 'ready') await withTimeout(waitForEvent(client, 'ready'), 10_000, 'ioredis ready')
      const store = new RedisStore8({ client, prefix, ttl })
      return { kind, store, stats: () => null, close: () => client.quit() }
    }
    default:
      throw new Error(`unknown store ${kind}`)
  }
}

/** Calls a callback-style store method the way express-session does, as a Promise. */
export function call(store, method, ...args) {
  return new Promise((resolve, reject) => {
    store[method](...args, (err, value) => (err ? reject(err) : resolve(value)))
  })
}

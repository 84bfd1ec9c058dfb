import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { TieredStoreOptions } from '../src/options.js'
import { resolveOptions } from '../src/options.js'
import { TieredStore } from '../src/store.js'

describe('options', () => {
  it('resolves to local mode with the documented defaults', () => {
    const o = resolveOptions()
    expect(o.memory).toEqual({ maxBytes: 64 * 1024 * 1024, highWatermark: 0.8, lowWatermark: 0.6 })
    expect(o.disk).toEqual({ path: './.sessions/sessions.db', synchronous: 'normal', maxBatchSize: 1000 })
    expect(o.redis).toBeNull()
    expect(o.prefix).toBe('sess:')
    expect(o.ttlSeconds({})).toBe(86_400)
    expect(o.maxSessionBytes).toBe(1024 * 1024)
    expect(o.spillIntervalMs).toBe(1000)
    expect(o.userId({ userId: 'u', passport: { user: 'p' } })).toBe('u')
    expect(o.userId({ passport: { user: 'p' } })).toBe('p')
    expect(o.userId({})).toBeUndefined()
  })

  it.each<[string, unknown, string]>([
    ['memory.maxBytes', { memory: { maxBytes: -1 } }, 'memory.maxBytes'],
    ['memory.maxBytes as text', { memory: { maxBytes: '64mb' } }, 'memory.maxBytes'],
    ['memory.highWatermark', { memory: { highWatermark: 1.5 } }, 'memory.highWatermark'],
    ['watermarks reversed', { memory: { highWatermark: 0.5, lowWatermark: 0.7 } }, 'memory.lowWatermark'],
    ['an unknown option', { maxbytes: 1 }, 'maxbytes'],
    ['an unknown memory option', { memory: { max: 1 } }, 'memory.max'],
    ['disk: false without redis', { disk: false }, 'disk'],
    ['disk.path', { disk: { path: '' } }, 'disk.path'],
    ['disk.synchronous', { disk: { synchronous: 'off' } }, 'disk.synchronous'],
    ['redis without url or client', { redis: {} }, 'redis'],
    ['redis with both url and client', { redis: { url: 'redis://x', client: {} } }, 'redis'],
    ['redis.url of another scheme', { redis: { url: 'http://127.0.0.1:6379' } }, 'redis.url'],
    ['redis.client that is not ioredis', { redis: { client: { get() {} } } }, 'redis.client'],
    ['redis.commandTimeout', { redis: { url: 'redis://x', commandTimeout: 0 } }, 'redis.commandTimeout'],
    ['redis.connectTimeout', { redis: { url: 'redis://x', connectTimeout: -1 } }, 'redis.connectTimeout'],
    [
      'redis.connectTimeout as text',
      { redis: { url: 'redis://x', connectTimeout: '2s' } },
      'redis.connectTimeout',
    ],
    ['redis.waitForReplicas', { redis: { url: 'redis://x', waitForReplicas: 1.5 } }, 'redis.waitForReplicas'],
    ['an unknown redis option', { redis: { url: 'redis://x', host: 'x' } }, 'redis.host'],
    ['ttl zero', { ttl: 0 }, 'ttl'],
    ['ttl as text', { ttl: '1d' }, 'ttl'],
    ['maxSessionBytes', { maxSessionBytes: 1.5 }, 'maxSessionBytes'],
    ['spillIntervalMs', { spillIntervalMs: 0 }, 'spillIntervalMs'],
    ['userId', { userId: 'id' }, 'userId'],
    ['clock', { clock: Date }, 'clock'],
  ])('rejects %s at construction, naming it', (_, options, name) => {
    expect.assertions(2)
    try {
      new TieredStore(options as TieredStoreOptions)
    } catch (error) {
      expect(error).toMatchObject({ name: 'TieredSessionError', code: 'TS_INVALID_OPTION' })
      expect((error as Error).message).toContain(`"${name}"`)
    }
  })

  it('keeps an empty prefix rather than replacing it with the default', () => {
    // `??`, not `||`: a prefix of '' is a real value.
    expect(resolveOptions({ prefix: '' }).prefix).toBe('')
  })

  it('fails at construction with TS_DISK_OPEN_FAILED naming a path that cannot be created', () => {
    expect.assertions(3)
    const path = join('/proc/version', 'nested', 'sessions.db')
    try {
      new TieredStore({ disk: { path } })
    } catch (error) {
      expect(error).toMatchObject({ code: 'TS_DISK_OPEN_FAILED' })
      expect((error as Error).message).toContain(path)
      expect((error as Error).cause).toBeDefined()
    }
  })
})

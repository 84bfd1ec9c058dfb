// bin `tiered-session`, run as a real child process: `migrate --from connect-redis` (bulk, while an old app on
// connect-redis and a new app on ours serve traffic) and `import --from session-file-store`, against a real
// redis-server, real SQLite files and a directory written by the real session-file-store.

import { createHmac, randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { RedisStore as RedisStore9 } from 'connect-redis'
import express from 'express'
import session from 'express-session'
import { Redis } from 'ioredis'
import { createClient } from 'redis'
// @ts-expect-error: session-file-store ships no types
import createFileStore from 'session-file-store'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { expressSessionApp } from './helpers/apps.js'
import { cli } from './helpers/cli.js'
import { freePort, redisCommand, useRedis } from './helpers/redis-server.js'
import { uniquePrefix } from './helpers/shared-stores.js'
import { makeTempDir } from './helpers/temp-dir.js'
import { tieredApp } from './helpers/tiered-apps.js'

const secret = 'cli secret'
const HOUR_MS = 3_600_000

/** express-session's signed cookie for `sid`. */
function cookieFor(sid: string): string {
  const mac = createHmac('sha256', secret).update(sid).digest('base64').replace(/=+$/, '')
  return `connect.sid=${encodeURIComponent(`s:${sid}.${mac}`)}`
}

/** A session as connect-redis stores it, expiring `ms` from now. */
function legacyValue(ms: number, data: Record<string, unknown>): string {
  return JSON.stringify({
    cookie: { originalMaxAge: HOUR_MS, expires: new Date(Date.now() + ms).toISOString(), path: '/' },
    ...data,
  })
}

describe('tiered-session migrate --from connect-redis', () => {
  const redis = useRedis()

  /** `migrate` from connect-redis on the test's Redis, from `legacyPrefix` to `prefix`. */
  const migrateFlags = (legacyPrefix: string, prefix?: string) => [
    'migrate',
    '--from',
    'connect-redis',
    '--redis',
    redis.url,
    '--legacy-prefix',
    legacyPrefix,
    ...(prefix === undefined ? [] : ['--prefix', prefix]),
  ]

  async function plant(prefix: string, count: number): Promise<string[]> {
    const client = new Redis(redis.url)
    onTestFinished(() => client.disconnect())
    const sids = Array.from({ length: count }, () => randomBytes(18).toString('base64url'))
    const pipeline = client.pipeline()
    for (const [i, sid] of sids.entries())
      pipeline.set(
        `${prefix}${sid}`,
        legacyValue(HOUR_MS, { user: `u${i}`, userId: `u${i}`, cart: [`c${i}`] }),
        'EX',
        3600,
      )
    await pipeline.exec()
    return sids
  }

  it('converts 10,000 legacy sessions while an old app (connect-redis) and a new one (ours, dualWrite) serve traffic; every session is readable after, the counts add up, and a second run migrates 0', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const prefix = uniquePrefix('ts')
    const sids = await plant(legacyPrefix, 10_000)
    // Not sessions, and one that expired: counted, left in place.
    await redisCommand(redis.port, ['SET', `${legacyPrefix}garbage`, 'not json', 'EX', '600'])
    await redisCommand(redis.port, ['SET', `${legacyPrefix}no-cookie`, '{"a":1}', 'EX', '600'])
    // NB: connect-redis's touch moves the key's TTL, never the JSON's cookie: only a key without a TTL
    // expires by its cookie.
    await redisCommand(redis.port, ['SET', `${legacyPrefix}expired`, legacyValue(-1000, {})])

    const client = createClient({ url: redis.url })
    await client.connect()
    onTestFinished(async () => {
      await client.close()
    })
    const oldApp = expressSessionApp(new RedisStore9({ client, prefix: legacyPrefix }) as never, {
      secret,
      cookie: { maxAge: HOUR_MS },
    })
    const dir = makeTempDir()
    const store = new TieredStore({
      prefix,
      disk: { path: join(dir.path, 'new.db') },
      redis: { url: redis.url },
      migrate: { from: 'connect-redis', prefix: legacyPrefix, dualWrite: true },
    })
    onTestFinished(async () => {
      await store.close()
      dir.remove()
    })
    const newApp = tieredApp(express, { secret, store, cookie: { maxAge: HOUR_MS } })

    // Traffic on both apps for the whole run: 40 users add to their carts, alternating between the apps.
    const busy = sids.slice(0, 40)
    const added = new Map<string, string[]>(busy.map((sid, i) => [sid, [`c${i}`]]))
    let running = true
    let requests = 0
    const traffic = (async () => {
      while (running) {
        await Promise.all(
          busy.map(async (sid, i) => {
            const item = `r${requests}-${i}`
            const app = (requests + i) % 2 === 0 ? oldApp : newApp
            await request(app)
              .post('/cart')
              .type('form')
              .send({ item })
              .set('Cookie', cookieFor(sid))
              .expect(302)
            added.get(sid)?.push(item)
          }),
        )
        requests++
      }
    })()
    const first = await cli([...migrateFlags(legacyPrefix, prefix), '--dual-write', '--json'])
    running = false
    await traffic
    // The last change of each busy session through our app: none is left that only an old instance made
    // (a second run would adopt such a change, as it should).
    for (const sid of busy) {
      await request(newApp)
        .post('/cart')
        .type('form')
        .send({ item: 'last' })
        .set('Cookie', cookieFor(sid))
        .expect(302)
      added.get(sid)?.push('last')
    }
    expect(first.code, first.stderr).toBe(0)
    const counts = JSON.parse(first.stdout)
    expect(requests).toBeGreaterThan(0)
    expect(counts).toMatchObject({ scanned: 10_003, expired: 1, notASession: 2 })
    expect(counts.migrated + counts.alreadyOurs).toBe(10_000)
    expect(counts.migrated).toBeGreaterThan(9_000)
    expect(first.stderr).toMatch(/migrate: keys done: 10,003/)

    // Every session is ours now (old instances still read their mirrored key), with its data.
    for (let i = 0; i < sids.length; i += 500) {
      const batch = sids.slice(i, i + 500)
      const types = await Promise.all(
        batch.map((sid) => redisCommand(redis.port, ['TYPE', `${prefix}${sid}`])),
      )
      expect(new Set(types)).toEqual(new Set(['hash']))
      const read = await Promise.all(batch.map((sid) => store.get(sid)))
      for (const [j, sess] of read.entries()) expect(sess).toMatchObject({ user: `u${i + j}` })
    }
    for (const sid of busy) {
      for (const app of [oldApp, newApp]) {
        const who = await request(app).get('/whoami').set('Cookie', cookieFor(sid)).expect(200)
        expect(who.body.cart).toEqual(added.get(sid))
      }
    }
    expect(await redisCommand(redis.port, ['GET', `${legacyPrefix}garbage`])).toBe('not json')

    const second = await cli([...migrateFlags(legacyPrefix, prefix), '--dual-write', '--json'])
    expect(second.code, second.stderr).toBe(0)
    expect(JSON.parse(second.stdout)).toMatchObject({ migrated: 0, alreadyOurs: 10_000, notASession: 2 })
  }, 120_000)

  it('after the deploy (a new prefix, no dualWrite) moves each session and deletes its legacy key; on the same prefix it converts in place; a table for a person', async () => {
    const legacyPrefix = uniquePrefix('cr')
    const prefix = uniquePrefix('ts')
    const moved = await plant(legacyPrefix, 30)
    const run = await cli(migrateFlags(legacyPrefix, prefix))
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^migrated\s+30$/m)
    for (const sid of moved) {
      expect(await redisCommand(redis.port, ['EXISTS', `${legacyPrefix}${sid}`])).toBe(0)
      expect(await redisCommand(redis.port, ['TYPE', `${prefix}${sid}`])).toBe('hash')
    }
    const again = await cli([...migrateFlags(legacyPrefix, prefix), '--json'])
    expect(JSON.parse(again.stdout)).toMatchObject({ scanned: 0, migrated: 0 })

    const same = uniquePrefix('cr')
    const inPlace = await plant(same, 20)
    const run2 = await cli([...migrateFlags(same), '--json'])
    expect(JSON.parse(run2.stdout)).toMatchObject({ scanned: 20, migrated: 20 })
    const dir = makeTempDir()
    const store = new TieredStore({
      prefix: same,
      disk: { path: join(dir.path, 's.db') },
      redis: { url: redis.url },
    })
    onTestFinished(async () => {
      await store.close()
      dir.remove()
    })
    // No `migrate` option needed any more: every session is in our format.
    expect(await store.get(inPlace[7] as string)).toMatchObject({ user: 'u7', cart: ['c7'] })
    expect(await store.listByUser('u7')).toHaveLength(1)
  })

  it('bad input exits non-zero with one clear line: unreachable Redis, unknown flag, wrong --from, missing flag', async () => {
    const port = await freePort()
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['migrate', '--from', 'connect-redis', '--redis', `redis://127.0.0.1:${port}`],
        1,
        /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
      ],
      [
        ['migrate', '--from', 'connect-redis', '--redis', redis.url, '--bogus'],
        2,
        /Unknown option '--bogus'/,
      ],
      [['migrate', '--from', 'connect-mongo', '--redis', redis.url], 2, /--from must be connect-redis/],
      [['migrate', '--from', 'connect-redis'], 2, /--redis is required/],
      [['frobnicate'], 2, /unknown command 'frobnicate'/],
    ]
    for (const [args, code, line] of cases) {
      const run = await cli(args)
      expect(run.code, args.join(' ')).toBe(code)
      expect(run.stderr.trim().split('\n')).toHaveLength(1)
      expect(run.stderr).toMatch(line)
      expect(run.stdout).toBe('')
    }
    const help = await cli(['migrate', '--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--legacy-prefix P/)
  })
})

describe('tiered-session import --from session-file-store', () => {
  const redis = useRedis()

  /** A directory written by the real session-file-store: sessions through an app, one encrypted, some junk. */
  async function fileStoreDir() {
    const dir = makeTempDir()
    const path = join(dir.path, 'sessions')
    mkdirSync(path)
    const FileStore = createFileStore(session)
    const plain = new FileStore({ path, logFn: () => undefined, reapInterval: -1 })
    const sids: string[] = []
    for (const user of ['alice', 'bob', 'carol']) {
      const app = expressSessionApp(plain as never, { secret, cookie: { maxAge: HOUR_MS } })
      const res = await request(app).post('/login').type('form').send({ user }).expect(200)
      const sid = (
        await request(app)
          .get('/whoami')
          .set('Cookie', String(res.headers['set-cookie']?.[0]).split(';')[0] as string)
      ).body.id
      sids.push(sid)
    }
    const encrypted = new FileStore({
      path,
      secret: 'file store secret',
      logFn: () => undefined,
      reapInterval: -1,
    })
    await new Promise<void>((resolve, reject) =>
      encrypted.set('encrypted-one', { cookie: { originalMaxAge: HOUR_MS } } as never, (err: unknown) =>
        err ? reject(err) : resolve(),
      ),
    )
    // An expired one (last access two hours ago, a one-hour cookie), and a file that is no session.
    const old = Date.now() - 2 * HOUR_MS
    writeFileSync(
      join(path, 'stale.json'),
      JSON.stringify({
        cookie: { originalMaxAge: HOUR_MS, expires: new Date(old + HOUR_MS) },
        __lastAccess: old,
      }),
    )
    writeFileSync(join(path, 'junk.json'), '[1, 2, 3]')
    onTestFinished(() => dir.remove())
    return { dir: dir.path, path, sids }
  }

  it('imports into a local SQLite file: each session with its data and expiry; encrypted files counted and skipped with a line that says so', async () => {
    const { dir, path, sids } = await fileStoreDir()
    const db = join(dir, 'tiered.db')
    const run = await cli(['import', '--from', 'session-file-store', '--dir', path, '--db', db, '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(JSON.parse(run.stdout)).toEqual({ imported: 3, expired: 1, encrypted: 1, notASession: 1 })
    expect(run.stderr).toMatch(
      /1 encrypted file\(s\) skipped: session-file-store wrote them with its `secret` option/,
    )
    const store = new TieredStore({ disk: { path: db } })
    onTestFinished(() => store.close())
    for (const [i, user] of ['alice', 'bob', 'carol'].entries()) {
      const sess = (await store.get(sids[i] as string)) as Record<string, unknown> | undefined
      expect(sess).toMatchObject({ user })
      expect(sess?.__lastAccess).toBeUndefined()
    }
    expect(await store.length()).toBe(3)
  })

  it('imports into Redis (shared mode), readable by a store on that prefix', async () => {
    const { path, sids } = await fileStoreDir()
    const prefix = uniquePrefix('fs')
    const run = await cli([
      'import',
      '--from',
      'session-file-store',
      '--dir',
      path,
      '--redis',
      redis.url,
      '--prefix',
      prefix,
    ])
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toMatch(/^imported\s+3$/m)
    const dir = makeTempDir()
    const store = new TieredStore({
      prefix,
      disk: { path: join(dir.path, 's.db') },
      redis: { url: redis.url },
    })
    onTestFinished(async () => {
      await store.close()
      dir.remove()
    })
    expect(await store.get(sids[1] as string)).toMatchObject({ user: 'bob' })
  })

  it('a missing directory, or neither --db nor --redis, exits non-zero with one clear line', async () => {
    const missing = await cli([
      'import',
      '--from',
      'session-file-store',
      '--dir',
      '/no/such/dir',
      '--db',
      '/tmp/x.db',
    ])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe('tiered-session: no such directory: /no/such/dir\n')
    const neither = await cli(['import', '--from', 'session-file-store', '--dir', '/tmp'])
    expect(neither.code).toBe(2)
    expect(neither.stderr).toMatch(/give one of --db PATH or --redis URL/)
  })
})

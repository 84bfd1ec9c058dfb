// bin `tiered-session` as a real child process against a real redis-server (shared mode): stats, sweep,
// sessions, logout, destroy, and export/import into the other mode both ways, every session with its expiry.

import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { cli } from './helpers/cli.js'
import { freePort, useRedis } from './helpers/redis-server.js'
import { engineOf, ready, uniquePrefix } from './helpers/shared-stores.js'
import { sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR_MS = 3_600_000

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>
}

/** A local-mode store on a fresh file (closed after the test). */
function localStore(): { store: TieredStore; path: string } {
  const dir = makeTempDir()
  const path = join(dir.path, 'sessions.db')
  const store = new TieredStore({ disk: { path } })
  onTestFinished(async () => {
    await store.close()
    dir.remove()
  })
  return { store, path }
}

/** Every live session of `store` with its expiry, by the key it is stored under. */
async function snapshot(store: TieredStore): Promise<Map<string, { session: unknown; expiresAt: number }>> {
  const out = new Map<string, { session: unknown; expiresAt: number }>()
  await engineOf(store).exportRows(async (rows) => {
    for (const row of rows) out.set(row.key, { session: row.session, expiresAt: row.expiresAt })
  })
  return out
}

/** Sessions with distinct expiries (to the millisecond), users and data. */
async function fill(store: TieredStore, count: number): Promise<void> {
  const now = Date.now()
  for (let i = 0; i < count; i++)
    await store.set(
      `s-${i}`,
      sessionFor(now, HOUR_MS + i * 7, { userId: `u${i % 4}`, cart: [`item-${i}`], note: 'ünïcödé ✓' }),
    )
}

describe('tiered-session on Redis (--redis)', () => {
  const redis = useRedis()

  /** A shared-mode app instance on the test's Redis (no disk tier), ready. */
  async function sharedStore(prefix: string): Promise<TieredStore> {
    const store = new TieredStore({ redis: { url: redis.url }, prefix, disk: false })
    onTestFinished(() => store.close())
    return ready(store)
  }

  it('stats counts sessions, bytes and users, and says what does not apply to Redis', async () => {
    const prefix = uniquePrefix('st')
    await fill(await sharedStore(prefix), 20)
    const run = await cli(['stats', '--redis', redis.url, '--prefix', prefix, '--top', '1', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const out = json(run.stdout)
    expect(out).toMatchObject({
      mode: 'shared',
      sessions: 20,
      expiredNotSwept: null,
      sessionsWithUser: 20,
      file: null,
      outbox: null,
      topUsers: [{ userId: 'u0', sessions: 5 }],
    })
    expect(out.bytes).toBeGreaterThan(20 * 100)
    const table = await cli(['stats', '--redis', redis.url, '--prefix', prefix])
    expect(table.stdout).toMatch(/^expired, not swept\s+n\/a \(Redis expires its own keys\)$/m)
    expect(table.stdout).toMatch(
      /^outbox depth\s+n\/a \(each instance keeps its outbox in its own SQLite file\)$/m,
    )
  })

  it('sweep has nothing to do on Redis, and says so', async () => {
    const run = await cli(['sweep', '--redis', redis.url, '--prefix', uniquePrefix('sw'), '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(json(run.stdout)).toEqual({ removed: 0 })
    expect(run.stderr).toMatch(/Redis expires sessions on its own: nothing to sweep/)
  })

  it('logout and destroy reach an app instance holding the sessions in memory (its invalidations)', async () => {
    const prefix = uniquePrefix('lo')
    const app = await sharedStore(prefix)
    for (const sid of ['a1', 'a2', 'a3'])
      await app.set(sid, sessionFor(Date.now(), HOUR_MS, { userId: 'alice' }))
    await app.set('b1', sessionFor(Date.now(), HOUR_MS, { userId: 'bob' }))
    for (const sid of ['a1', 'a2', 'a3', 'b1']) expect(await app.get(sid)).toBeDefined()

    const listed = json(
      (await cli(['sessions', '--redis', redis.url, '--prefix', prefix, '--user', 'alice', '--json'])).stdout,
    )
    const handles = (listed.sessions as Array<{ handle: string }>).map((entry) => entry.handle)
    expect(handles).toHaveLength(3)

    const destroyed = await cli(['destroy', handles[0] as string, '--redis', redis.url, '--prefix', prefix])
    expect(destroyed.code, destroyed.stderr).toBe(0)
    const logout = await cli([
      'logout',
      '--redis',
      redis.url,
      '--prefix',
      prefix,
      '--user',
      'alice',
      '--except',
      handles[1] as string,
      '--json',
    ])
    expect(logout.code, logout.stderr).toBe(0)
    expect(json(logout.stdout)).toEqual({ destroyed: 1 })

    await engineOf(app).invalidationsDelivered()
    const left = await Promise.all(['a1', 'a2', 'a3'].map((sid) => app.get(sid)))
    expect(left.filter((session) => session !== undefined)).toHaveLength(1)
    expect(await app.get('b1')).toBeDefined()
    expect(await app.listByUser('alice')).toHaveLength(1)
  })

  it('export from local mode, import into shared mode: every session and expiry round-trips', async () => {
    const { store: local, path } = localStore()
    await fill(local, 200)
    const before = await snapshot(local)
    await local.close()
    const exported = await cli(['export', '--db', path])
    expect(exported.code, exported.stderr).toBe(0)
    const prefix = uniquePrefix('l2s')
    const imported = await cli(
      ['import', '--redis', redis.url, '--prefix', prefix, '--json'],
      exported.stdout,
    )
    expect(imported.code, imported.stderr).toBe(0)
    expect(json(imported.stdout)).toEqual({ imported: 200, expired: 0, bad: 0 })

    const shared = await sharedStore(prefix)
    expect(await snapshot(shared)).toEqual(before)
    expect(await shared.listByUser('u3')).toHaveLength(50)
    // Served to the same cookie (its id) as before the move.
    expect(await shared.get('s-7')).toMatchObject({ cart: ['item-7'] })
  })

  it('export from shared mode, import into local mode: every session and expiry round-trips', async () => {
    const prefix = uniquePrefix('s2l')
    const shared = await sharedStore(prefix)
    await fill(shared, 200)
    const before = await snapshot(shared)
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const file = join(dir.path, 'dump.ndjson')
    const exported = await cli(['export', '--redis', redis.url, '--prefix', prefix, '--out', file])
    expect(exported.code, exported.stderr).toBe(0)
    const path = join(dir.path, 'local', 'sessions.db')
    const imported = await cli(['import', '--db', path, '--in', file])
    expect(imported.code, imported.stderr).toBe(0)

    const local = new TieredStore({ disk: { path } })
    onTestFinished(() => local.close())
    expect(await snapshot(local)).toEqual(before)
    expect(await local.listByUser('u0')).toHaveLength(50)
    expect(await local.get('s-7')).toMatchObject({ cart: ['item-7'] })
  })

  it('rekey rewrites every session under the first key of TIERED_SESSION_KEYS', async () => {
    const prefix = uniquePrefix('rk')
    const [k1, k2] = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
    const old = new TieredStore({
      redis: { url: redis.url },
      prefix,
      disk: false,
      encryption: { keys: [k1] },
    })
    onTestFinished(() => old.close())
    await fill(await ready(old), 30)
    const run = await cli(['rekey', '--redis', redis.url, '--prefix', prefix, '--json'], undefined, {
      TIERED_SESSION_KEYS: `${k2},${k1}`,
    })
    expect(run.code, run.stderr).toBe(0)
    expect(json(run.stdout)).toEqual({ rewritten: 30, gone: 0, undecodable: 0 })
    const fresh = new TieredStore({
      redis: { url: redis.url },
      prefix,
      disk: false,
      encryption: { keys: [k2] },
    })
    onTestFinished(() => fresh.close())
    for (let i = 0; i < 30; i++) expect(await fresh.get(`s-${i}`)).toMatchObject({ cart: [`item-${i}`] })
  })

  it('unreachable Redis is one clear line and exit 1, for every command', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`
    const commands = [
      ['stats'],
      ['sweep'],
      ['export'],
      ['import'],
      ['sessions', '--user', 'u'],
      ['logout', '--user', 'u'],
      ['destroy', 'h'],
    ]
    for (const command of commands) {
      const run = await cli([...command, '--redis', url])
      expect(run.code, command[0]).toBe(1)
      expect(run.stderr).toMatch(
        /^tiered-session: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/,
      )
      expect(run.stderr.trim().split('\n')).toHaveLength(1)
      expect(run.stdout).toBe('')
    }
  })
})

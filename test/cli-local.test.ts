// bin `tiered-session` as a real child process on a real SQLite file: stats, sweep, backup, export, import,
// sessions, logout and destroy, each with its table, --json and error exits.

import { randomBytes } from 'node:crypto'
import { existsSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import { handleOf, hashSid } from '../src/at-rest/session-key.js'
import { TieredStore } from '../src/store.js'
import { readBackup } from './helpers/backup-copy.js'
import { cli } from './helpers/cli.js'
import { ManualClock } from './helpers/manual-clock.js'
import { engineOf } from './helpers/shared-stores.js'
import { sessionFor } from './helpers/stores.js'
import { makeTempDir } from './helpers/temp-dir.js'

const HOUR_MS = 3_600_000

/**
 * A SQLite file with `live` sessions (user `u<i % 3>`, plus 2 without a user) and `expired` rows the sweep has
 * not removed (written by a store whose clock is two hours behind: they expired an hour ago).
 */
async function seededFile(live: number, expired: number): Promise<{ dir: string; db: string }> {
  const dir = makeTempDir()
  onTestFinished(() => dir.remove())
  const db = join(dir.path, 'sessions.db')
  const store = new TieredStore({ disk: { path: db } })
  for (let i = 0; i < live; i++)
    await store.set(`live-${i}`, sessionFor(Date.now(), HOUR_MS, { userId: `u${i % 3}`, i }))
  for (let i = 0; i < 2; i++) await store.set(`anon-${i}`, sessionFor(Date.now(), HOUR_MS, { i }))
  await store.close()
  const clock = new ManualClock(Date.now() - 2 * HOUR_MS)
  const behind = new TieredStore({ disk: { path: db }, clock })
  for (let i = 0; i < expired; i++)
    await behind.set(`old-${i}`, sessionFor(clock.now(), HOUR_MS, { userId: 'u0', i }))
  await behind.close()
  return { dir: dir.path, db }
}

function json(stdout: string): Record<string, unknown> {
  return JSON.parse(stdout) as Record<string, unknown>
}

describe('tiered-session stats --db', () => {
  it('counts live sessions, their bytes, expired rows not swept, users, file and WAL sizes, the outbox', async () => {
    const { db } = await seededFile(30, 5)
    const run = await cli(['stats', '--db', db, '--top', '2', '--json'])
    expect(run.code, run.stderr).toBe(0)
    const out = json(run.stdout)
    expect(out).toMatchObject({
      mode: 'local',
      sessions: 32,
      expiredNotSwept: 5,
      sessionsWithUser: 30,
      outbox: { depth: 0 },
      topUsers: [
        { userId: 'u0', sessions: 10 },
        { userId: 'u1', sessions: 10 },
      ],
    })
    expect(out.bytes).toBeGreaterThan(32 * 50)
    expect((out.file as { bytes: number }).bytes).toBe(statSync(db).size)

    const table = await cli(['stats', '--db', db])
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/^sessions\s+32$/m)
    expect(table.stdout).toMatch(/^expired, not swept\s+5$/m)
    expect(table.stdout).toMatch(/^u2\s+10$/m)
  })

  it('a missing file is one clear line and exit 1, and no database is created', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const missing = join(dir.path, 'nope.db')
    const run = await cli(['stats', '--db', missing])
    expect(run.code).toBe(1)
    expect(run.stderr).toBe(`tiered-session: no such file: ${missing}\n`)
    expect(existsSync(missing)).toBe(false)
  })
})

describe('tiered-session sweep --db', () => {
  it('deletes the expired rows in batches, with progress, and leaves the live ones', async () => {
    const { db } = await seededFile(10, 25)
    const run = await cli(['sweep', '--db', db, '--batch', '10', '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(json(run.stdout)).toEqual({ removed: 25 })
    expect(run.stderr).toMatch(/sweep: expired sessions deleted: 10\n/)
    expect(run.stderr).toMatch(/sweep: expired sessions deleted: 25\n/)
    const file = new Database(db, { readonly: true })
    onTestFinished(() => {
      file.close()
    })
    expect(file.prepare('SELECT count(*) AS n FROM sessions').get()).toEqual({ n: 12 })
  })
})

describe('tiered-session backup --db', () => {
  it('writes a valid copy, 0600, with every session', async () => {
    const { dir, db } = await seededFile(40, 0)
    const out = join(dir, 'backups', 'copy.db')
    const run = await cli(['backup', '--db', db, '--out', out, '--json'])
    expect(run.code, run.stderr).toBe(0)
    expect(json(run.stdout)).toMatchObject({ bytes: statSync(out).size })
    expect(run.stderr).toMatch(/backup: pages copied: \[#{24}\] 100% (\d+)\/\1\n$/)
    expect(statSync(out).mode & 0o777).toBe(0o600)
    const copy = readBackup(out)
    expect(copy.integrity).toBe('ok')
    expect(copy.keys.size).toBe(42)
  })

  it('bad input exits non-zero with one clear line: --redis, --out the file itself, a missing file, an unwritable target', async () => {
    const { dir, db } = await seededFile(1, 0)
    writeFileSync(join(dir, 'a-file'), 'x')
    const cases: Array<[string[], number, RegExp]> = [
      [
        ['backup', '--redis', 'redis://127.0.0.1:6379', '--out', join(dir, 'x.db')],
        2,
        /backup copies a SQLite file/,
      ],
      [['backup', '--db', db, '--out', db], 2, /--out must not be the --db file itself/],
      [['backup', '--db', join(dir, 'none.db'), '--out', join(dir, 'x.db')], 1, /no such file: /],
      [['backup', '--db', db, '--out', join(dir, 'a-file', 'x.db')], 1, /cannot write the backup to /],
      [['backup', '--db', db], 2, /--out is required/],
    ]
    for (const [args, code, line] of cases) {
      const run = await cli(args)
      expect(run.code, args.join(' ')).toBe(code)
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1)
      expect(run.stderr).toMatch(line)
    }
  })
})

describe('tiered-session export and import --db', () => {
  it('moves every live session with its expiry to another file (stdout to stdin), expired ones left out', async () => {
    const { dir, db } = await seededFile(50, 3)
    const exported = await cli(['export', '--db', db])
    expect(exported.code, exported.stderr).toBe(0)
    const lines = exported.stdout.trim().split('\n')
    expect(lines).toHaveLength(52)
    expect(JSON.parse(lines[0] as string)).toMatchObject({ hashedKey: true, session: { cookie: {} } })
    // The keys are the hashes the file keeps, never the session ids.
    expect(exported.stdout).not.toMatch(/live-|anon-/)

    const target = join(dir, 'moved', 'sessions.db')
    const imported = await cli(['import', '--db', target, '--json'], exported.stdout)
    expect(imported.code, imported.stderr).toBe(0)
    expect(json(imported.stdout)).toEqual({ imported: 52, expired: 0, bad: 0 })

    const source = new TieredStore({ disk: { path: db } })
    const moved = new TieredStore({ disk: { path: target } })
    onTestFinished(async () => {
      await source.close()
      await moved.close()
    })
    expect(await moved.all()).toEqual(await source.all())
    for (const sid of ['live-0', 'live-49', 'anon-1']) {
      const before = await engineOf(source).getEntry(sid)
      expect((await engineOf(moved).getEntry(sid))?.expiresAt).toBe(before?.expiresAt)
    }
    expect(await moved.listByUser('u1')).toHaveLength(17)
  })

  it('with maxLifetime, the creation time goes with the session: sessions shows it, export and import keep it', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'lifetime.db')
    const clock = new ManualClock(Date.now() - 60_000)
    const store = new TieredStore({ disk: { path: db }, maxLifetime: 7200, clock })
    await store.set('created-a-minute-ago', sessionFor(clock.now(), HOUR_MS, { userId: 'u' }))
    await store.close()
    const created = clock.now()

    const listed = await cli(['sessions', '--db', db, '--user', 'u', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    expect(json(listed.stdout).sessions).toEqual([expect.objectContaining({ createdAt: created })])
    const table = await cli(['sessions', '--db', db, '--user', 'u'])
    expect(table.stdout).toContain(new Date(created).toISOString())

    const exported = await cli(['export', '--db', db])
    expect(JSON.parse(exported.stdout)).toMatchObject({ createdAt: created, expiresAt: created + HOUR_MS })
    const target = join(dir.path, 'moved.db')
    expect((await cli(['import', '--db', target], exported.stdout)).code).toBe(0)
    const moved = new TieredStore({ disk: { path: target }, maxLifetime: 7200 })
    onTestFinished(() => moved.close())
    expect(await moved.listByUser('u')).toEqual([expect.objectContaining({ createdAt: created })])
  })

  it('export --out writes a 0600 file; import --in reads it', async () => {
    const { dir, db } = await seededFile(5, 0)
    const file = join(dir, 'dump.ndjson')
    const exported = await cli(['export', '--db', db, '--out', file, '--json'])
    expect(exported.code, exported.stderr).toBe(0)
    expect(json(exported.stdout)).toEqual({ exported: 7 })
    expect(statSync(file).mode & 0o777).toBe(0o600)
    const imported = await cli(['import', '--db', join(dir, 'b.db'), '--in', file])
    expect(imported.code, imported.stderr).toBe(0)
    expect(imported.stdout).toMatch(/^imported\s+7$/m)
  })

  it('counts bad lines and names them by number, never by content, imports the rest and exits 1', async () => {
    const { dir } = await seededFile(0, 0)
    const good = (key: string, expiresAt: number) =>
      JSON.stringify({ key, hashedKey: false, expiresAt, userId: null, session: { cookie: {}, n: key } })
    const input = [
      good('a', Date.now() + HOUR_MS),
      'secret-looking garbage {',
      good('b', Date.now() - 1000),
      JSON.stringify({ key: 'c', hashedKey: false, expiresAt: 'soon', userId: null, session: {} }),
      '',
      good('bad id with spaces\u0001', Date.now() + HOUR_MS),
      good('d', Date.now() + HOUR_MS),
    ].join('\n')
    const run = await cli(['import', '--db', join(dir, 'c.db'), '--json'], input)
    expect(run.code).toBe(1)
    expect(json(run.stdout)).toEqual({ imported: 2, expired: 1, bad: 3 })
    expect(run.stderr).toMatch(/^line 2: not JSON \(skipped\)$/m)
    expect(run.stderr).toMatch(/^line 4: "expiresAt" is not a number of milliseconds \(skipped\)$/m)
    expect(run.stderr).toMatch(/^line 6: "key" is not a valid session id \(skipped\)$/m)
    expect(run.stderr).toMatch(/tiered-session: 3 bad line\(s\) skipped; the other sessions were imported\n$/)
    expect(run.stderr).not.toMatch(/garbage|spaces/)
  })

  it('a store of plain ids (hashIds: false) exports its ids; a hashing store imports them hashed, a plain one refuses hashed keys', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const plain = join(dir.path, 'plain.db')
    const store = new TieredStore({ disk: { path: plain }, hashIds: false })
    await store.set('plain-sid-1', sessionFor(Date.now(), HOUR_MS, { n: 1 }))
    await store.close()
    const exported = await cli(['export', '--db', plain])
    expect(exported.code, exported.stderr).toBe(0)
    expect(JSON.parse(exported.stdout)).toMatchObject({ key: 'plain-sid-1', hashedKey: false })
    // The tool opened the file keyed as it is: its ids were not moved to hashes.
    const reopened = new TieredStore({ disk: { path: plain }, hashIds: false })
    expect(await reopened.get('plain-sid-1')).toMatchObject({ n: 1 })
    await reopened.close()

    const hashed = join(dir.path, 'hashed.db')
    expect((await cli(['import', '--db', hashed], exported.stdout)).code).toBe(0)
    const fromHashed = await cli(['export', '--db', hashed])
    expect(fromHashed.stdout).not.toMatch(/plain-sid-1/)
    const moved = new TieredStore({ disk: { path: hashed } })
    onTestFinished(() => moved.close())
    expect(await moved.get('plain-sid-1')).toMatchObject({ n: 1 })

    const refused = await cli(['import', '--db', join(dir.path, 'p2.db'), '--plain-ids'], fromHashed.stdout)
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/^line 1: its key is a hashed id, and this store keeps plain ids/m)
    const mismatch = await cli(['stats', '--db', hashed, '--plain-ids'])
    expect(mismatch.code).toBe(2)
    expect(mismatch.stderr).toMatch(/keys its sessions by hashed ids: drop --plain-ids/)
  })

  it('import --from session-file-store and --in do not go together; a missing --in file is one line', async () => {
    const { dir } = await seededFile(0, 0)
    const both = await cli(['import', '--db', join(dir, 'x.db'), '--from', 'session-file-store', '--in', 'f'])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--in reads NDJSON: it does not go with --from/)
    const missing = await cli(['import', '--db', join(dir, 'x.db'), '--in', join(dir, 'none.ndjson')])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`tiered-session: no such file: ${join(dir, 'none.ndjson')}\n`)
  })
})

describe('an encrypted store (encryption.keys)', () => {
  it('is read with the keys of TIERED_SESSION_KEYS; without them what did not decode is one line and exit 1', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'sealed.db')
    const keys = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
    const store = new TieredStore({ disk: { path: db }, encryption: { keys: [keys[1] as string] } })
    for (let i = 0; i < 3; i++)
      await store.set(`sealed-${i}`, sessionFor(Date.now(), HOUR_MS, { userId: 'u', i }))
    await store.close()

    const withKeys = await cli(['export', '--db', db], undefined, { TIERED_SESSION_KEYS: keys.join(',') })
    expect(withKeys.code, withKeys.stderr).toBe(0)
    expect(
      withKeys.stdout
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line).session.i)
        .sort(),
    ).toEqual([0, 1, 2])

    const without = await cli(['export', '--db', db])
    expect(without.code).toBe(1)
    expect(without.stdout).toBe('')
    expect(without.stderr).toMatch(
      /tiered-session: 3 stored session\(s\) did not decode \(TS_DECODE_FAILED\) and were left out; if the store is encrypted, give its keys in TIERED_SESSION_KEYS\n$/,
    )
    const listed = await cli(['sessions', '--db', db, '--user', 'u'])
    expect(listed.code).toBe(1)

    const badKey = await cli(['stats', '--db', db], undefined, { TIERED_SESSION_KEYS: 'c2hvcnQ=' })
    expect(badKey.code).toBe(1)
    expect(badKey.stderr).toMatch(
      /^tiered-session: TIERED_SESSION_KEYS: option "encryption.keys\[0\]" must be a 32-byte key/,
    )
    expect(badKey.stderr).not.toMatch(/c2hvcnQ/)
    expect(badKey.stderr.trim().split('\n')).toHaveLength(1)
  })
})

describe('tiered-session rekey --db', () => {
  it('rewrites every session under the first key, the ones written before encryption too; the old key can go', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'sealed.db')
    const [k1, k2] = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
    const plain = new TieredStore({ disk: { path: db } })
    await plain.set('before-encryption', sessionFor(Date.now(), HOUR_MS, { marker: 'PLAIN-MARKER' }))
    await plain.close()
    const old = new TieredStore({ disk: { path: db }, encryption: { keys: [k1] } })
    for (let i = 0; i < 5; i++) await old.set(`old-key-${i}`, sessionFor(Date.now(), HOUR_MS, { i }))
    await old.close()

    const missingKeys = await cli(['rekey', '--db', db])
    expect(missingKeys.code).toBe(2)
    expect(missingKeys.stderr).toMatch(/rekey needs the keys in TIERED_SESSION_KEYS/)
    const run = await cli(['rekey', '--db', db, '--json'], undefined, { TIERED_SESSION_KEYS: `${k2},${k1}` })
    expect(run.code, run.stderr).toBe(0)
    expect(json(run.stdout)).toEqual({ rewritten: 6, gone: 0, undecodable: 0 })

    const fresh = new TieredStore({ disk: { path: db }, encryption: { keys: [k2] } })
    onTestFinished(() => fresh.close())
    const errors: unknown[] = []
    fresh.on('error', (error) => errors.push(error))
    expect(await fresh.get('before-encryption')).toMatchObject({ marker: 'PLAIN-MARKER' })
    for (let i = 0; i < 5; i++) expect(await fresh.get(`old-key-${i}`)).toMatchObject({ i })
    expect(errors).toEqual([])
  })
})

describe('tiered-session sessions, logout and destroy --db', () => {
  it('takes handles that start with a dash, as HANDLE and as the value of --except', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'sessions.db')
    // Session ids whose handles start with '-' (1 in 64 of them), three of one user.
    const sids: string[] = []
    for (let i = 0; sids.length < 3; i++)
      if (handleOf(hashSid(`dash-${i}`)).startsWith('-')) sids.push(`dash-${i}`)
    const store = new TieredStore({ disk: { path: db } })
    for (const sid of sids) await store.set(sid, sessionFor(Date.now(), HOUR_MS, { userId: 'd' }))
    await store.close()
    const [a, b, c] = sids.map((sid) => handleOf(hashSid(sid))) as [string, string, string]
    const destroyed = await cli(['destroy', a, '--db', db, '--json'])
    expect(destroyed.code, destroyed.stderr).toBe(0)
    expect(json(destroyed.stdout)).toEqual({ destroyed: 1 })
    const logout = await cli(['logout', '--user', 'd', '--except', b, '--db', db, '--json'])
    expect(logout.code, logout.stderr).toBe(0)
    expect(json(logout.stdout)).toEqual({ destroyed: 1 })
    const left = json((await cli(['sessions', '--db', db, '--user', 'd', '--json'])).stdout)
    expect((left.sessions as Array<{ handle: string }>).map((entry) => entry.handle)).toEqual([b])
    expect(c).not.toBe(b)
  })

  it("lists a user's sessions by handle without their data unless --show-data, destroys one by handle, logs out the rest but one", async () => {
    const { db } = await seededFile(12, 0)
    const listed = await cli(['sessions', '--db', db, '--user', 'u1', '--json'])
    expect(listed.code, listed.stderr).toBe(0)
    const { sessions } = json(listed.stdout) as { sessions: Array<Record<string, unknown>> }
    expect(sessions).toHaveLength(4)
    for (const entry of sessions) {
      expect(Object.keys(entry).sort()).toEqual(['createdAt', 'expiresAt', 'handle'])
      expect(entry.handle).toMatch(/^[A-Za-z0-9_-]{22}$/)
    }
    expect(listed.stdout).not.toMatch(/live-/)
    const table = await cli(['sessions', '--db', db, '--user', 'u1'])
    expect(table.stdout.split('\n')[0]).toMatch(/^handle\s+created\s+expires$/)
    expect(table.stdout).not.toMatch(/"i":/)
    const withData = await cli(['sessions', '--db', db, '--user', 'u1', '--show-data'])
    expect(withData.stdout).toMatch(/"userId":"u1"/)

    const [first, second] = sessions.map((entry) => entry.handle as string)
    const destroyed = await cli(['destroy', first as string, '--db', db, '--json'])
    expect(destroyed.code, destroyed.stderr).toBe(0)
    expect(json(destroyed.stdout)).toEqual({ destroyed: 1 })
    const again = await cli(['destroy', first as string, '--db', db])
    expect(again.code).toBe(1)
    expect(again.stderr).toBe('tiered-session: no live session has that handle\n')

    const logout = await cli(['logout', '--db', db, '--user', 'u1', '--except', second as string, '--json'])
    expect(logout.code, logout.stderr).toBe(0)
    expect(json(logout.stdout)).toEqual({ destroyed: 2 })
    const left = json((await cli(['sessions', '--db', db, '--user', 'u1', '--json'])).stdout)
    expect((left.sessions as Array<{ handle: string }>).map((entry) => entry.handle)).toEqual([second])
    // The other users are untouched.
    const others = json((await cli(['stats', '--db', db, '--json'])).stdout)
    expect(others.sessions).toBe(14 - 3)
  })

  it('bad input exits non-zero with one clear line', async () => {
    const { db } = await seededFile(1, 0)
    const cases: Array<[string[], number, RegExp]> = [
      [['sessions', '--db', db], 2, /--user is required/],
      [['logout', '--user', 'u0'], 2, /give one of --db PATH or --redis URL/],
      [
        ['logout', '--user', 'u0', '--db', db, '--redis', 'redis://x'],
        2,
        /give one of --db PATH or --redis URL/,
      ],
      [['destroy', '--db', db], 2, /give the HANDLE of the session to destroy/],
      [['destroy', 'a', 'b', '--db', db], 2, /unexpected argument 'b'/],
      [['stats', '--db', db, '--top', 'ten'], 2, /--top must be a whole number >= 0/],
      [['sweep', '--db', db, '--bogus'], 2, /Unknown option '--bogus'/],
      [['export', '--db', db, '--out', join(db, 'x')], 1, /cannot write /],
      [['export', '--db', db, '--out', db], 2, /--out must not be the --db file/],
      [['stats', '--db', '/'], 1, /not a file: \//],
    ]
    for (const [args, code, line] of cases) {
      const run = await cli(args)
      expect(run.code, args.join(' ')).toBe(code)
      expect(run.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1)
      expect(run.stderr).toMatch(line)
    }
    for (const command of [
      'stats',
      'sessions',
      'logout',
      'destroy',
      'sweep',
      'backup',
      'export',
      'import',
      'rekey',
    ]) {
      const help = await cli([command, '--help'])
      expect(help.code, command).toBe(0)
      expect(help.stdout).toMatch(new RegExp(`^Usage: (\\S+=\\S+ )?tiered-session ${command} `))
    }
  })
})

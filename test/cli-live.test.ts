// The CLI against a file a running app uses, both as real child processes: a backup taken while a writer process
// commits 10,000 sessions, and an app that stops serving what the tool destroyed or changed within one second.

import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import request from 'supertest'
import { describe, expect, it, onTestFinished } from 'vitest'
import { handleOf, hashSid } from '../src/at-rest/session-key.js'
import { readBackup } from './helpers/backup-copy.js'
import { cli } from './helpers/cli.js'
import { makeTempDir } from './helpers/temp-dir.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))

/** A child process running a fixture; killed after the test if still running. */
function run(name: string, args: readonly string[]): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture(name), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  onTestFinished(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    await exited
  })
  return child
}

describe('tiered-session backup while a writer process commits 10,000 sessions', () => {
  it('opens as a valid database holding every session acknowledged before the backup began', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'sessions.db')
    const writer = run('cli-writer.ts', [db, '10000'])
    const exited = once(writer, 'exit')
    const acknowledged: string[] = []
    const lines = createInterface({ input: writer.stdout as NodeJS.ReadableStream })
    let backup: Promise<Awaited<ReturnType<typeof cli>>> | undefined
    let before: string[] = []
    for await (const line of lines) {
      acknowledged.push(line)
      // The backup starts while the writer is well under way, and runs while it goes on.
      if (backup === undefined && acknowledged.length >= 2000) {
        before = [...acknowledged]
        backup = cli(['backup', '--db', db, '--out', join(dir.path, 'backup', 'copy.db')])
      }
    }
    const [code] = await exited
    expect(code).toBe(0)
    expect(acknowledged).toHaveLength(10_000)
    const done = await (backup as NonNullable<typeof backup>)
    expect(done.code, done.stderr).toBe(0)

    const copy = readBackup(join(dir.path, 'backup', 'copy.db'))
    expect(copy.integrity).toBe('ok')
    // NB: the file keys sessions by SHA-256 of their ids (hashIds, the default).
    expect(before.filter((sid) => !copy.keys.has(hashSid(sid)))).toEqual([])
  })
})

describe('a running app on the same file (local mode)', () => {
  /** Starts the app process on `db`; resolves to its base URL. */
  async function startApp(db: string): Promise<string> {
    const app = run('cli-app.ts', [db])
    const lines = createInterface({ input: app.stdout as NodeJS.ReadableStream })
    const [port] = (await once(lines, 'line')) as [string]
    return `http://127.0.0.1:${port}`
  }

  /** Logs a user in through the app; the agent keeps the cookie. Resolves to the session id. */
  async function login(url: string, user: string) {
    const agent = request.agent(url)
    await agent.post('/login').type('form').send({ user }).expect(200)
    const who = await agent.get('/whoami').expect(200)
    expect(who.body.user).toBe(user)
    return { agent, sid: who.body.id as string }
  }

  /**
   * Polls the app until `done` holds for what /whoami answers, for at most one second after `since`; resolves to
   * whether it did (no sleeps: each poll is a request).
   */
  async function within1s(
    agent: ReturnType<typeof request.agent>,
    done: (body: { user: string | null; cart: string[] }) => boolean,
    since: number,
  ): Promise<boolean> {
    for (;;) {
      const body = (await agent.get('/whoami').expect(200)).body
      if (done(body)) return true
      if (Date.now() - since > 1000) return false
    }
  }

  it('stops serving a session the tool destroyed (destroy, logout) or changed (import), within one second', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const db = join(dir.path, 'sessions.db')
    const url = await startApp(db)
    const alice1 = await login(url, 'alice')
    const alice2 = await login(url, 'alice')
    const bob = await login(url, 'bob')
    await alice2.agent.post('/cart').type('form').send({ item: 'book' }).expect(302)
    // Each is served from the app's memory now (every request read it).
    for (const { agent } of [alice1, alice2, bob])
      expect((await agent.get('/whoami')).body.user).not.toBeNull()

    const destroyed = await cli(['destroy', handleOf(hashSid(alice1.sid)), '--db', db])
    expect(destroyed.code, destroyed.stderr).toBe(0)
    expect(await within1s(alice1.agent, (body) => body.user === null, Date.now())).toBe(true)

    const logout = await cli(['logout', '--user', 'bob', '--db', db])
    expect(logout.stdout).toMatch(/^sessions destroyed\s+1$/m)
    expect(await within1s(bob.agent, (body) => body.user === null, Date.now())).toBe(true)

    // A changed session: alice2's cart, as an operator's import rewrites it.
    const exported = await cli(['export', '--db', db])
    const line = JSON.parse(exported.stdout.trim()) as { session: { cart: string[] } }
    expect(line.session.cart).toEqual(['book'])
    line.session.cart = ['book', 'added by the tool']
    const imported = await cli(['import', '--db', db], `${JSON.stringify(line)}\n`)
    expect(imported.code, imported.stderr).toBe(0)
    expect(
      await within1s(alice2.agent, (body) => body.cart.length === 2 && body.user === 'alice', Date.now()),
    ).toBe(true)
  })
})

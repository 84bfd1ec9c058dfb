// Promise 8 under kill -9 (local mode): a child process writes sessions, then touches them in a loop (with a
// few data writes mixed in) and is SIGKILLed somewhere in it. Reopening the file, every acknowledged data
// write is intact, and no session expires earlier than the last touch the child reported as flushed.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import { makeTempDir } from './helpers/temp-dir.js'

const SESSIONS = 200
const DAY = 86_400_000
/** The child's clock starts here and moves 1 s per round of touches. */
const START = Date.UTC(2030, 0, 1)
const CYCLES = 3

const storeModule = fileURLToPath(new URL('../src/store.ts', import.meta.url))

/**
 * The child (plain JavaScript, run with tsx so it can load the TypeScript source). Lines it prints:
 *   W <i> <gen> <version>  a data write of session i, acknowledged (gen counts the data writes of i)
 *   T <expiry>             a round of touches, each to <expiry>, is about to start
 *   F <expiry>             flush() resolved after the round of <expiry>: every touch so far is durable
 */
const childSource = `
import { managerOf, TieredStore } from ${JSON.stringify(storeModule)}

const [path, count, start, day] = process.argv.slice(2).map((a, i) => (i === 0 ? a : Number(a)))
let now = start
const clock = { now: () => now }
const store = new TieredStore({ clock, disk: { path } })
const out = (line) => process.stdout.write(line + '\\n')
const session = (i, gen) => ({
  cookie: { originalMaxAge: day, expires: new Date(now + day).toISOString(), httpOnly: true, path: '/' },
  i,
  gen,
  pad: 'z'.repeat(40 + (i % 90)),
})
const gens = new Array(count).fill(0)
async function write(i) {
  await store.set('s' + i, session(i, gens[i]))
  const entry = await managerOf(store).getEntry('s' + i)
  out('W ' + i + ' ' + gens[i] + ' ' + entry.version)
}
for (let i = 0; i < count; i++) await write(i)
for (let round = 1; ; round++) {
  now += 1000
  out('T ' + (now + day))
  for (let i = 0; i < count; i++) {
    if ((i + round) % 23 === 0) {
      gens[i]++
      await write(i)
    } else await store.touch('s' + i, session(i, gens[i]))
  }
  if (round % 3 === 0) {
    await store.flush()
    out('F ' + (now + day))
  } else await new Promise((resolve) => setImmediate(resolve))
}
`

interface Acked {
  gen: number
  version: number
}

interface Report {
  /** The newest acknowledged data write of each session. */
  acked: Map<number, Acked>
  /** The last expiry reported durable (0: none). */
  flushed: number
  /** The latest expiry any touch or write of the child may have given. */
  announced: number
  flushes: number
}

/** Runs the child until it has reported `flushes` flushes and then `extraLines` more lines, then SIGKILLs it. */
async function runAndKill(childPath: string, dbPath: string, flushes: number, extraLines: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', childPath, dbPath, String(SESSIONS), String(START), String(DAY)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const exited = once(child, 'exit')
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const report: Report = { acked: new Map(), flushed: 0, announced: START + DAY, flushes: 0 }
  let after = -1
  // NB: every line is read, also those that arrive after the kill: each names something the child did.
  for await (const line of createInterface({ input: child.stdout })) {
    const [kind, ...args] = line.split(' ')
    const nums = args.map(Number)
    if (kind === 'W') {
      const [i, gen, version] = nums as [number, number, number]
      report.acked.set(i, { gen, version })
    } else if (kind === 'T') {
      report.announced = Math.max(report.announced, nums[0] as number)
    } else if (kind === 'F') {
      report.flushed = Math.max(report.flushed, nums[0] as number)
      report.flushes++
      if (report.flushes === flushes) after = 0
    }
    if (after >= 0 && after++ === extraLines && child.signalCode === null) child.kill('SIGKILL')
  }
  const [, signal] = await exited
  expect(signal).toBe('SIGKILL')
  return report
}

interface Row {
  sid: string
  payload: string
  expiresAt: number
  version: number
}

describe('deferred touches under kill -9 (local mode)', () => {
  it(`${CYCLES} runs killed mid-loop keep every acknowledged data write and every flushed touch`, async () => {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const dir = makeTempDir()
      onTestFinished(() => dir.remove())
      const childPath = join(dir.path, 'toucher.mjs')
      writeFileSync(childPath, childSource)
      const dbPath = join(dir.path, 'sessions.db')
      // Killed after 2 to 6 flushes, somewhere inside the rounds that follow (a round prints ~10 lines).
      const report = await runAndKill(
        childPath,
        dbPath,
        2 + Math.floor(Math.random() * 5),
        Math.floor(Math.random() * 40),
      )
      expect(report.acked.size).toBe(SESSIONS)
      expect(report.flushed).toBeGreaterThan(START + DAY)

      // A store on the file recovers it (WAL); then read every row as committed.
      const store = new TieredStore({ clock: { now: () => START }, disk: { path: dbPath } })
      const errors: TieredSessionError[] = []
      store.on('error', (e) => errors.push(e))
      expect(Object.keys(await store.all())).toHaveLength(SESSIONS)
      const db = new Database(dbPath, { readonly: true, fileMustExist: true })
      const rows = db.prepare('SELECT sid, payload, expiresAt, version FROM sessions').all() as Row[]
      db.close()
      await store.close()
      expect(errors).toEqual([])

      const problems: string[] = []
      for (let i = 0; i < SESSIONS; i++) {
        const row = rows.find((r) => r.sid === storedKey(`s${i}`))
        const acked = report.acked.get(i) as Acked
        if (row === undefined) {
          problems.push(`s${i}: missing`)
          continue
        }
        const { cookie, ...data } = JSON.parse(row.payload) as {
          cookie: { expires: string }
          i: number
          gen: number
          pad: string
        }
        // The data of the newest acknowledged write, or of a newer one committed just before the kill.
        if (data.i !== i || data.pad !== 'z'.repeat(40 + (i % 90)))
          problems.push(`s${i}: data ${row.payload}`)
        if (data.gen < acked.gen) problems.push(`s${i}: gen ${data.gen} < acknowledged ${acked.gen}`)
        if (data.gen === acked.gen && row.version !== acked.version)
          problems.push(`s${i}: version ${row.version} != acknowledged ${acked.version} of gen ${acked.gen}`)
        if (data.gen > acked.gen && row.version <= acked.version)
          problems.push(`s${i}: a newer write at version ${row.version} <= ${acked.version}`)
        // Expiry: never below what was reported durable, nor the first write's, nor beyond any touch made.
        if (row.expiresAt < report.flushed)
          problems.push(`s${i}: expiresAt ${row.expiresAt} < ${report.flushed}`)
        if (row.expiresAt < START + DAY) problems.push(`s${i}: expiresAt below the first write's`)
        if (row.expiresAt > report.announced) problems.push(`s${i}: expiresAt beyond any touch`)
        // The cookie and the expiry column were written together.
        if (Date.parse(cookie.expires) !== row.expiresAt) problems.push(`s${i}: cookie ${cookie.expires}`)
      }
      expect(problems).toEqual([])
    }
  })
})

import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { TieredStore } from '../src/store.js'
import { soakRuns, soakSeed } from './helpers/soak.js'
import { createStore, type StoreFixture, sessionFor } from './helpers/stores.js'

/** The reference: a Map with expiry, against the same manual clock. */
interface Model {
  now: number
  sessions: Map<string, { v: number; expiresAt: number }>
}
interface Real {
  fixture: StoreFixture
  store(): TieredStore
}

const sids = fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'h')
const ttl = fc.integer({ min: 1, max: 20_000 })

class SetCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly sid: string,
    readonly v: number,
    readonly ttlMs: number,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    await r.store().set(this.sid, sessionFor(m.now, this.ttlMs, { v: this.v, pad: 'x'.repeat(this.v % 900) }))
    m.sessions.set(this.sid, { v: this.v, expiresAt: m.now + this.ttlMs })
  }
  toString = () => `set(${this.sid}, ${this.v}, ${this.ttlMs}ms)`
}
class Get implements fc.AsyncCommand<Model, Real> {
  constructor(readonly sid: string) {}
  check = () => true
  async run(m: Model, r: Real) {
    const want = m.sessions.get(this.sid)
    const live = want !== undefined && want.expiresAt > m.now ? want.v : undefined
    const got = (await r.store().get(this.sid)) as { v?: number } | undefined
    expect(got?.v).toBe(live)
  }
  toString = () => `get(${this.sid})`
}
class Destroy implements fc.AsyncCommand<Model, Real> {
  constructor(readonly sid: string) {}
  check = () => true
  async run(m: Model, r: Real) {
    await r.store().destroy(this.sid)
    m.sessions.delete(this.sid)
  }
  toString = () => `destroy(${this.sid})`
}
class Touch implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly sid: string,
    readonly ttlMs: number,
  ) {}
  check = () => true
  async run(m: Model, r: Real) {
    await r.store().touch(this.sid, sessionFor(m.now, this.ttlMs))
    const s = m.sessions.get(this.sid)
    // A touch slides a live session forward, never back, and never revives one.
    if (s !== undefined && s.expiresAt > m.now && m.now + this.ttlMs > s.expiresAt)
      s.expiresAt = m.now + this.ttlMs
  }
  toString = () => `touch(${this.sid}, ${this.ttlMs}ms)`
}
class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    m.now += this.ms
    r.fixture.clock.advance(this.ms)
  }
  toString = () => `advance(${this.ms}ms)`
}
class Flush implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(_m: Model, r: Real) {
    await r.store().flush()
  }
  toString = () => 'flush()'
}
class Sweep implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(_m: Model, r: Real) {
    await r.store().sweep()
  }
  toString = () => 'sweep()'
}
class Reopen implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(_m: Model, r: Real) {
    await r.store().close()
    r.fixture.reopen()
  }
  toString = () => 'close-and-reopen()'
}

const set = fc.tuple(sids, fc.nat(10_000), ttl).map(([s, v, t]) => new SetCommand(s, v, t))
const get = sids.map((s) => new Get(s))
const touch = fc.tuple(sids, ttl).map(([s, t]) => new Touch(s, t))

const localCommands = [
  set,
  set,
  get,
  get,
  get,
  sids.map((s) => new Destroy(s)),
  touch,
  touch,
  fc.integer({ min: 1, max: 4000 }).map((ms) => new Advance(ms)),
  fc.constant(new Flush()),
  fc.constant(new Sweep()),
  fc.constant(new Reopen()),
]

/** Runs `runs` random command sequences; returns how many commands ran. */
async function runLocalModel(runs: number, seed: number): Promise<number> {
  let commands = 0
  await fc.assert(
    fc.asyncProperty(fc.commands(localCommands, { maxCommands: 60, size: 'max' }), async (cmds) => {
      // A tiny memory budget, so spills and promotions happen all the time.
      const fixture = createStore({ memory: { maxBytes: 4096 } })
      const model: Model = { now: fixture.clock.now(), sessions: new Map() }
      const real: Real = { fixture, store: () => fixture.store }
      commands += [...cmds].length
      await fc.asyncModelRun(() => ({ model, real }), cmds)
    }),
    { numRuns: runs, seed },
  )
  return commands
}

describe('model-based test (local mode)', () => {
  it('random sequences of set, get, destroy, touch, clock, flush, sweep and restart never diverge from a Map', async () => {
    const runs = soakRuns(60)
    const seed = soakSeed()
    const commands = await runLocalModel(runs, seed)
    if (process.env.SOAK)
      console.info(`local model: seed ${seed}, ${runs} runs, ${commands} commands, 0 divergences`)
    expect(commands).toBeGreaterThan(500)
  })
})

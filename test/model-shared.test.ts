import { once } from 'node:events'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TieredStore } from '../src/store.js'
import type { RedisProcess } from './helpers/redis-server.js'
import { startRedis } from './helpers/redis-server.js'
import { engineOf, ready, sharedSession, sharedStores } from './helpers/shared-stores.js'
import { soakRuns, soakSeed } from './helpers/soak.js'

/** The reference: a Map with expiry; plus whether Redis is down and which instance works meanwhile. */
interface Model {
  now: number
  sessions: Map<string, { v: number; expiresAt: number }>
  down: boolean
  /** While Redis is down, the one instance used (the other cannot see its outbox). */
  active: number
  /**
   * Redis's side of the design rule "a destroy wins over any write queued in an outbox": sids Redis holds as
   * a session key (written while up, or replayed), sids it holds a tombstone for (a session key destroyed
   * while up; tombstones outlive these tests), and what the active instance queued during this outage.
   */
  keys: Set<string>
  tombstones: Set<string>
  queuedWrites: Set<string>
  queuedDestroys: Set<string>
}
interface Real {
  stores: TieredStore[]
  advance(ms: number): void
  reopen(i: number): Promise<void>
  redis: RedisProcess
}

const SIDS = ['a', 'b', 'c', 'd']
const sids = fc.constantFrom(...SIDS)
const ttl = fc.integer({ min: 1, max: 20_000 })
const instance = fc.constantFrom(0, 1)
const usable = (m: Model, i: number) => !m.down || m.active === i

/**
 * Time moves on between two writes. NB: versions are wall-clock based, so two writes of one session made by
 * different instances within the same millisecond (one of them while cut off from Redis) are ordered
 * arbitrarily; the model, like reality, never makes two writes at the same instant.
 */
function tick(m: Model, r: Real): void {
  m.now += 1
  r.advance(1)
}

function live(m: Model, sid: string): number | undefined {
  const s = m.sessions.get(sid)
  return s !== undefined && s.expiresAt > m.now ? s.v : undefined
}

/** While Redis is down, an instance may not hold a session locally: TS_REDIS_UNAVAILABLE is then its answer. */
function unavailable(m: Model, error: unknown): boolean {
  return m.down && (error as { code?: string })?.code === 'TS_REDIS_UNAVAILABLE'
}

class SetCommand implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly sid: string,
    readonly v: number,
    readonly ttlMs: number,
  ) {}
  check = (m: Readonly<Model>) => usable(m as Model, this.i)
  async run(m: Model, r: Real) {
    tick(m, r)
    await r.stores[this.i]?.set(this.sid, sharedSession(m.now, this.ttlMs, { v: this.v }))
    m.sessions.set(this.sid, { v: this.v, expiresAt: m.now + this.ttlMs })
    if (m.down) {
      m.queuedWrites.add(this.sid)
      m.queuedDestroys.delete(this.sid)
    } else {
      m.keys.add(this.sid)
      m.tombstones.delete(this.sid)
    }
  }
  toString = () => `${this.i}.set(${this.sid}, ${this.v}, ${this.ttlMs}ms)`
}
class Get implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly sid: string,
  ) {}
  check = (m: Readonly<Model>) => usable(m as Model, this.i)
  async run(m: Model, r: Real) {
    try {
      const got = (await r.stores[this.i]?.get(this.sid)) as { v?: number } | undefined
      expect(got?.v).toBe(live(m, this.sid))
    } catch (error) {
      if (!unavailable(m, error)) throw error
    }
  }
  toString = () => `${this.i}.get(${this.sid})`
}
class Destroy implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly sid: string,
  ) {}
  check = (m: Readonly<Model>) => usable(m as Model, this.i)
  async run(m: Model, r: Real) {
    tick(m, r)
    await r.stores[this.i]?.destroy(this.sid)
    m.sessions.delete(this.sid)
    if (m.down) {
      m.queuedDestroys.add(this.sid)
      m.queuedWrites.delete(this.sid)
    } else if (m.keys.delete(this.sid)) m.tombstones.add(this.sid)
  }
  toString = () => `${this.i}.destroy(${this.sid})`
}
class Touch implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly i: number,
    readonly sid: string,
    readonly ttlMs: number,
  ) {}
  check = (m: Readonly<Model>) => usable(m as Model, this.i)
  async run(m: Model, r: Real) {
    tick(m, r)
    try {
      await r.stores[this.i]?.touch(this.sid, sharedSession(m.now, this.ttlMs))
    } catch (error) {
      if (!unavailable(m, error)) throw error
      return
    }
    const s = m.sessions.get(this.sid)
    if (s !== undefined && s.expiresAt > m.now && m.now + this.ttlMs > s.expiresAt)
      s.expiresAt = m.now + this.ttlMs
  }
  toString = () => `${this.i}.touch(${this.sid}, ${this.ttlMs}ms)`
}
class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  async run(m: Model, r: Real) {
    // NB: time passing means the background work of that time is done: deferred touches are committed once a
    // second (promise 8), so before the clock jumps by a second or more, each open instance commits them.
    if (this.ms >= 1000) for (const store of r.stores) await store?.flush().catch(() => undefined)
    m.now += this.ms
    r.advance(this.ms)
  }
  toString = () => `advance(${this.ms}ms)`
}
class Flush implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = () => true
  async run(_m: Model, r: Real) {
    await r.stores[this.i]?.flush()
  }
  toString = () => `${this.i}.flush()`
}
class Reopen implements fc.AsyncCommand<Model, Real> {
  constructor(readonly i: number) {}
  check = (m: Readonly<Model>) => usable(m as Model, this.i)
  async run(_m: Model, r: Real) {
    await r.reopen(this.i)
  }
  toString = () => `${this.i}.close-and-reopen()`
}
class KillRedis implements fc.AsyncCommand<Model, Real> {
  constructor(readonly active: number) {}
  check = (m: Readonly<Model>) => !m.down
  async run(m: Model, r: Real) {
    // NB: first every instance reads every session, so each holds what Redis holds now. Without this the model
    // would rely on an invalidation being applied before the kill: one Redis sent just before it died can
    // arrive after the instance heard its main connection close, or never (found by the soak run, seeds
    // 35494217 twice); serving that copy during the outage is the known limit of serving local copies then.
    // (With localTtlMs 0 the model never relies on invalidations while Redis is up either.)
    for (const store of r.stores) for (const sid of SIDS) await store.get(sid)
    const downs = r.stores.map((s) => (engineOf(s).connected ? once(s, 'disconnect') : undefined))
    await r.redis.kill9()
    await Promise.all(downs)
    m.down = true
    m.active = this.active
  }
  toString = () => `kill-redis(then use ${this.active})`
}
class RestartRedis implements fc.AsyncCommand<Model, Real> {
  check = (m: Readonly<Model>) => m.down
  async run(m: Model, r: Real) {
    await r.redis.restart()
    for (const store of r.stores) {
      await ready(store)
      await engineOf(store).replayed()
    }
    m.down = false
    // The replay: a queued write of a session Redis holds a tombstone for is dropped (a destroy wins); a live
    // one becomes a key; a queued destroy of a key leaves a tombstone.
    for (const sid of m.queuedWrites) {
      if (m.tombstones.has(sid)) m.sessions.delete(sid)
      else if (live(m, sid) !== undefined) m.keys.add(sid)
    }
    for (const sid of m.queuedDestroys) if (m.keys.delete(sid)) m.tombstones.add(sid)
    m.queuedWrites.clear()
    m.queuedDestroys.clear()
  }
  toString = () => 'restart-redis()'
}

const set = fc.tuple(instance, sids, fc.nat(10_000), ttl).map(([i, s, v, t]) => new SetCommand(i, s, v, t))
const get = fc.tuple(instance, sids).map(([i, s]) => new Get(i, s))
const sharedCommands = [
  set,
  set,
  get,
  get,
  get,
  fc.tuple(instance, sids).map(([i, s]) => new Destroy(i, s)),
  fc.tuple(instance, sids, ttl).map(([i, s, t]) => new Touch(i, s, t)),
  fc.integer({ min: 1, max: 4000 }).map((ms) => new Advance(ms)),
  instance.map((i) => new Flush(i)),
  instance.map((i) => new Reopen(i)),
  instance.map((i) => new KillRedis(i)),
  instance.map((i) => new KillRedis(i)),
  fc.constant(new RestartRedis()),
  fc.constant(new RestartRedis()),
]

/** Runs `runs` random sequences against two instances on `redis`; returns how many commands ran. */
async function runSharedModel(redis: () => RedisProcess, runs: number, seed: number): Promise<number> {
  let commands = 0
  await fc.assert(
    fc.asyncProperty(fc.commands(sharedCommands, { maxCommands: 40, size: 'max' }), async (cmds) => {
      const server = redis()
      if (!(await isUp(server))) await server.restart()
      // NB: localTtlMs 0: every local copy is checked against Redis when Redis is up, so the model needs no
      // knowledge of when invalidations arrive (the coherence tests cover delivery).
      const { open, clock } = sharedStores(() => ({ url: server.url, commandTimeout: 300, localTtlMs: 0 }))
      const stores = [
        await open('a', { memory: { maxBytes: 4096 } }),
        await open('b', { memory: { maxBytes: 4096 } }),
      ]
      const real: Real = {
        stores,
        redis: server,
        advance: (ms) => clock.advance(ms),
        async reopen(i) {
          await stores[i]?.close()
          // The same SQLite file (and so the same outbox); Redis may be down, so do not wait for it.
          const store = await open(i === 0 ? 'a' : 'b', { memory: { maxBytes: 4096 } }, false)
          if (engineOf(store).connected || !(await isUp(server))) {
            stores[i] = store
            return
          }
          stores[i] = await ready(store)
        },
      }
      const model: Model = {
        now: clock.now(),
        sessions: new Map(),
        down: false,
        active: 0,
        keys: new Set(),
        tombstones: new Set(),
        queuedWrites: new Set(),
        queuedDestroys: new Set(),
      }
      commands += [...cmds].length
      try {
        await fc.asyncModelRun(() => ({ model, real }), cmds)
      } finally {
        // NB: close this run's instances now, not when the test ends: stores left open from earlier runs would
        // each receive every later run's invalidations, making a long soak run quadratic (it timed out at 1,000).
        for (const store of real.stores) await store.close()
      }
    }),
    { numRuns: runs, seed },
  )
  return commands
}

async function isUp(server: RedisProcess): Promise<boolean> {
  const { ping } = await import('./helpers/redis-server.js')
  return ping(server.port)
}

describe('model-based test (shared mode, two instances)', () => {
  let redis: RedisProcess | undefined
  beforeAll(async () => {
    redis = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] })
  })
  afterAll(async () => {
    await redis?.destroy()
  })

  it('random sequences with Redis killed and restarted, instances switched and restarted, never diverge from a Map', async () => {
    const runs = soakRuns(25)
    const seed = soakSeed()
    const commands = await runSharedModel(() => redis as RedisProcess, runs, seed)
    if (process.env.SOAK)
      console.info(`shared model: seed ${seed}, ${runs} runs, ${commands} commands, 0 divergences`)
    expect(commands).toBeGreaterThan(400)
  })
})

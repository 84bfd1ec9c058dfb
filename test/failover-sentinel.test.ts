// A Sentinel failover under HTTP load on tieredSession() in shared mode: 1 master, 1 replica, 3 sentinels
// (quorum 2, down-after 500 ms); the master is SIGKILLed a sixth of the way into the load, the sentinels promote
// the replica, and the store must follow it without failing a request, waiting past commandTimeout or losing an
// acknowledged write (with waitForReplicas: 1; without it, Redis's asynchronous replication may lose the last
// writes before the kill, and only those); its invalidation channel must come back.

import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import express from 'express'
import { Redis } from 'ioredis'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { tieredSession } from '../src/middleware/tiered-session.js'
import type { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import { type SentinelSetup, startSentinelSetup } from './helpers/redis-sentinel.js'
import { pollDelay, type RedisProcess, redisCommand } from './helpers/redis-server.js'
import { engineOf, readUntilTracked, ready, redisOf, sharedStores } from './helpers/shared-stores.js'
import { sessionOf, sidFromSetCookie } from './helpers/tiered-apps.js'

const COMMAND_TIMEOUT = 300
/** What a request spends outside Redis on two cores shared by autocannon, the app and five Redis processes (ms). */
const MARGIN = 200
const SESSIONS = 40
const REQUESTS = 4200
/** Requests per second over all connections: the load must outlast the failover (~1.5-2.5 s) by seconds. */
const RATE = 600
/** After the failover window closes, how long the store may take to notice (reconnect; with waitForReplicas,
 * the store's 1 s pause after an unconfirmed write and its 1 s retry of the outbox) before every request must
 * be back to normal. */
const SETTLE_MS = 2000
/** Replication on loopback lags by far less than this: a write lost in the failover was acknowledged at most
 * this long before the kill. */
const REPLICATION_LAG_MS = 1000
/** Deadline for anything the store does in the background (replaying the outbox, re-subscribing). */
const DEADLINE_MS = 10_000

interface Response {
  n: number
  sid: string
  status: number
  /** performance.now() when the response finished. */
  at: number
  /** store.stats().outbox when the response finished. */
  outbox: number
}

/** `promise`, or a failure naming `what` (and `state()`) after the deadline instead of a hung test. */
async function within<T>(promise: Promise<T>, what: string, state: () => unknown = () => ''): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new Error(`timed out after ${DEADLINE_MS} ms waiting for ${what} ${JSON.stringify(state())}`)),
      DEADLINE_MS,
    )
  })
  try {
    return await Promise.race([promise, deadline])
  } finally {
    clearTimeout(timer)
  }
}

/** ready(store) within the deadline; a failure shows the store's state. */
function readyWithin(store: TieredStore, what: string): Promise<TieredStore> {
  const engine = engineOf(store)
  return within(ready(store), `${what} to be connected and coherent`, () => ({
    connected: engine.connected,
    coherent: engine.coherent,
    outbox: store.stats().outbox,
  }))
}

/** Resolves once `check()` holds, polling with a short delay; rejects naming `what` after the deadline. */
async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await pollDelay()
  }
}

function sentinelClient(setup: SentinelSetup): Redis {
  return new Redis({
    sentinels: setup.addresses,
    name: setup.name,
    // NB: fail fast instead of queueing while the master is away, and look for the new one every 50 ms.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: () => 50,
    sentinelRetryStrategy: () => 50,
    // NB: no failoverDetector: SIGKILL drops the connection anyway, and with ioredis 6.0.0 a +switch-master
    // that arrives while the client is reconnecting ends the client for good ('end', no more retries).
  })
}

async function failoverUnderLoad(setup: SentinelSetup, waitForReplicas: number) {
  const timeline: string[] = []
  const mark = (what: string) => timeline.push(`${Math.round(performance.now())} ${what}`)
  onTestFinished(({ task }) => {
    if (task.result?.state === 'fail')
      console.log(`timeline (performance.now() ms):\n${timeline.slice(0, 300).join('\n')}`)
  })
  const clients: Redis[] = []
  onTestFinished(async () => {
    for (const client of clients) client.disconnect()
  })
  const { open } = sharedStores(() => {
    const client = sentinelClient(setup)
    clients.push(client)
    return { client: client as never, commandTimeout: COMMAND_TIMEOUT, waitForReplicas }
  })
  const realClock = { clock: { now: () => Date.now() } }
  const watchStore = (name: string, store: TieredStore) => {
    for (const event of ['connect', 'disconnect', 'coherence'])
      store.on(event, (e?: unknown) => mark(`store ${name} ${event} ${JSON.stringify(e ?? '')}`))
    store.on('error', (e: Error & { code?: string }) =>
      mark(
        `store ${name} error ${e.code}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}`,
      ),
    )
  }

  const b = await open('other', realClock)
  watchStore('B', b)
  const bCoherence: boolean[] = []
  b.on('coherence', ({ live }: { live: boolean }) => bCoherence.push(live))
  const store = await open('app', realClock)
  watchStore('A', store)
  let disconnects = 0
  store.on('disconnect', () => disconnects++)

  const victim = setup.serverOn(await setup.masterPort())
  const times: { killed?: number; promoted?: number; windowEnd?: number } = {}
  let failover: Promise<RedisProcess> | undefined
  let served = 0
  const responses: Response[] = []

  const app = express()
  app.use((req, res, next) => {
    // NB: every write request, also one that failed before its route ran (a session that could not be loaded).
    const n = /^\/write\/(\d+)$/.exec(req.path)?.[1]
    if (n !== undefined) {
      res.on('finish', () => {
        const { sid = '' } = res.locals as { sid?: string }
        responses.push({
          n: Number(n),
          sid,
          status: res.statusCode,
          at: performance.now(),
          outbox: store.stats().outbox,
        })
      })
    }
    next()
  })
  app.use(tieredSession({ secret: 'failover', store, cookie: { maxAge: 3_600_000 } }))
  app.post('/login', (req, res) => {
    sessionOf(req).user = 'u'
    res.json({ ok: true })
  })
  app.post('/write/:n', (req, res) => {
    served++
    if (served === REQUESTS / 6) {
      const killedMaster = victim
      times.killed = performance.now()
      mark(`kill ${killedMaster.port}`)
      failover = (async () => {
        await killedMaster.kill9()
        const promoted = await setup.awaitFailover(killedMaster.port)
        times.promoted = performance.now()
        mark(`promoted ${promoted.port}`)
        // NB: with waitForReplicas the new master needs a replica to confirm writes: the old master, back.
        if (waitForReplicas > 0) await setup.rejoinAsReplica(killedMaster)
        times.windowEnd = performance.now()
        mark('window end')
        return promoted
      })()
    }
    const n = Number(req.params.n)
    sessionOf(req)[`k${n}`] = n
    res.locals.sid = sessionOf(req).id
    res.json({ sid: sessionOf(req).id, n })
  })
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const { port } = server.address() as AddressInfo

  const cookies: string[] = []
  const sids: string[] = []
  for (let i = 0; i < SESSIONS; i++) {
    const res = await request(server).post('/login').expect(200)
    sids.push(sidFromSetCookie(res.headers['set-cookie']) as string)
    cookies.push(([] as string[]).concat(res.headers['set-cookie'] ?? [])[0]?.split(';')[0] as string)
  }

  let next = 0
  const load: Parameters<typeof autocannon>[0] & { overallRate: number } = {
    url: `http://127.0.0.1:${port}`,
    connections: 10,
    amount: REQUESTS,
    overallRate: RATE,
    requests: [
      {
        method: 'POST',
        setupRequest: (req: Record<string, unknown>) => {
          const n = next++
          return { ...req, path: `/write/${n}`, headers: { cookie: cookies[n % SESSIONS] } }
        },
      },
    ],
  }
  const result = await autocannon(load)
  mark('load done')
  const promoted = await within(failover as Promise<RedisProcess>, 'the failover')
  const { killed = 0, windowEnd = 0 } = times

  // --- during the load (soft: a failure here must not hide what the checks after the load find) ----------
  const before = responses.filter((r) => r.at < killed)
  const inWindow = responses.filter((r) => r.at >= killed && r.at <= windowEnd + SETTLE_MS)
  const after = responses.filter((r) => r.at > windowEnd + SETTLE_MS)
  const failed = responses.filter((r) => r.status < 200 || r.status >= 300)
  // The failover really happened under load, and the load went on well past it.
  expect.soft(disconnects).toBeGreaterThanOrEqual(1)
  expect.soft(inWindow.length).toBeGreaterThan(0)
  expect.soft(after.length).toBeGreaterThan(200)
  // No request failed: not before, not during (the outbox takes the writes), not after the failover.
  expect.soft(failed.map((r) => ({ status: r.status, atMsAfterKill: Math.round(r.at - killed) }))).toEqual([])
  expect.soft(result.non2xx).toBe(0)
  expect.soft(result.errors).toBe(0)
  expect.soft(responses).toHaveLength(REQUESTS)
  // Outbox writes only inside the failover window: none before the kill; after it, the outbox only shrinks.
  expect.soft(before.filter((r) => r.outbox > 0).map((r) => r.n)).toEqual([])
  const grew = after.filter((r, i) => i > 0 && r.outbox > (after[i - 1] as Response).outbox)
  expect
    .soft(grew.map((r) => ({ outbox: r.outbox, atMsAfterWindow: Math.round(r.at - windowEnd) })))
    .toEqual([])
  // No request waited past commandTimeout: its store calls share one (the read, the write, a confirmation),
  // and none waits in an offline queue. MARGIN is what the request spends outside Redis on a loaded machine.
  expect.soft(result.latency.max).toBeLessThan(COMMAND_TIMEOUT + MARGIN)

  // --- after the load ------------------------------------------------------------------------------------
  await readyWithin(store, 'store A')
  await engineOf(store).replayed()
  await until(() => store.stats().outbox === 0, 'the outbox to be replayed')
  expect(store.stats().outbox).toBe(0)

  // The store follows the new master: a write after the failover is on the promoted server.
  const key = (sid: string) => redisOf(store).key(storedKey(sid))
  const moved = 0
  const sid = sids[moved] as string
  await request(server)
    .post('/write/999999')
    .set('cookie', cookies[moved] as string)
    .expect(200)
  const onNewMaster = await redisCommand(promoted.port, ['HGET', key(sid), 'p'])
  expect(String(onNewMaster)).toContain('"k999999":999999')

  // B's invalidation subscription died with the master: B learnt that it dropped (everything it had cached
  // became unverified), then got it back; it hears A's writes again.
  expect(bCoherence).toContain(false)
  await readyWithin(b, 'store B')
  expect(await b.get(sid)).toMatchObject({ k999999: 999999 })
  // NB: a session is tracked for an instance from its third read there (see readUntilTracked).
  expect(await readUntilTracked(b, sid)).toMatchObject({ k999999: 999999 })
  let invalidations = 0
  b.on('invalidation', () => invalidations++)
  await request(server)
    .post('/write/1000000')
    .set('cookie', cookies[moved] as string)
    .expect(200)
  // NB: B keeps serving its trusted copy until an invalidation arrives (localTtlMs is 15 s): a change within
  // the deadline is the invalidation's doing.
  await until(
    async () => ((await b.get(sid)) as Record<string, unknown> | undefined)?.k1000000 === 1000000,
    "B to hear of A's write",
  )
  expect(invalidations).toBeGreaterThan(0)

  // Every acknowledged write, read by an instance that never saw any of them.
  const fresh = await open('fresh', realClock)
  const lost: Response[] = []
  const acknowledged = responses.filter((r) => r.status >= 200 && r.status < 300)
  for (const r of acknowledged) {
    const got = (await fresh.get(r.sid)) as Record<string, unknown> | undefined
    if (got?.[`k${r.n}`] !== r.n) lost.push(r)
  }
  return {
    failoverMs: (times.promoted ?? 0) - killed,
    peakOutbox: Math.max(0, ...responses.map((r) => r.outbox)),
    acknowledged: acknowledged.length,
    lost,
    killed,
    windowEnd,
    disconnects,
  }
}

describe('a Sentinel failover under HTTP load (shared mode, tieredSession)', () => {
  let setup: SentinelSetup
  beforeEach(async () => {
    setup = await startSentinelSetup({ downAfterMs: 500, failoverTimeoutMs: 1000 })
  })
  afterEach(async () => {
    await setup?.stop()
  })

  it('waitForReplicas: 1 — no request fails or waits past commandTimeout, the store follows the new master, invalidations come back, and no acknowledged write is lost', async () => {
    const run = await failoverUnderLoad(setup, 1)
    expect(run.lost.map((r) => r.n)).toEqual([])
    console.info(
      `sentinel, waitForReplicas 1: failover ${Math.round(run.failoverMs)} ms, outbox peak ${run.peakOutbox}, ` +
        `lost 0 of ${run.acknowledged}`,
    )
  })

  it('waitForReplicas: 0 — the same, and only writes acknowledged just before the kill may be lost', async () => {
    const run = await failoverUnderLoad(setup, 0)
    // Asynchronous replication: what the old master acknowledged but had not sent to its replica is gone.
    // Only writes acknowledged shortly before the kill can be among them; none made through the new master.
    for (const r of run.lost) {
      expect(r.at).toBeGreaterThan(run.killed - REPLICATION_LAG_MS)
      expect(r.at).toBeLessThan(run.windowEnd)
    }
    console.info(
      `sentinel, waitForReplicas 0: failover ${Math.round(run.failoverMs)} ms, outbox peak ${run.peakOutbox}, ` +
        `lost ${run.lost.length} of ${run.acknowledged}`,
    )
  })
})

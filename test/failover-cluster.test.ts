// A Redis Cluster failover under HTTP load on tieredSession() in shared mode: 3 masters with a replica each; the
// master that holds instance B's invalidation subscription is SIGKILLed a sixth of the way into the load, its
// replica takes over its slots, and the store must follow without failing a request, waiting past
// commandTimeout or losing an acknowledged write (with waitForReplicas: 1); B must learn that its invalidation
// channel dropped and get it back.

import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import autocannon from 'autocannon'
import express from 'express'
import { Cluster } from 'ioredis'
import request from 'supertest'
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from 'vitest'
import { tieredSession } from '../src/middleware/tiered-session.js'
import type { TieredStore } from '../src/store.js'
import { storedKey } from './helpers/handles.js'
import {
  pollDelay,
  type RedisCluster,
  type RedisProcess,
  redisCommand,
  startCluster,
} from './helpers/redis-server.js'
import { engineOf, ready, redisOf, sharedStores } from './helpers/shared-stores.js'
import { sessionOf, sidFromSetCookie } from './helpers/tiered-apps.js'

const COMMAND_TIMEOUT = 300
/** What a request spends outside Redis on two cores shared by autocannon, the app and six redis-servers (ms). */
const MARGIN = 200
const SESSIONS = 40
const REQUESTS = 4200
/** Requests per second over all connections: the load must outlast the failover (~2-3 s) by seconds. */
const RATE = 600
/** After the failover window closes, how long the store may take to notice (slot refresh; with waitForReplicas,
 * the store's 1 s pause after an unconfirmed write and its 1 s retry of the outbox) before every request must
 * be back to normal. */
const SETTLE_MS = 2000
/** Replication on loopback lags by far less than this: a write lost in the failover was acknowledged at most
 * this long before the kill. */
const REPLICATION_LAG_MS = 1000
/** Deadline for anything the store does in the background (replaying the outbox, re-subscribing). */
const DEADLINE_MS = 10_000
/** How many times B is reopened so that its invalidation subscription lands on a master (ioredis picks a node). */
const SUBSCRIBER_PLACEMENT_TRIES = 12

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

function clusterClient(cluster: RedisCluster): Cluster {
  return new Cluster(cluster.nodes, {
    // NB: fail fast instead of queueing while the cluster is not ready; retry redirections and CLUSTERDOWN
    // quickly (the store bounds each command by commandTimeout anyway); refresh the slots often.
    enableOfflineQueue: false,
    retryDelayOnFailover: 50,
    retryDelayOnClusterDown: 50,
    retryDelayOnTryAgain: 50,
    slotsRefreshTimeout: 500,
    slotsRefreshInterval: 1000,
    clusterRetryStrategy: () => 100,
    redisOptions: { connectTimeout: 500, maxRetriesPerRequest: 0 },
  })
}

/** The port of the node holding `channel`'s one subscriber (PUBSUB NUMSUB is per node in a cluster). */
async function subscriberNode(cluster: RedisCluster, channel: string): Promise<number | undefined> {
  for (const server of cluster.processes) {
    const reply = await redisCommand(server.port, ['PUBSUB', 'NUMSUB', channel])
    if (Array.isArray(reply) && Number(reply[1]) > 0) return server.port
  }
  return undefined
}

async function failoverUnderLoad(cluster: RedisCluster, waitForReplicas: number) {
  const timeline: string[] = []
  const mark = (what: string) => timeline.push(`${Math.round(performance.now())} ${what}`)
  onTestFinished(({ task }) => {
    if (task.result?.state === 'fail')
      console.log(`timeline (performance.now() ms):\n${timeline.slice(0, 300).join('\n')}`)
  })
  const clients: Cluster[] = []
  onTestFinished(async () => {
    for (const client of clients) client.disconnect()
  })
  const { open, prefix } = sharedStores(() => {
    const client = clusterClient(cluster)
    clients.push(client)
    return { client: client as never, commandTimeout: COMMAND_TIMEOUT, waitForReplicas }
  })
  const channel = `${prefix}invalidations`
  const realClock = { clock: { now: () => Date.now() } }
  const watchStore = (name: string, store: TieredStore) => {
    for (const event of ['connect', 'disconnect', 'coherence'])
      store.on(event, (e?: unknown) => mark(`store ${name} ${event} ${JSON.stringify(e ?? '')}`))
    store.on('error', (e: Error & { code?: string }) =>
      mark(
        `store ${name} error ${e.code}: ${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` +
          ` [memory entries ${store.stats().memory.entries}, outbox ${store.stats().outbox}]`,
      ),
    )
  }

  // B first, alone on the channel, so PUBSUB NUMSUB tells where its subscription is; reopened until a master.
  const masters = new Set((await cluster.masters()).map((m) => m.port))
  let other: TieredStore | undefined
  let victim: RedisProcess | undefined
  for (let i = 0; i < SUBSCRIBER_PLACEMENT_TRIES && victim === undefined; i++) {
    await other?.close()
    other = await open(`other-${i}`, realClock)
    const port = await subscriberNode(cluster, channel)
    if (port !== undefined && masters.has(port)) victim = cluster.processOf(port)
  }
  if (other === undefined || victim === undefined)
    throw new Error(`B's subscription never landed on a master in ${SUBSCRIBER_PLACEMENT_TRIES} tries`)
  watchStore('B', other)
  const b = other
  const bCoherence: boolean[] = []
  b.on('coherence', ({ live }: { live: boolean }) => bCoherence.push(live))
  const store = await open('app', realClock)
  watchStore('A', store)
  let disconnects = 0
  store.on('disconnect', () => disconnects++)

  const watch = await cluster.watchFailover(victim.port)
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
      const killedMaster = victim as RedisProcess
      times.killed = performance.now()
      mark(`kill ${killedMaster.port}`)
      failover = (async () => {
        await killedMaster.kill9()
        const promoted = await watch.promoted()
        times.promoted = performance.now()
        mark(`promoted ${promoted.port}`)
        // NB: with waitForReplicas the new master needs a replica to confirm writes: the old master, back.
        if (waitForReplicas > 0) await cluster.rejoinAsReplica(killedMaster)
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

  // The store follows the new master: a write after the failover, to a session in the slots that moved, is
  // on the promoted node.
  const key = (sid: string) => redisOf(store).key(storedKey(sid))
  const slotOf = async (sid: string) =>
    Number(await redisCommand(promoted.port, ['CLUSTER', 'KEYSLOT', key(sid)]))
  let moved = -1
  for (let i = 0; i < SESSIONS && moved < 0; i++) {
    const slot = await slotOf(sids[i] as string)
    if (watch.slots.some(([from, to]) => slot >= from && slot <= to)) moved = i
  }
  expect(moved).toBeGreaterThanOrEqual(0)
  const sid = sids[moved] as string
  await request(server)
    .post('/write/999999')
    .set('cookie', cookies[moved] as string)
    .expect(200)
  const onNewMaster = await redisCommand(promoted.port, ['HGET', key(sid), 'p'])
  expect(String(onNewMaster)).toContain('"k999999":999999')

  // B's invalidation subscription was on the killed master: B must have learnt that it dropped (everything it
  // had cached became unverified), then got it back; it hears A's writes again.
  expect(bCoherence).toContain(false)
  await readyWithin(b, 'store B')
  expect(await b.get(sid)).toMatchObject({ k999999: 999999 })
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
  const lostDetail: unknown[] = []
  const acknowledged = responses.filter((r) => r.status >= 200 && r.status < 300)
  for (const r of acknowledged) {
    const got = (await fresh.get(r.sid)) as Record<string, unknown> | undefined
    if (got?.[`k${r.n}`] === r.n) continue
    lost.push(r)
    const slot = await slotOf(r.sid)
    lostDetail.push({
      n: r.n,
      atMsAfterKill: Math.round(r.at - killed),
      outboxAtAck: r.outbox,
      inMovedSlots: watch.slots.some(([from, to]) => slot >= from && slot <= to),
      // The same session's writes just before and after it: which of them survived.
      neighbours: [-3, -2, -1, 1, 2, 3]
        .map((d) => `${d}:${got?.[`k${r.n + d * SESSIONS}`] === r.n + d * SESSIONS}`)
        .join(' '),
    })
  }
  return {
    failoverMs: (times.promoted ?? 0) - killed,
    peakOutbox: Math.max(0, ...responses.map((r) => r.outbox)),
    acknowledged: acknowledged.length,
    lost,
    lostDetail,
    killed,
    windowEnd,
    disconnects,
  }
}

describe('a Redis Cluster failover under HTTP load (shared mode, tieredSession)', () => {
  let cluster: RedisCluster
  beforeEach(async () => {
    cluster = await startCluster({ masters: 3, replicas: 1, nodeTimeoutMs: 1000 })
  })
  afterEach(async () => {
    await cluster?.stop()
  })

  it('waitForReplicas: 1 — no request fails or waits past commandTimeout, the store follows the promoted replica, invalidations come back, and no acknowledged write is lost', async () => {
    const run = await failoverUnderLoad(cluster, 1)
    expect(run.lostDetail).toEqual([])
    console.info(
      `cluster, waitForReplicas 1: failover ${Math.round(run.failoverMs)} ms, outbox peak ${run.peakOutbox}, ` +
        `lost 0 of ${run.acknowledged}`,
    )
  })

  it('waitForReplicas: 0 — the same, and only writes acknowledged just before the kill may be lost', async () => {
    const run = await failoverUnderLoad(cluster, 0)
    // Asynchronous replication: what the old master acknowledged but had not sent to its replica is gone.
    // Only writes acknowledged shortly before the kill can be among them; none made through the new master.
    for (const r of run.lost) {
      expect(r.at).toBeGreaterThan(run.killed - REPLICATION_LAG_MS)
      expect(r.at).toBeLessThan(run.windowEnd)
    }
    console.info(
      `cluster, waitForReplicas 0: failover ${Math.round(run.failoverMs)} ms, outbox peak ${run.peakOutbox}, ` +
        `lost ${run.lost.length} of ${run.acknowledged}`,
    )
  })
})

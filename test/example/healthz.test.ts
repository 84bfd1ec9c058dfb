// The example's /healthz (store.health() for a readiness probe) through a real `node example/server.js` in
// shared mode: 200 while Redis is up, 503 once Redis is down and writes wait in the outbox, 200 after replay.

import { randomBytes } from 'node:crypto'
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest'
import { freePort, useRedis } from '../helpers/redis-server.js'
import { makeTempDir } from '../helpers/temp-dir.js'
import { ensureBuilt, startExample } from './example-process.js'

const SECRET = randomBytes(32).toString('base64url')
/** How long to keep asking for a state the example reaches in the background (the load, the replay), in ms. */
const POLL_MS = 20_000

type Health = {
  ok: boolean
  problems: string[]
  redis: { connected: boolean } | null
  outbox: { depth: number }
}

describe('the example /healthz in shared mode', () => {
  const redis = useRedis()

  beforeAll(async () => {
    await ensureBuilt()
  }, 120_000)

  it('answers 200 while Redis is up, 503 while writes wait in the outbox, and 200 once they are replayed', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const shop = await startExample({
      PORT: String(await freePort()),
      SESSION_SECRET: SECRET,
      SESSION_DIR: dir.path,
      REDIS_URL: redis.url,
    })
    onTestFinished(async () => {
      await shop.stop()
    })
    const health = async (): Promise<[number, Health]> => {
      const res = await fetch(`${shop.url}/healthz`)
      return [res.status, (await res.json()) as Health]
    }
    const until = async (
      predicate: ([status, body]: [number, Health]) => boolean,
    ): Promise<[number, Health]> => {
      const deadline = performance.now() + POLL_MS
      while (performance.now() < deadline) {
        const answer = await health()
        if (predicate(answer)) return answer
      }
      const metrics = await (await fetch(`${shop.url}/metrics`)).text()
      throw new Error(
        `/healthz never reached the state; last: ${JSON.stringify(await health())}\n${shop.output()}\n${metrics
          .split('\n')
          .filter((l) => l.includes('errors_total') || l.includes('outbox'))
          .join('\n')}`,
      )
    }

    const [status, body] = await until(([, b]) => b.redis?.connected === true)
    expect(status).toBe(200)
    expect(body).toMatchObject({ ok: true, problems: [], outbox: { depth: 0 } })

    await redis.server.kill9()
    await until(([, b]) => b.redis?.connected === false)
    const load = await fetch(`${shop.url}/admin/load`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'count=20',
    })
    expect(load.status).toBe(202)
    const [down, failing] = await until(([s]) => s === 503)
    expect(down).toBe(503)
    expect(failing.ok).toBe(false)
    expect(failing.problems[0]).toMatch(/^Redis is down and \d+ writes wait in the outbox$/)

    await redis.server.restart()
    const [back, healthy] = await until(([s, b]) => s === 200 && b.outbox.depth === 0)
    expect(back).toBe(200)
    expect(healthy).toMatchObject({ ok: true, redis: { connected: true } })
  }, 60_000)
})

// The redis-server test helper itself, against real redis-server processes.

import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { describe, expect, it, onTestFinished } from 'vitest'
import {
  freePort,
  parseInfo,
  type RedisProcess,
  redisCommand,
  startRedis,
  useCluster,
  useRedis,
} from './helpers/redis-server.js'

async function started(options?: Parameters<typeof startRedis>[0]): Promise<RedisProcess> {
  const server = await startRedis(options)
  onTestFinished(() => server.destroy())
  return server
}

describe('startRedis()', () => {
  it('starts a server of its own on a free loopback port that answers PING', async () => {
    const server = await started()
    expect(server.host).toBe('127.0.0.1')
    expect(server.port).not.toBe(6379)
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(await redisCommand(server.port, ['PING'])).toBe('PONG')
    const config = await redisCommand(server.port, ['CONFIG', 'GET', 'dir'])
    expect(config).toEqual(['dir', server.dir])
  })

  it('after kill9() the port refuses connections; restart() serves it again, empty, on the same port', async () => {
    const server = await started()
    expect(await redisCommand(server.port, ['SET', 'k', 'v'])).toBe('OK')
    const firstPid = server.pid

    await server.kill9()
    expect(() => process.kill(firstPid, 0)).toThrow(/ESRCH/)
    await expect(redisCommand(server.port, ['PING'])).rejects.toMatchObject({ code: 'ECONNREFUSED' })

    await server.restart()
    expect(server.pid).not.toBe(firstPid)
    expect(await redisCommand(server.port, ['PING'])).toBe('PONG')
    // --save '' and --appendonly no: a crash loses everything.
    expect(await redisCommand(server.port, ['GET', 'k'])).toBeNull()
  })

  it('stop() ends the process and keeps its dir; destroy() removes the dir', async () => {
    const server = await started()
    const { pid, dir } = server
    expect(() => process.kill(pid, 0)).not.toThrow()

    await server.stop()
    expect(() => process.kill(pid, 0)).toThrow(/ESRCH/)
    await expect(redisCommand(server.port, ['PING'])).rejects.toMatchObject({ code: 'ECONNREFUSED' })
    expect(existsSync(dir)).toBe(true)

    await server.destroy()
    expect(existsSync(dir)).toBe(false)
  })

  it('gives servers started in parallel different ports and dirs', async () => {
    const [a, b] = await Promise.all([started(), started()])
    expect(a.port).not.toBe(b.port)
    expect(a.dir).not.toBe(b.dir)
    expect(await redisCommand(a.port, ['PING'])).toBe('PONG')
    expect(await redisCommand(b.port, ['PING'])).toBe('PONG')
  })

  it("rejects with redis-server's output when it cannot start", async () => {
    expect.assertions(2)
    const error = await startRedis({ args: ['--no-such-directive', 'x'] }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'REDIS_START_FAILED' })
    expect((error as Error).message).toMatch(/Bad directive/)
  })

  it('rejects when the given port is taken, naming the port', async () => {
    expect.assertions(2)
    const blocker = createServer()
    const port = await freePort()
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve))
    onTestFinished(
      () => new Promise<void>((resolve, reject) => blocker.close((e) => (e ? reject(e) : resolve()))),
    )

    const error = await startRedis({ port }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'REDIS_PORT_IN_USE' })
    expect((error as Error).message).toContain(`127.0.0.1:${port}`)
  })

  it('refuses port 6379, the shared Redis', async () => {
    expect.assertions(1)
    await expect(startRedis({ port: 6379 })).rejects.toThrow(/6379/)
  })
})

describe('useRedis()', () => {
  const pids: number[] = []

  describe('inside the describe block', () => {
    const redis = useRedis()

    it('has a running server', async () => {
      pids.push(redis.server.pid)
      expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`)
      expect(await redisCommand(redis.port, ['PING'])).toBe('PONG')
    })
  })

  it('stops the server after the block', () => {
    expect(pids).toHaveLength(1)
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/)
  })
})

describe('useCluster()', () => {
  const pids: number[] = []

  describe('with the default 3 masters', () => {
    const redis = useCluster()

    it('every node reports cluster_state:ok with all 16384 slots assigned', async () => {
      expect(redis.nodes).toHaveLength(3)
      for (const node of redis.nodes) {
        const info = parseInfo(String(await redisCommand(node.port, ['CLUSTER', 'INFO'])))
        expect(info.get('cluster_state')).toBe('ok')
        expect(info.get('cluster_slots_assigned')).toBe('16384')
        expect(info.get('cluster_known_nodes')).toBe('3')
      }
    })

    it('all nodes are masters', async () => {
      for (const node of redis.nodes) {
        const role = await redisCommand(node.port, ['ROLE'])
        expect(Array.isArray(role) && role[0]).toBe('master')
      }
      const lines = String(await redisCommand(redis.nodes[0]?.port ?? 0, ['CLUSTER', 'NODES']))
        .trim()
        .split('\n')
      expect(lines).toHaveLength(3)
      for (const line of lines) expect(line.split(' ')[2]).toMatch(/(^|,)master(,|$)/)
      pids.push(...redis.cluster.processes.map((p) => p.pid))
    })
  })

  it('stops every node after the block', () => {
    expect(pids).toHaveLength(3)
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow(/ESRCH/)
  })
})

// redis-sentinel processes monitoring test-owned servers, for tests of ioredis Sentinel clients: one sentinel
// watching a master, or a whole failover setup (a master, a replica and 3 sentinels with short timeouts) with a
// wait for the sentinels to report a new master.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  awaitReplicaOnline,
  awaitReplicationLinks,
  freePort,
  pollDelay,
  type RedisProcess,
  redisCommand,
  startRedis,
} from './redis-server.js'
import { makeTempDir } from './temp-dir.js'

/** How long a sentinel may take to start before the test fails (a deadline, not a wait). */
const START_DEADLINE_MS = 10_000
/** How long the sentinels of a setup may take to discover each other and the replica. */
const DISCOVERY_DEADLINE_MS = 15_000
/** How long a failover may take by default before awaitFailover() rejects. */
const FAILOVER_DEADLINE_MS = 15_000

export interface SentinelProcess {
  readonly port: number
  /** The monitored master's name. */
  readonly name: string
  stop(): Promise<void>
}

export interface SentinelOptions {
  /** Sentinels that must agree the master is down. @default 1 */
  quorum?: number
  /** `down-after-milliseconds`. @default 60000 (no failover within a test) */
  downAfterMs?: number
  /** `failover-timeout`. @default Sentinel's own (180000) */
  failoverTimeoutMs?: number
}

/** Starts a sentinel monitoring 127.0.0.1:`masterPort` as `name`; resolves once it monitors it. */
export async function startSentinel(
  masterPort: number,
  name = 'mymaster',
  options: SentinelOptions = {},
): Promise<SentinelProcess> {
  const dir = makeTempDir('sentinel')
  const port = await freePort()
  const conf = join(dir.path, 'sentinel.conf')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir.path}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} ${options.quorum ?? 1}`,
      `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 60_000}`,
      ...(options.failoverTimeoutMs === undefined
        ? []
        : [`sentinel failover-timeout ${name} ${options.failoverTimeoutMs}`]),
      '',
    ].join('\n'),
  )
  const child = spawn('redis-server', [conf, '--sentinel'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const exited = once(child, 'exit')
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sentinel did not start:\n${output}`)), START_DEADLINE_MS)
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString()
      if (output.includes('+monitor master')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', () => {
      clearTimeout(timer)
      reject(new Error(`sentinel exited:\n${output}`))
    })
  })
  return {
    port,
    name,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      dir.remove()
    },
  }
}

/** A master, its replica and the sentinels watching them. */
export interface SentinelSetup {
  readonly name: string
  /** The two data servers; which one is the master changes with each failover (see {@link masterPort}). */
  readonly servers: readonly [RedisProcess, RedisProcess]
  /** The master when the setup started. */
  readonly master: RedisProcess
  /** The replica when the setup started. */
  readonly replica: RedisProcess
  readonly sentinels: readonly SentinelProcess[]
  /** Sentinel addresses, as ioredis's `sentinels` option takes them. */
  readonly addresses: Array<{ host: string; port: number }>
  /** The master's port as the first sentinel that answers reports it now. */
  masterPort(): Promise<number>
  /** The server on `port`. */
  serverOn(port: number): RedisProcess
  /**
   * Resolves once every sentinel reports a master other than `oldPort` and that server answers ROLE as a
   * master; resolves to it. Rejects after `timeoutMs`.
   */
  awaitFailover(oldPort: number, timeoutMs?: number): Promise<RedisProcess>
  /**
   * Restarts `server` (killed, say) on its port and dir and makes it a replica of the current master, then
   * resolves once its link is up. NB: Sentinel would reconfigure a restarted old master on its own, but only
   * after it has reported itself a master for 8 s (a fixed delay in Sentinel); this does the same at once.
   */
  rejoinAsReplica(server: RedisProcess, timeoutMs?: number): Promise<void>
  /** Stops the sentinels, then destroys both servers. */
  stop(): Promise<void>
}

export interface SentinelSetupOptions {
  /** @default 'mymaster' */
  name?: string
  /** Number of sentinels. @default 3 */
  sentinels?: number
  /** @default 2 */
  quorum?: number
  /** @default 500 */
  downAfterMs?: number
  /** @default 1000 */
  failoverTimeoutMs?: number
  /** Extra redis-server arguments for both data servers. */
  serverArgs?: string[]
}

/** SENTINEL MASTER's flat field/value reply as a map. */
function fieldMap(reply: unknown): Map<string, string> {
  const out = new Map<string, string>()
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out.set(String(reply[i]), String(reply[i + 1]))
  return out
}

async function reportedMasterPort(sentinelPort: number, name: string): Promise<number | undefined> {
  const reply = await redisCommand(sentinelPort, ['SENTINEL', 'get-master-addr-by-name', name])
  return Array.isArray(reply) && reply.length === 2 ? Number(reply[1]) : undefined
}

/**
 * Starts a master and a replica of it (linked and synced), then `sentinels` sentinels watching the master
 * with `quorum`, and resolves once every sentinel knows the replica and all the other sentinels (so a
 * failover can be agreed on at once). Stop it with `stop()`.
 */
export async function startSentinelSetup(options: SentinelSetupOptions = {}): Promise<SentinelSetup> {
  const name = options.name ?? 'mymaster'
  const count = options.sentinels ?? 3
  const quorum = options.quorum ?? 2
  const started: RedisProcess[] = []
  const sentinels: SentinelProcess[] = []
  // NB: a master delays a (diskless) full sync by 5 s by default, waiting for more replicas to share it.
  const serverArgs = ['--repl-diskless-sync-delay', '0', ...(options.serverArgs ?? [])]
  const stop = async () => {
    await Promise.all(sentinels.map((s) => s.stop()))
    await Promise.all(started.map((s) => s.destroy()))
  }
  try {
    const master = await startRedis({ args: serverArgs })
    started.push(master)
    const replica = await startRedis({
      args: [...serverArgs, '--replicaof', '127.0.0.1', String(master.port)],
    })
    started.push(replica)
    await awaitReplicationLinks(replica.port, START_DEADLINE_MS)
    const settled = await Promise.allSettled(
      Array.from({ length: count }, () =>
        startSentinel(master.port, name, {
          quorum,
          downAfterMs: options.downAfterMs ?? 500,
          failoverTimeoutMs: options.failoverTimeoutMs ?? 1000,
        }),
      ),
    )
    for (const result of settled) if (result.status === 'fulfilled') sentinels.push(result.value)
    const failed = settled.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason

    // NB: sentinels find each other through hello messages on the master (every 2 s) and the replica through
    // the master's INFO: no event tells us, so poll each sentinel's view of the master.
    const deadline = Date.now() + DISCOVERY_DEADLINE_MS
    for (const sentinel of sentinels) {
      for (;;) {
        const view = fieldMap(await redisCommand(sentinel.port, ['SENTINEL', 'MASTER', name]))
        if (view.get('num-other-sentinels') === String(count - 1) && view.get('num-slaves') === '1') break
        if (Date.now() > deadline) {
          throw new Error(
            `sentinel ${sentinel.port} did not discover the setup in time: ${JSON.stringify([...view])}`,
          )
        }
        await pollDelay()
      }
    }

    const servers = [master, replica] as const
    const serverOn = (port: number): RedisProcess => {
      const server = servers.find((s) => s.port === port)
      if (server === undefined) throw new Error(`no server of this setup on port ${port}`)
      return server
    }
    const masterPort = async (): Promise<number> => {
      for (const sentinel of sentinels) {
        try {
          const port = await reportedMasterPort(sentinel.port, name)
          if (port !== undefined) return port
        } catch {
          // NB: ask the next sentinel.
        }
      }
      throw new Error('no sentinel reported a master')
    }
    return {
      name,
      servers,
      master,
      replica,
      sentinels,
      addresses: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })),
      masterPort,
      serverOn,
      async awaitFailover(oldPort, timeoutMs = FAILOVER_DEADLINE_MS) {
        const failoverDeadline = Date.now() + timeoutMs
        let last: Array<number | undefined> = []
        for (;;) {
          last = await Promise.all(sentinels.map((s) => reportedMasterPort(s.port, name)))
          const port = last[0]
          if (port !== undefined && port !== oldPort && last.every((p) => p === port)) {
            const role = await redisCommand(port, ['ROLE']).catch(() => null)
            if (Array.isArray(role) && role[0] === 'master') return serverOn(port)
          }
          if (Date.now() > failoverDeadline) {
            throw new Error(
              `the sentinels did not agree on a new master (other than ${oldPort}) within ${timeoutMs} ms: ${JSON.stringify(last)}`,
            )
          }
          await pollDelay()
        }
      },
      async rejoinAsReplica(server, timeoutMs = START_DEADLINE_MS) {
        const current = await masterPort()
        if (current === server.port)
          throw new Error(`${server.port} is the master; it cannot rejoin as a replica`)
        await server.restart()
        await redisCommand(server.port, ['REPLICAOF', '127.0.0.1', String(current)])
        await awaitReplicaOnline(current, server.port, timeoutMs)
      },
      stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

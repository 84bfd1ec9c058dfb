// Real redis-server processes for tests: free loopback ports, readiness by log line + PING, crash and
// restart controls, a cluster of 3+ masters (optionally with replicas) via `redis-cli --cluster create`
// with a wait for a replica's promotion, and cleanup that survives a dying worker. Never touches the
// shared Redis on 6379.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll } from 'vitest'

/** How long a server may take to log "Ready to accept connections" (and a cluster to converge). */
const READY_TIMEOUT_MS = 10_000
/** How long stop() waits for the process to exit before it SIGKILLs it. */
const STOP_TIMEOUT_MS = 10_000
/** Deadline for one RESP command (connect + reply). */
const COMMAND_TIMEOUT_MS = 2_000
/** Between two polls of state that has no event (replication links, failovers). */
const POLL_MS = 20
/** Lines of redis-server output kept per process; the tail goes into error messages. */
const MAX_LINES = 1_000
const TAIL_LINES = 20
/** The shared, system Redis. Tests start their own and never use this port. */
const SHARED_REDIS_PORT = 6379

export type RedisServerErrorCode =
  | 'REDIS_PORT_IN_USE'
  | 'REDIS_START_FAILED'
  | 'REDIS_START_TIMEOUT'
  | 'REDIS_STOP_TIMEOUT'
  | 'REDIS_CLUSTER_FAILED'
  | 'REDIS_COMMAND_FAILED'

/** Any failure of this helper; `output` is the tail of redis-server's (or redis-cli's) output. */
export class RedisServerError extends Error {
  readonly code: RedisServerErrorCode
  readonly output: string
  constructor(code: RedisServerErrorCode, message: string, output = '', options?: ErrorOptions) {
    super(output ? `${message}\n--- output (tail) ---\n${output}` : message, options)
    this.name = 'RedisServerError'
    this.code = code
    this.output = output
  }
}

/** A running (or stopped, restartable) redis-server owned by the test. */
export interface RedisProcess {
  readonly host: '127.0.0.1'
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** PID of the current process; changes on restart(). */
  readonly pid: number
  /** The server's working directory (a fresh mkdtemp dir), kept across restart(). */
  readonly dir: string
  /** Sends `signal` to the PID and awaits the exit. SIGKILLs and rejects if it is still alive after 10 s. @default 'SIGTERM' */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** SIGKILL (a crash): awaits the exit. The dir is kept, so restart() sees what the crash left. */
  kill9(): Promise<void>
  /** Starts redis-server again on the same port and dir (stopping it first if running); awaits PING. */
  restart(): Promise<void>
  /** SIGKILLs it if running, then removes the dir. Final: call it when the test is done with the server. */
  destroy(): Promise<void>
}

export interface StartRedisOptions {
  /** Port to listen on. @default a free port (retried once with a new one if taken at start) */
  port?: number
  /**
   * Extra redis-server arguments, appended after the defaults (so they win). Keep the log on stdout at
   * `notice` level (no `--logfile`, no `--loglevel warning`): readiness is its "Ready to accept
   * connections" line.
   */
  args?: string[]
}

export interface RedisCluster {
  nodes: Array<{ host: string; port: number }>
  /** Every node, masters and replicas (roles change on a failover: ask {@link RedisCluster.topology}). */
  processes: RedisProcess[]
  /** The cluster as a live node sees it now (CLUSTER NODES). */
  topology(): Promise<ClusterNodeInfo[]>
  /** The processes that are masters serving slots now, by a live node's view. */
  masters(): Promise<RedisProcess[]>
  /** The process of `port`. */
  processOf(port: number): RedisProcess
  /**
   * Call before killing the master on `port`: notes the slots it serves, then `promoted()` resolves once
   * every one of them is served by another master that is up and every live node reports cluster_state:ok
   * (rejecting after `timeoutMs`). Resolves to that master's process.
   */
  watchFailover(
    port: number,
  ): Promise<{ slots: SlotRange[]; promoted(timeoutMs?: number): Promise<RedisProcess> }>
  /**
   * Restarts `server` (a killed master, say) on its port, dir and nodes.conf; the cluster makes it a replica
   * of whoever took its slots. Resolves once that master lists it as an online replica.
   */
  rejoinAsReplica(server: RedisProcess, timeoutMs?: number): Promise<void>
  /** Destroys every node (SIGKILL + remove dir). */
  stop(): Promise<void>
}

export interface StartClusterOptions {
  /** Number of master nodes; redis-cli needs at least 3. @default 3 */
  masters?: number
  /** Replicas per master (`--cluster-replicas`). @default 0 */
  replicas?: number
  /** `cluster-node-timeout`: how long a node may be unreachable before it counts as failing. @default 2000 */
  nodeTimeoutMs?: number
}

/** An inclusive range of hash slots. */
export type SlotRange = readonly [number, number]

/** One line of CLUSTER NODES. */
export interface ClusterNodeInfo {
  id: string
  port: number
  flags: string[]
  /** The master's id for a replica, else null. */
  masterId: string | null
  /** 'connected' or 'disconnected' (the link of the node asked). */
  link: string
  slots: SlotRange[]
}

// --- cleanup when the worker goes away ------------------------------------------------------------

/** Children still alive, by PID. */
const liveChildren = new Map<number, ChildProcess>()
/** Dirs not yet removed by destroy(). */
const liveDirs = new Set<string>()
const TERMINATING_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP']

function killAll(): void {
  for (const pid of liveChildren.keys()) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch (error) {
      // NB: ESRCH = already gone; anything else we can only report, the process is going away.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') {
        process.stderr.write(`redis-server helper: could not kill ${pid}: ${String(error)}\n`)
      }
    }
  }
}

function removeDirs(): void {
  for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true })
  liveDirs.clear()
}

let terminating = false
function onTerminatingSignal(signal: NodeJS.Signals): void {
  if (terminating) return
  terminating = true
  const exits = [...liveChildren.values()].map(
    (child) => new Promise<void>((resolve) => child.once('exit', () => resolve())),
  )
  killAll()
  // NB: await the exits so Node reaps the children: a container init that does not reap would keep
  // them as zombies. They die at once; vitest SIGKILLs the worker 500 ms after SIGTERM anyway.
  void Promise.all(exits).then(() => {
    removeDirs()
    removeSignalHandlers()
    // NB: our listener suppressed the default action; re-raise it unless someone else handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

let signalHandlersInstalled = false
function installSignalHandlers(): void {
  if (signalHandlersInstalled) return
  signalHandlersInstalled = true
  for (const signal of TERMINATING_SIGNALS) process.on(signal, onTerminatingSignal)
}
function removeSignalHandlers(): void {
  if (!signalHandlersInstalled) return
  signalHandlersInstalled = false
  for (const signal of TERMINATING_SIGNALS) process.off(signal, onTerminatingSignal)
}

// NB: vitest tears a fork worker down with SIGTERM, which skips 'exit' listeners: the signal handlers
// above cover that, and are only installed while a child is alive so they never change how a worker
// without leaked servers dies.
process.on('exit', () => {
  killAll()
  removeDirs()
})

function track(child: ChildProcess): void {
  if (child.pid === undefined) return
  const pid = child.pid
  liveChildren.set(pid, child)
  installSignalHandlers()
  child.once('exit', () => {
    liveChildren.delete(pid)
    if (liveChildren.size === 0) removeSignalHandlers()
  })
}

// --- a tiny RESP2 client -------------------------------------------------------------------------

export type RespValue = string | number | null | RespValue[]

/** Parses one RESP2 reply at `offset`; undefined when the buffer does not hold all of it yet. */
function parseReply(buf: Buffer, offset: number): { value: RespValue | Error; next: number } | undefined {
  const lineEnd = buf.indexOf('\r\n', offset)
  if (lineEnd === -1) return undefined
  const type = String.fromCharCode(buf[offset] ?? 0)
  const line = buf.toString('utf8', offset + 1, lineEnd)
  const afterLine = lineEnd + 2
  switch (type) {
    case '+':
      return { value: line, next: afterLine }
    case '-':
      return { value: new Error(line), next: afterLine }
    case ':':
      return { value: Number(line), next: afterLine }
    case '$': {
      const length = Number(line)
      if (length < 0) return { value: null, next: afterLine }
      if (buf.length < afterLine + length + 2) return undefined
      return { value: buf.toString('utf8', afterLine, afterLine + length), next: afterLine + length + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, next: afterLine }
      const items: RespValue[] = []
      let next = afterLine
      for (let i = 0; i < count; i++) {
        const item = parseReply(buf, next)
        if (!item) return undefined
        // NB: an error nested in an array (EXEC) is kept as its message.
        items.push(item.value instanceof Error ? item.value.message : item.value)
        next = item.next
      }
      return { value: items, next }
    }
    default:
      throw new Error(`unexpected RESP type byte ${JSON.stringify(type)}`)
  }
}

function encodeCommand(args: readonly string[]): string {
  return `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`
}

/**
 * Sends one command to 127.0.0.1:`port` on a fresh connection and resolves with the reply.
 * Rejects on connection errors (with the socket's `code`, e.g. ECONNREFUSED), on an error reply
 * (`REDIS_COMMAND_FAILED`), or after 2 s. The socket is always closed.
 */
export function redisCommand(port: number, args: readonly string[]): Promise<RespValue> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    let received = Buffer.alloc(0)
    let settled = false
    const finish = (error: Error | undefined, value?: RespValue) => {
      if (settled) return
      settled = true
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? null)
    }
    socket.setTimeout(COMMAND_TIMEOUT_MS, () =>
      finish(
        new RedisServerError(
          'REDIS_COMMAND_FAILED',
          `${args[0]} to 127.0.0.1:${port} timed out after ${COMMAND_TIMEOUT_MS} ms`,
        ),
      ),
    )
    socket.on('connect', () => socket.write(encodeCommand(args)))
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk])
      let parsed: ReturnType<typeof parseReply>
      try {
        parsed = parseReply(received, 0)
      } catch (error) {
        finish(error as Error)
        return
      }
      if (!parsed) return
      if (parsed.value instanceof Error) {
        finish(
          new RedisServerError(
            'REDIS_COMMAND_FAILED',
            `${args[0]} to 127.0.0.1:${port} failed: ${parsed.value.message}`,
          ),
        )
      } else {
        finish(undefined, parsed.value)
      }
    })
    socket.on('error', (error) => finish(error))
    socket.on('close', () =>
      finish(
        new RedisServerError('REDIS_COMMAND_FAILED', `connection to 127.0.0.1:${port} closed before a reply`),
      ),
    )
  })
}

/** True when 127.0.0.1:`port` answers PING with PONG; false on any error (refused, LOADING, ...). */
export async function ping(port: number): Promise<boolean> {
  try {
    return (await redisCommand(port, ['PING'])) === 'PONG'
  } catch {
    // NB: "not answering" is the answer here; the caller decides whether that is a failure.
    return false
  }
}

/** Parses `CLUSTER INFO` / `INFO` text into a map. */
export function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return fields
}

/** How many times the server at `port` has run `command` (INFO commandstats; commands inside scripts count). */
export async function commandCalls(port: number, command: string): Promise<number> {
  return (await commandStats(port, command)).calls ?? 0
}

/**
 * The INFO commandstats line of `command` at `port` as numbers ({ calls, usec, rejected_calls, failed_calls, ... }),
 * empty when the server has not seen it; a subcommand is `client|caching`.
 */
export async function commandStats(port: number, command: string): Promise<Record<string, number>> {
  const line = parseInfo(String(await redisCommand(port, ['INFO', 'commandstats']))).get(`cmdstat_${command}`)
  if (line === undefined) return {}
  return Object.fromEntries(
    line.split(',').map((pair) => {
      const [key, value] = pair.split('=')
      return [key, Number(value)]
    }),
  )
}

/** Yields to the event loop once, so a polling loop lets I/O callbacks run between attempts. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

// --- ports ---------------------------------------------------------------------------------------

/** A TCP port that was free on 127.0.0.1 a moment ago (bind to port 0, read it, close). Never 6379. */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const server = createServer()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', resolve)
    })
    const address = server.address()
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
    if (address === null || typeof address === 'string') throw new Error('freePort: no TCP address')
    if (address.port !== SHARED_REDIS_PORT) return address.port
  }
  throw new Error('freePort: the OS kept handing out 6379')
}

// --- one redis-server ----------------------------------------------------------------------------

class RedisServer implements RedisProcess {
  readonly host = '127.0.0.1' as const
  readonly port: number
  readonly url: string
  readonly dir: string
  readonly #argv: readonly string[]
  #child: ChildProcess | undefined
  #exited: Promise<void> = Promise.resolve()
  #running = false
  #destroyed = false
  #lines: string[] = []
  readonly #events = new EventEmitter()

  constructor(port: number, dir: string, argv: readonly string[]) {
    this.port = port
    this.url = `redis://127.0.0.1:${port}`
    this.dir = dir
    this.#argv = argv
  }

  get pid(): number {
    const pid = this.#child?.pid
    if (pid === undefined) throw new Error(`redis-server on port ${this.port} was never spawned`)
    return pid
  }

  /** True while the current process is alive. */
  get running(): boolean {
    return this.#running
  }

  /** The last lines redis-server printed (stdout and stderr, interleaved as received). */
  outputTail(lines = TAIL_LINES): string {
    return this.#lines.slice(-lines).join('\n')
  }

  /** Resolves once a line of the current process's output matches; rejects if it exits first or after `timeoutMs`. */
  waitForOutput(pattern: RegExp, timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    if (this.#lines.some((line) => pattern.test(line))) return Promise.resolve()
    if (!this.#running) return Promise.reject(this.#exitError(`exited before logging ${pattern}`))
    return new Promise((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer)
        this.#events.off('line', onLine)
        this.#events.off('exit', onExit)
        if (error) reject(error)
        else resolve()
      }
      const onLine = (line: string) => {
        if (pattern.test(line)) done()
      }
      const onExit = () => done(this.#exitError(`exited before logging ${pattern}`))
      const timer = setTimeout(
        () =>
          done(
            new RedisServerError(
              'REDIS_START_TIMEOUT',
              `redis-server on port ${this.port} did not log ${pattern} within ${timeoutMs} ms`,
              this.outputTail(),
            ),
          ),
        timeoutMs,
      )
      this.#events.on('line', onLine)
      this.#events.on('exit', onExit)
    })
  }

  #exitError(what: string): RedisServerError {
    const output = this.outputTail()
    const portTaken = /Address already in use/.test(output)
    return new RedisServerError(
      portTaken ? 'REDIS_PORT_IN_USE' : 'REDIS_START_FAILED',
      portTaken
        ? `redis-server could not listen on 127.0.0.1:${this.port} (or its cluster bus port): address already in use`
        : `redis-server on port ${this.port} ${what}`,
      output,
    )
  }

  /** Spawns redis-server and resolves once it logged readiness and answers PING. */
  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true })
    liveDirs.add(this.dir)
    this.#lines = []
    const child = spawn('redis-server', this.#argv, { stdio: ['ignore', 'pipe', 'pipe'] })
    this.#child = child
    this.#running = true
    const closed = new Promise<void>((resolve) => child.once('close', () => resolve()))
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        this.#running = false
        resolve()
      })
    })
    let spawnError: Error | undefined
    child.on('error', (error) => {
      // NB: a failed spawn (ENOENT, EACCES) has no pid and may never emit 'exit': settle it here.
      if (child.pid !== undefined) return
      spawnError = error
      this.#running = false
      this.#events.emit('exit')
    })
    this.#exited.then(() => this.#events.emit('exit'))
    track(child)
    for (const stream of [child.stdout, child.stderr]) {
      let partial = ''
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n')
        partial = parts.pop() ?? ''
        for (const line of parts) this.#addLine(line)
      })
      stream?.on('end', () => {
        if (partial) this.#addLine(partial)
        partial = ''
      })
    }

    try {
      await this.waitForOutput(/Ready to accept connections/)
      // NB: the log line is printed right after listen(); PING proves the port is ours and serving.
      for (let attempt = 0; attempt < 50; attempt++) {
        if (await ping(this.port)) return
        if (!this.#running) break
        await nextTurn()
      }
      throw this.#exitError('logged readiness but never answered PING')
    } catch (error) {
      if (spawnError) {
        throw new RedisServerError(
          'REDIS_START_FAILED',
          `could not spawn redis-server: ${spawnError.message}`,
          '',
          {
            cause: spawnError,
          },
        )
      }
      const exitedOnItsOwn = !this.#running
      if (!exitedOnItsOwn) {
        child.kill('SIGKILL')
        await this.#exited
      }
      // NB: 'exit' can come before the last output; 'close' means all of it arrived, so the error
      // is rebuilt from the complete output (and tells a taken port apart from other failures).
      await closed
      if (exitedOnItsOwn) throw this.#exitError('exited during startup')
      throw error
    }
  }

  #addLine(line: string): void {
    this.#lines.push(line)
    if (this.#lines.length > MAX_LINES) this.#lines.splice(0, this.#lines.length - MAX_LINES)
    this.#events.emit('line', line)
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.#running) return
    this.#signal(signal)
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      this.#exited.then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), STOP_TIMEOUT_MS)
      }),
    ])
    clearTimeout(timer)
    if (timedOut) {
      this.#signal('SIGKILL')
      await this.#exited
      throw new RedisServerError(
        'REDIS_STOP_TIMEOUT',
        `redis-server ${this.pid} did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}; killed it`,
        this.outputTail(),
      )
    }
  }

  kill9(): Promise<void> {
    return this.stop('SIGKILL')
  }

  async restart(): Promise<void> {
    if (this.#destroyed) throw new Error(`redis-server on port ${this.port} was destroyed`)
    await this.stop()
    await this.start()
  }

  async destroy(): Promise<void> {
    this.#destroyed = true
    // NB: SIGKILL, not SIGTERM: the dir goes anyway, and redis acts on SIGTERM only at its next
    // serverCron tick (up to 100 ms at hz 10).
    await this.kill9()
    rmSync(this.dir, { recursive: true, force: true })
    liveDirs.delete(this.dir)
  }

  #signal(signal: NodeJS.Signals): void {
    try {
      process.kill(this.pid, signal)
    } catch (error) {
      // NB: ESRCH = it exited on its own between our check and the kill; 'exit' is on its way.
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error
    }
  }
}

async function freePortOtherThan(taken: number): Promise<number> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    if (port !== taken) return port
  }
  throw new Error(`freePort: the OS kept handing out ${taken}`)
}

interface LaunchOptions extends StartRedisOptions {
  /** Also pick a free cluster bus port (`--cluster-port`). */
  clusterBus?: boolean
}

async function launch(options: LaunchOptions): Promise<RedisServer> {
  if (options.port === SHARED_REDIS_PORT) {
    throw new Error('startRedis: port 6379 is the shared Redis; tests must start their own')
  }
  const attempts = options.port === undefined ? 2 : 1
  for (let attempt = 1; ; attempt++) {
    const port = options.port ?? (await freePort())
    const dir = mkdtempSync(join(tmpdir(), 'tiered-session-redis-'))
    // biome-ignore format: one option per line
    const argv = [
      '--port', String(port),
      '--bind', '127.0.0.1',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--protected-mode', 'no',
      ...(options.clusterBus ? ['--cluster-port', String(await freePortOtherThan(port))] : []),
      ...(options.args ?? []),
    ]
    const server = new RedisServer(port, dir, argv)
    try {
      await server.start()
      return server
    } catch (error) {
      await server.destroy()
      // NB: another process may grab a "free" port before redis-server binds it: pick a new one once.
      if (error instanceof RedisServerError && error.code === 'REDIS_PORT_IN_USE' && attempt < attempts)
        continue
      throw error
    }
  }
}

/**
 * Spawns `redis-server` on 127.0.0.1 (a free port unless given) with no persistence and a fresh dir,
 * and resolves once it answers PING. Rejects with a {@link RedisServerError} carrying the tail of its
 * output if it exits or is not ready within 10 s. Call `destroy()` (or use {@link useRedis}) when done.
 */
export function startRedis(options: StartRedisOptions = {}): Promise<RedisProcess> {
  return launch(options)
}

// --- cluster -------------------------------------------------------------------------------------

function execFileText(
  file: string,
  args: string[],
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; error: Error | null }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) =>
      resolve({ stdout, stderr, error }),
    )
  })
}

/**
 * Starts `masters` cluster-enabled redis-servers, plus `replicas` per master, joins them with
 * `redis-cli --cluster create`, and resolves once every node reports `cluster_state:ok`, all 16384
 * slots assigned and every other node known, and every replica's link to its master is up. Call
 * `stop()` (or use {@link useCluster}) when done.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3
  const replicas = options.replicas ?? 0
  if (!Number.isInteger(masters) || masters < 3) {
    throw new TypeError(
      `startCluster: options.masters must be an integer >= 3 (redis-cli's minimum), got ${masters}`,
    )
  }
  if (!Number.isInteger(replicas) || replicas < 0) {
    throw new TypeError(`startCluster: options.replicas must be an integer >= 0, got ${replicas}`)
  }
  const total = masters * (1 + replicas)
  // biome-ignore format: one option per line
  const clusterArgs = [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf',
    '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 2000),
    // NB: a master delays a (diskless) full sync by 5 s by default, waiting for more replicas to share it.
    '--repl-diskless-sync-delay', '0',
  ]
  const started = await Promise.allSettled(
    Array.from({ length: total }, () => launch({ args: clusterArgs, clusterBus: true })),
  )
  const servers = started.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []))
  const processOf = (port: number): RedisProcess => {
    const server = servers.find((s) => s.port === port)
    if (server === undefined) throw new Error(`startCluster: no node of this cluster on port ${port}`)
    return server
  }
  const topology = async (): Promise<ClusterNodeInfo[]> => {
    let lastError: unknown
    for (const server of servers) {
      if (!server.running) continue
      try {
        return parseClusterNodes(String(await redisCommand(server.port, ['CLUSTER', 'NODES'])))
      } catch (error) {
        // NB: a node may die between the check and the command; ask the next one.
        lastError = error
      }
    }
    throw new RedisServerError(
      'REDIS_CLUSTER_FAILED',
      `no live cluster node answered CLUSTER NODES: ${String(lastError)}`,
    )
  }
  const cluster: RedisCluster = {
    nodes: servers.map((server) => ({ host: server.host, port: server.port })),
    processes: servers,
    topology,
    processOf,
    async masters() {
      const nodes = await topology()
      return nodes
        .filter((n) => n.flags.includes('master') && !isFailing(n) && n.slots.length > 0)
        .map((n) => processOf(n.port))
    },
    async watchFailover(port) {
      const before = (await topology()).find((n) => n.port === port)
      if (before === undefined || !before.flags.includes('master') || before.slots.length === 0) {
        throw new Error(`watchFailover: 127.0.0.1:${port} is not a master serving slots`)
      }
      const slots = before.slots
      return {
        slots,
        promoted: (timeoutMs = READY_TIMEOUT_MS) => awaitPromotion(servers, before.id, slots, timeoutMs),
      }
    },
    async rejoinAsReplica(server, timeoutMs = READY_TIMEOUT_MS) {
      await server.restart()
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const info = parseInfo(String(await redisCommand(server.port, ['INFO', 'replication'])))
        const masterPort = Number(info.get('master_port'))
        if (info.get('role') === 'slave' && masterPort > 0) {
          await awaitReplicaOnline(masterPort, server.port, Math.max(0, deadline - Date.now()))
          return
        }
        if (Date.now() > deadline) {
          throw new RedisServerError(
            'REDIS_CLUSTER_FAILED',
            `127.0.0.1:${server.port} did not turn into a replica within ${timeoutMs} ms`,
            server instanceof RedisServer ? server.outputTail() : '',
          )
        }
        await pollDelay()
      }
    },
    async stop() {
      await Promise.all(servers.map((server) => server.destroy()))
    },
  }
  try {
    const failed = started.find((result) => result.status === 'rejected')
    if (failed) throw failed.reason

    const addresses = servers.map((server) => `127.0.0.1:${server.port}`)
    const create = await execFileText(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'],
      30_000,
    )
    if (create.error) {
      throw new RedisServerError(
        'REDIS_CLUSTER_FAILED',
        `redis-cli --cluster create ${addresses.join(' ')} failed: ${create.error.message}`,
        `${create.stdout}${create.stderr}`.split('\n').slice(-TAIL_LINES).join('\n'),
        { cause: create.error },
      )
    }

    // NB: each node logs the change once it sees all slots covered (a fresh master waits ~2 s first).
    await Promise.all(servers.map((server) => server.waitForOutput(/Cluster state changed: ok/)))
    for (const server of servers) await waitForClusterOk(server, total)
    if (replicas > 0) {
      await Promise.all(servers.map((server) => awaitReplicationLinks(server.port, READY_TIMEOUT_MS)))
    }
    return cluster
  } catch (error) {
    await cluster.stop()
    throw error
  }
}

/** Parses CLUSTER NODES text. */
export function parseClusterNodes(text: string): ClusterNodeInfo[] {
  const out: ClusterNodeInfo[] = []
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ')
    if (fields.length < 8) continue
    const [id, address, flags, master, , , , link, ...slotFields] = fields as [
      string,
      string,
      string,
      string,
      ...string[],
    ]
    const port = Number(/:(\d+)/.exec(address)?.[1])
    const slots: SlotRange[] = []
    for (const field of slotFields) {
      // NB: "[slot->-node]" entries are slots being migrated: not served by this node yet.
      if (field.startsWith('[')) continue
      const [from, to] = field.split('-')
      slots.push([Number(from), Number(to ?? from)])
    }
    out.push({
      id,
      port,
      flags: flags.split(','),
      masterId: master === '-' ? null : master,
      link: link ?? '',
      slots,
    })
  }
  return out
}

function isFailing(node: ClusterNodeInfo): boolean {
  return node.flags.includes('fail') || node.flags.includes('fail?') || node.flags.includes('noaddr')
}

function covers(ranges: readonly SlotRange[], slot: number): boolean {
  return ranges.some(([from, to]) => slot >= from && slot <= to)
}

/**
 * Polls the live nodes until every slot of `slots` (served by the node `killedId` before) is served by
 * one master that is not `killedId`, not flagged failing and whose process is up, and every live node
 * reports cluster_state:ok. Resolves to that master's process.
 */
async function awaitPromotion(
  servers: readonly RedisServer[],
  killedId: string,
  slots: readonly SlotRange[],
  timeoutMs: number,
): Promise<RedisProcess> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    const live = servers.filter((server) => server.running)
    try {
      const views = await Promise.all(live.map((server) => redisCommand(server.port, ['CLUSTER', 'NODES'])))
      const infos = await Promise.all(live.map((server) => redisCommand(server.port, ['CLUSTER', 'INFO'])))
      last = String(views[0])
      const promoted = views.map((view) => {
        const nodes = parseClusterNodes(String(view))
        const owners = nodes.filter(
          (n) =>
            n.id !== killedId &&
            n.flags.includes('master') &&
            !isFailing(n) &&
            slots.every(([from, to]) => covers(n.slots, from) && covers(n.slots, to)),
        )
        return owners.length === 1 ? owners[0]?.port : undefined
      })
      const port = promoted[0]
      const agreed = port !== undefined && promoted.every((p) => p === port)
      const ok = infos.every((info) => parseInfo(String(info)).get('cluster_state') === 'ok')
      const server = live.find((s) => s.port === port)
      if (agreed && ok && server !== undefined) return server
    } catch (error) {
      // NB: a node may die or be mid-restart between listing and asking; the next round asks again.
      last = String(error)
    }
    if (Date.now() > deadline) {
      throw new RedisServerError(
        'REDIS_CLUSTER_FAILED',
        `no replica took over slots ${slots.map(([a, b]) => `${a}-${b}`).join(',')} within ${timeoutMs} ms; last CLUSTER NODES:\n${last}`,
      )
    }
    await pollDelay()
  }
}

/**
 * Resolves once the server on `port`, if it is a replica, reports `master_link_status:up` (a master
 * resolves at once). Rejects after `timeoutMs`.
 */
export async function awaitReplicationLinks(port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    last = String(await redisCommand(port, ['INFO', 'replication']))
    const info = parseInfo(last)
    if (info.get('role') === 'master' || info.get('master_link_status') === 'up') return
    if (Date.now() > deadline) {
      throw new RedisServerError(
        'REDIS_COMMAND_FAILED',
        `the replica on 127.0.0.1:${port} did not link up with its master within ${timeoutMs} ms:\n${last}`,
      )
    }
    await pollDelay()
  }
}

/**
 * Resolves once the master on `masterPort` lists the server on `replicaPort` as an online replica (its sync
 * done: WAIT counts it from then on). Rejects after `timeoutMs`.
 */
export async function awaitReplicaOnline(
  masterPort: number,
  replicaPort: number,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last = ''
  for (;;) {
    try {
      last = String(await redisCommand(masterPort, ['INFO', 'replication']))
      const online = [...parseInfo(last)].some(
        ([field, value]) =>
          /^slave\d+$/.test(field) &&
          value.includes(`port=${replicaPort},`) &&
          value.includes('state=online'),
      )
      if (online) return
    } catch (error) {
      // NB: a server being restarted refuses connections for a moment; the deadline decides.
      last = String(error)
    }
    if (Date.now() > deadline) {
      throw new RedisServerError(
        'REDIS_COMMAND_FAILED',
        `127.0.0.1:${masterPort} did not list 127.0.0.1:${replicaPort} as an online replica within ${timeoutMs} ms:\n${last}`,
      )
    }
    await pollDelay()
  }
}

/** Between two polls of a server's state when it has no event to wait for: a tick, not a sleep. */
export function pollDelay(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, POLL_MS))
}

async function waitForClusterOk(server: RedisServer, nodes: number): Promise<void> {
  let last = ''
  const deadline = Date.now() + READY_TIMEOUT_MS
  for (let attempt = 0; ; attempt++) {
    last = String(await redisCommand(server.port, ['CLUSTER', 'INFO']))
    const info = parseInfo(last)
    if (
      info.get('cluster_state') === 'ok' &&
      info.get('cluster_slots_assigned') === '16384' &&
      info.get('cluster_known_nodes') === String(nodes)
    ) {
      return
    }
    if (Date.now() > deadline) break
    // NB: usually agreed within a few turns; gossip about replicas can take a little longer.
    await (attempt < 100 ? nextTurn() : pollDelay())
  }
  throw new RedisServerError(
    'REDIS_CLUSTER_FAILED',
    `cluster node 127.0.0.1:${server.port} logged state ok but CLUSTER INFO disagrees:\n${last}`,
    server.outputTail(),
  )
}

// --- per-describe fixtures -----------------------------------------------------------------------

export interface RedisHandle {
  /** The server; throws if read before the describe block's beforeAll ran. */
  readonly server: RedisProcess
  readonly port: number
  readonly url: string
}

/** Starts a redis-server in `beforeAll` and destroys it in `afterAll` of the calling describe block. */
export function useRedis(options: StartRedisOptions = {}): RedisHandle {
  let server: RedisProcess | undefined
  beforeAll(async () => {
    server = await startRedis(options)
  })
  afterAll(async () => {
    await server?.destroy()
  })
  const started = (): RedisProcess => {
    if (!server) throw new Error('useRedis(): the server starts in beforeAll; read it inside a test or hook')
    return server
  }
  return {
    get server() {
      return started()
    },
    get port() {
      return started().port
    },
    get url() {
      return started().url
    },
  }
}

export interface ClusterHandle {
  /** The cluster; throws if read before the describe block's beforeAll ran. */
  readonly cluster: RedisCluster
  readonly nodes: Array<{ host: string; port: number }>
}

/** Starts a cluster in `beforeAll` and stops it in `afterAll` of the calling describe block. */
export function useCluster(options: StartClusterOptions = {}): ClusterHandle {
  let cluster: RedisCluster | undefined
  beforeAll(async () => {
    cluster = await startCluster(options)
  })
  afterAll(async () => {
    await cluster?.stop()
  })
  const started = (): RedisCluster => {
    if (!cluster)
      throw new Error('useCluster(): the cluster starts in beforeAll; read it inside a test or hook')
    return cluster
  }
  return {
    get cluster() {
      return started()
    },
    get nodes() {
      return started().nodes
    },
  }
}

// The example shop as a real child process (`node example/server.js`): started with an environment,
// ready once it prints its "listening" line, stopped by PID with a signal and an awaited exit. Also builds
// dist/ first when it is missing or older than src/, since the example imports the package by name.

import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** Deadline for the "listening" line (the store opens SQLite and, in shared mode, waits for Redis). */
const START_TIMEOUT_MS = 15_000
/** Deadline for a graceful exit after SIGTERM before the process is SIGKILLed and the stop fails. */
const STOP_TIMEOUT_MS = 10_000
const LISTENING = /listening on http:\/\/\S+:(\d+)/

/** Children still running, SIGKILLed if the test worker exits without stopping them. */
const live = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

function newestMtime(path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  let newest = stat.mtimeMs
  for (const entry of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, entry)))
  return newest
}

function builtAt(): number {
  try {
    return statSync(join(ROOT, 'dist', 'index.js')).mtimeMs
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }
}

/** Runs tsup when dist/ is missing or older than src/, package.json or tsup.config.ts; resolves to whether it built. */
export async function ensureBuilt(): Promise<boolean> {
  const sources = Math.max(
    newestMtime(join(ROOT, 'src')),
    newestMtime(join(ROOT, 'package.json')),
    newestMtime(join(ROOT, 'tsup.config.ts')),
  )
  if (builtAt() >= sources) return false
  await new Promise<void>((resolve, reject) => {
    execFile(
      join(ROOT, 'node_modules', '.bin', 'tsup'),
      [],
      { cwd: ROOT, timeout: 120_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`tsup failed:\n${stdout}${stderr}`, { cause: error })) : resolve(),
    )
  })
  return true
}

export interface ExampleProcess {
  readonly pid: number
  readonly port: number
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  /** Everything it printed so far (stdout and stderr, interleaved as received). */
  output(): string
  /** Sends `signal` and resolves to the exit code once it exited; SIGKILLs and rejects after 10 s. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Spawns the example with `env` added to ours and resolves once it printed its "listening" line. */
export function startExample(env: Record<string, string>): Promise<ExampleProcess> {
  const child = spawn(process.execPath, ['example/server.js'], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  live.add(child)
  let text = ''
  let code: number | null | undefined
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (exitCode) => {
      live.delete(child)
      code = exitCode
      resolve(exitCode)
    })
  })
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => {
      text += chunk
    })
  }

  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> => {
    if (code !== undefined) return code
    child.kill(signal)
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(resolve, STOP_TIMEOUT_MS, 'timeout')
    })
    const result = await Promise.race([exited, timedOut])
    clearTimeout(timer)
    if (result !== 'timeout') return result
    child.kill('SIGKILL')
    await exited
    throw new Error(`example ${child.pid} did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}:\n${text}`)
  }

  return new Promise((resolve, reject) => {
    const fail = (why: string, running = true) => {
      cleanup()
      const error = () => new Error(`example ${why}; its output:\n${text}`)
      if (running) void stop('SIGKILL').finally(() => reject(error()))
      else reject(error())
    }
    const onData = () => {
      const match = LISTENING.exec(text)
      if (!match) return
      cleanup()
      const port = Number(match[1])
      resolve({
        pid: child.pid as number,
        port,
        url: `http://127.0.0.1:${port}`,
        output: () => text,
        stop,
      })
    }
    const onExit = () => fail(`exited with ${code} before it was listening`, false)
    // NB: a failed spawn has no pid and may never emit 'exit'.
    const onError = (error: Error) => {
      live.delete(child)
      fail(`could not be spawned (${error.message})`, false)
    }
    const timer = setTimeout(
      () => fail(`printed no "listening" line within ${START_TIMEOUT_MS} ms`),
      START_TIMEOUT_MS,
    )
    const cleanup = () => {
      clearTimeout(timer)
      child.stdout.off('data', onData)
      child.off('close', onExit)
      child.off('error', onError)
    }
    // NB: registered after the collector above, so `text` already holds the chunk when onData runs.
    child.stdout.on('data', onData)
    // NB: 'close', not 'exit': by then all of its output (the reason it died) has arrived.
    child.once('close', onExit)
    child.once('error', onError)
  })
}

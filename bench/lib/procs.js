// Processes the harness starts: redis-server on a free loopback port, forked children (servers, tasks,
// the proxy). Everything started here is tracked and killed by PID on exit, failure or Ctrl-C; the
// redis-server on 6379 (or any other process) is never touched.

import { execFileSync, fork, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const BENCH_DIR = join(dirname(fileURLToPath(import.meta.url)), '..')
const WORKER = join(BENCH_DIR, 'worker.js')

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

export function withTimeout(promise, ms, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export function waitForEvent(emitter, event, predicate = () => true) {
  return new Promise((resolve) => {
    const on = (arg) => {
      if (!predicate(arg)) return
      emitter.off(event, on)
      resolve(arg)
    }
    emitter.on(event, on)
  })
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

// ---------------------------------------------------------------------------------------------------------
// Tracking: every child we start, so that nothing outlives the harness.

const live = new Set()

export function track(proc) {
  live.add(proc)
  proc.once('exit', () => live.delete(proc))
  return proc
}

/** SIGKILLs every child still running (by PID). */
export function killAll() {
  for (const proc of live) {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(proc.pid, 'SIGKILL')
      } catch {
        // already gone
      }
    }
  }
  live.clear()
}

/** SIGTERM, then SIGKILL after 3 s; resolves once the process has exited. */
export async function stopProcess(proc) {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise((resolve) => proc.once('exit', resolve))
  process.kill(proc.pid, 'SIGTERM')
  const timer = setTimeout(() => {
    if (proc.exitCode === null && proc.signalCode === null) process.kill(proc.pid, 'SIGKILL')
  }, 3000)
  await exited
  clearTimeout(timer)
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
export function cpuMsOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // NB: fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS
  } catch {
    return Number.NaN
  }
}

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

// ---------------------------------------------------------------------------------------------------------
// redis-server

/** One PING over a raw socket; resolves true on +PONG. */
export function pingOnce(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => done(false))
    socket.on('error', () => done(false))
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (d) => {
      reply += d.toString('latin1')
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

export function redisVersion() {
  try {
    const text = execFileSync('redis-server', ['--version'], { encoding: 'utf8' })
    return /v=(\S+)/.exec(text)?.[1] ?? text.trim()
  } catch {
    return null
  }
}

/**
 * Starts our own redis-server (no persistence) on a free loopback port, never 6379; resolves once it
 * answers PING. `stop()` kills it by PID.
 */
export async function startRedis() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort()
    if (port === 6379) continue
    const proc = track(
      spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--protected-mode',
          'yes',
        ],
        { stdio: 'ignore' },
      ),
    )
    let exited = false
    proc.on('exit', () => {
      exited = true
    })
    proc.on('error', () => {
      exited = true
    })
    const deadline = Date.now() + 5000
    while (!exited && Date.now() < deadline) {
      if (await pingOnce(port)) {
        return {
          proc,
          port,
          url: `redis://127.0.0.1:${port}`,
          version: redisVersion(),
          stop: () => stopProcess(proc),
        }
      }
      await sleep(50)
    }
    if (!exited) proc.kill('SIGKILL')
  }
  throw new Error('could not start redis-server (is it on PATH?)')
}

// ---------------------------------------------------------------------------------------------------------
// Forked tasks (bench/worker.js): one fresh process per measurement that must not share a heap.

/**
 * Runs `task` (a name registered in bench/worker.js) with `args` in a fresh Node process (with
 * --expose-gc) and resolves to what it returns. `execArgv` adds Node flags (e.g. --cpu-prof); `worker` runs
 * another checkout's bench/worker.js (which then imports that checkout's dist/, as in a baseline run).
 */
export function runTask(task, args, { execArgv = [], worker = WORKER } = {}) {
  return new Promise((resolve, reject) => {
    const proc = track(
      fork(worker, [task, JSON.stringify(args)], {
        execArgv: ['--expose-gc', ...execArgv],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    )
    let message
    proc.on('message', (m) => {
      message = m
    })
    proc.on('error', reject)
    proc.on('exit', (code, signal) => {
      if (message?.ok && code === 0) resolve(message.result)
      else
        reject(
          new Error(
            `task ${task} failed (exit ${code ?? signal})${message?.error ? `: ${message.error}` : ''}`,
          ),
        )
    })
  })
}

// A redis-sentinel process monitoring a test-owned master, for tests of ioredis Sentinel clients.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from './redis-server.js'
import { makeTempDir } from './temp-dir.js'

/** How long a sentinel may take to start before the test fails (a deadline, not a wait). */
const START_DEADLINE_MS = 10_000

export interface SentinelProcess {
  readonly port: number
  /** The monitored master's name. */
  readonly name: string
  stop(): Promise<void>
}

/** Starts a sentinel monitoring 127.0.0.1:`masterPort` as `name`; resolves once it monitors it. */
export async function startSentinel(masterPort: number, name = 'mymaster'): Promise<SentinelProcess> {
  const dir = makeTempDir('sentinel')
  const port = await freePort()
  const conf = join(dir.path, 'sentinel.conf')
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir.path}`,
      `sentinel monitor ${name} 127.0.0.1 ${masterPort} 1`,
      `sentinel down-after-milliseconds ${name} 60000`,
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

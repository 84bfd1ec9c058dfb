import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { TieredStore } from '../src/store.js'
import { loopSession } from './fixtures/crash-session.js'
import { makeTempDir } from './helpers/temp-dir.js'

const writerScript = fileURLToPath(new URL('./fixtures/crash-loop-writer.ts', import.meta.url))
const CYCLES = 20

/** Runs one writer until it has acknowledged `stopAfter` writes, then SIGKILLs it; returns the acks. */
async function crashCycle(path: string, cycle: number, stopAfter: number): Promise<Array<[string, number]>> {
  const child = spawn(process.execPath, ['--import', 'tsx', writerScript, path, String(cycle)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = once(child, 'exit')
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const acks: Array<[string, number]> = []
  for await (const line of createInterface({ input: child.stdout })) {
    const [sid, n] = line.split(' ')
    acks.push([sid as string, Number(n)])
    if (acks.length >= stopAfter) {
      child.kill('SIGKILL')
      break
    }
  }
  const [, signal] = await exited
  expect(signal).toBe('SIGKILL')
  return acks
}

describe('a crash loop (local mode)', () => {
  it(`${CYCLES} cycles of SIGKILL under concurrent writes lose no acknowledged write and leave no undecodable row`, async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const path = join(dir.path, 'sessions.db')
    /** The newest acknowledged write of each session: [cycle, n]. */
    const latest = new Map<string, [number, number]>()
    const newer = (a: [number, number], b: [number, number]) => a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1])
    let acknowledged = 0
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      // Kill somewhere between 100 and 700 acknowledgements in, never at a moment we chose by batch.
      const acks = await crashCycle(path, cycle, 100 + Math.floor(Math.random() * 600))
      acknowledged += acks.length
      for (const [sid, n] of acks) {
        const seen = latest.get(sid)
        if (seen === undefined || newer([cycle, n], seen)) latest.set(sid, [cycle, n])
      }

      const store = new TieredStore({ disk: { path } })
      const errors: TieredSessionError[] = []
      store.on('error', (e) => errors.push(e))
      let intact = 0
      for (const [sid, acked] of latest) {
        const got = (await store.get(sid)) as { cycle: number; n: number } | undefined
        if (got === undefined) continue
        // Intact, and not older than the newest acknowledged write (a write committed just before the kill,
        // whose acknowledgement never got out, may be newer).
        const whole = JSON.stringify(got) === JSON.stringify(loopSession(sid, got.cycle, got.n))
        if (whole && newer([got.cycle, got.n], acked)) intact++
      }
      expect(intact).toBe(latest.size)
      await store.all()
      expect(errors).toEqual([])
      await store.close()
    }
    expect(acknowledged).toBeGreaterThan(CYCLES * 100)
  })
})

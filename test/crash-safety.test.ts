import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { TieredStore } from '../src/store.js'
import { crashSession } from './fixtures/crash-session.js'
import { makeTempDir } from './helpers/temp-dir.js'

const writerScript = fileURLToPath(new URL('./fixtures/crash-writer.ts', import.meta.url))

describe('when the app is killed with SIGKILL mid-stream', () => {
  it('a new store on the same file returns every acknowledged session intact', async () => {
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const path = join(dir.path, 'sessions.db')
    const child = spawn(process.execPath, ['--import', 'tsx', writerScript, path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const exited = once(child, 'exit')
    // Whatever happens below, the writer does not outlive the test.
    onTestFinished(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    })
    const acknowledged: string[] = []
    const lines = createInterface({ input: child.stdout })
    for await (const line of lines) {
      acknowledged.push(line)
      // Kill somewhere inside a stream of group commits, not at a batch boundary we chose.
      if (acknowledged.length >= 3000 + Math.floor(Math.random() * 2000)) {
        child.kill('SIGKILL')
        break
      }
    }
    const [, signal] = await exited
    expect(signal).toBe('SIGKILL')

    const store = new TieredStore({ disk: { path } })
    onTestFinished(() => store.close())
    const errors: unknown[] = []
    store.on('error', (e) => errors.push(e))
    let intact = 0
    for (const sid of acknowledged) {
      const got = await store.get(sid)
      const i = Number(sid.slice('crash-'.length))
      if (JSON.stringify(got) === JSON.stringify(crashSession(i))) intact++
    }
    expect(intact).toBe(acknowledged.length)
    // Every row on disk decodes (nothing half-written).
    const all = await store.all()
    expect(Object.keys(all).length).toBeGreaterThanOrEqual(acknowledged.length)
    expect(errors).toEqual([])
  })
})

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it, onTestFinished } from 'vitest'
import { makeTempDir } from './helpers/temp-dir.js'

const _HOUR = 3_600_000

describe('timers', () => {
  it('never keep the process alive: a store that is never closed lets the process exit', async () => {
    const script = fileURLToPath(new URL('./fixtures/unclosed-store.ts', import.meta.url))
    const dir = makeTempDir()
    onTestFinished(() => dir.remove())
    const child = spawn(process.execPath, ['--import', 'tsx', script, join(dir.path, 's.db')], {
      stdio: 'inherit',
    })
    const [code] = await once(child, 'exit')
    expect(code).toBe(0)
  })
})

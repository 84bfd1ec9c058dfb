// bin `tiered-session` as a real child process (its TypeScript source, through tsx), with what it printed.

import { spawn } from 'node:child_process'
import { join } from 'node:path'

const CLI = join(import.meta.dirname, '..', '..', 'src', 'cli', 'main.ts')

export interface CliRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `tiered-session ...args` (with `input` on its stdin and `env` added to its environment, if given) and
 * resolves once it exits.
 */
export function cli(args: readonly string[], input?: string, env?: Record<string, string>): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
      stdio: 'pipe',
      env: { ...process.env, ...env },
    })
    // NB: a CLI that exits before reading its input closes the pipe (EPIPE); its exit code and stderr say why.
    child.stdin.on('error', () => undefined)
    child.stdin.end(input ?? '')
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

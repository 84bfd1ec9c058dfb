// A fresh temporary directory per test, removed afterwards.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Creates a temp dir; call `remove()` (e.g. in onTestFinished) to delete it. */
export function makeTempDir(label = 'tiered-session'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `${label}-`))
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) }
}

// `tiered-session backup --out FILE`: an online, consistent copy of a store's SQLite file (store.backup), taken
// while apps keep writing to it. SQLite only: Redis has its own persistence.

import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import type { BackupProgress } from '../../tiers/sqlite-backup.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, STORE_FLAGS } from '../args.js'
import { CliError } from '../cli-error.js'
import { openStore } from '../open-store.js'
import { Progress, printCounts } from '../output.js'

export const backupSpec: CommandSpec = {
  name: 'backup',
  summary:
    "Copies a store's SQLite file to --out while apps keep writing to it: one consistent state, every write " +
    'acknowledged before it began included; the copy is 0600 (its directory is made 0700 if missing). ' +
    "SQLite only (for Redis, use Redis's own persistence).",
  usage: 'tiered-session backup --db PATH --out FILE [--json]',
  flags: {
    db: STORE_FLAGS.db,
    redis: { ...STORE_FLAGS.redis, help: 'not supported: backup copies a SQLite file' },
    out: { type: 'string', value: 'FILE', help: 'where the copy goes (replaced if it exists)' },
    json: JSON_FLAG,
  },
}

export async function backup(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(backupSpec, argv)
  if (flags.help === true) return
  if (flags.redis !== undefined)
    throw new CliError(
      'backup copies a SQLite file (--db PATH); for Redis use its own persistence (BGSAVE, AOF)',
      2,
    )
  const db = required(flags, 'db', backupSpec)
  const out = required(flags, 'out', backupSpec)
  if (resolve(out) === resolve(db)) throw new CliError('--out must not be the --db file itself', 2)
  const opened = await openStore(flags, backupSpec, { mustExist: true })
  let last: BackupProgress
  try {
    const progress = new Progress('backup: pages copied', 1000)
    let copied = 0
    opened.store.on('backup', (step: BackupProgress) => {
      progress.total = step.totalPages
      const now = step.totalPages - step.remainingPages
      if (now > copied) progress.add(now - copied)
      copied = now
    })
    last = await opened.store.backup(out)
    progress.end()
  } catch (error) {
    throw new CliError(String((error as Error).message).split('\n')[0] as string)
  } finally {
    await opened.store.close()
  }
  printCounts(
    { pages: last.totalPages, bytes: statSync(out).size },
    { pages: 'pages copied', bytes: 'bytes' },
    flags.json === true,
  )
}

// `tiered-session stats`: what a store holds — sessions, bytes, expired rows not swept yet, the users with the
// most sessions, the SQLite file's and WAL's sizes and the outbox's depth (a shared-mode instance's file).

import { statSync } from 'node:fs'
import { managerOf } from '../../store.js'
import type { Inventory } from '../../tiers/inventory.js'
import type { CommandSpec } from '../args.js'
import { count, JSON_FLAG, parseFlags, STORE_FLAGS } from '../args.js'
import type { OpenedStore } from '../open-store.js'
import { checkDecoded, openStore } from '../open-store.js'
import { printColumns, printFields, printJson } from '../output.js'

export const statsSpec: CommandSpec = {
  name: 'stats',
  summary:
    'Shows what a store holds: live sessions and their bytes, expired rows not swept yet, the users with the ' +
    'most sessions, and (SQLite) the file and WAL sizes and the outbox of a shared-mode instance.',
  usage: 'tiered-session stats (--db PATH | --redis URL [--prefix P]) [--top N] [--json]',
  flags: {
    ...STORE_FLAGS,
    top: { type: 'string', value: 'N', help: 'how many users to list, most sessions first', default: '10' },
    json: { ...JSON_FLAG, help: 'print the stats as one JSON object' },
  },
}

/** The size of a file in bytes, or 0 when it does not exist. */
function sizeOf(path: string): number {
  try {
    return statSync(path).size
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0
    throw error
  }
}

/** The stats as `--json` prints them. */
function report(opened: OpenedStore, inventory: Inventory) {
  const file =
    opened.mode === 'local' ? { bytes: sizeOf(opened.path), walBytes: sizeOf(`${opened.path}-wal`) } : null
  return {
    mode: opened.mode,
    sessions: inventory.sessions,
    bytes: inventory.bytes,
    expiredNotSwept: inventory.expiredNotSwept,
    sessionsWithUser: inventory.withUser,
    file,
    // NB: an instance's outbox lives in its own SQLite file; Redis has none.
    outbox: inventory.outboxDepth === null ? null : { depth: inventory.outboxDepth },
    topUsers: inventory.topUsers,
  }
}

export async function stats(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(statsSpec, argv)
  if (flags.help === true) return
  const top = count(flags, 'top', 0)
  const opened = await openStore(flags, statsSpec, { mustExist: true })
  let out: ReturnType<typeof report>
  try {
    out = report(opened, await managerOf(opened.store).inventory(top))
  } finally {
    await opened.store.close()
  }
  if (flags.json === true) printJson(out)
  else printTable(opened, out)
  checkDecoded(opened)
}

/** The stats as a table for a person. */
function printTable(opened: OpenedStore, out: ReturnType<typeof report>): void {
  printFields([
    ['mode', opened.mode === 'local' ? 'local (SQLite file)' : 'shared (Redis)'],
    ['sessions', out.sessions],
    ['payload bytes', out.bytes],
    ['expired, not swept', out.expiredNotSwept ?? 'n/a (Redis expires its own keys)'],
    ['sessions with a user', out.sessionsWithUser],
    ['file bytes', out.file?.bytes ?? 'n/a'],
    ['WAL bytes', out.file?.walBytes ?? 'n/a'],
    ['outbox depth', out.outbox?.depth ?? 'n/a (each instance keeps its outbox in its own SQLite file)'],
    // NB: the file does not record when an entry was queued; a running instance knows (store.health()).
    [
      'outbox oldest age',
      out.outbox === null ? 'n/a' : "not recorded in the file: see the instance's health()",
    ],
  ])
  if (out.topUsers.length > 0) {
    process.stdout.write('\n')
    printColumns(
      ['user', 'sessions'],
      out.topUsers.map((user) => [user.userId, user.sessions]),
    )
  }
}

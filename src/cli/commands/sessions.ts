// `tiered-session sessions --user ID`: a user's live sessions by handle, with their expiry; their data only with
// --show-data.

import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, STORE_FLAGS } from '../args.js'
import { checkDecoded, openStore } from '../open-store.js'
import { printColumns, printJson } from '../output.js'
import { sessionsOf } from '../session-handles.js'

export const sessionsSpec: CommandSpec = {
  name: 'sessions',
  summary:
    "Lists a user's live sessions: handle (what `logout --except` and `destroy` take), created (when known), " +
    'expires. Session data only with --show-data.',
  usage: 'tiered-session sessions --user ID (--db PATH | --redis URL [--prefix P]) [--show-data] [--json]',
  flags: {
    user: { type: 'string', value: 'ID', help: "the user id (what the store's `userId` option gives)" },
    ...STORE_FLAGS,
    'show-data': { type: 'boolean', help: "also print each session's data" },
    json: { ...JSON_FLAG, help: 'print the sessions as one JSON object' },
  },
}

export async function sessions(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(sessionsSpec, argv)
  if (flags.help === true) return
  const user = required(flags, 'user', sessionsSpec)
  const showData = flags['show-data'] === true
  const opened = await openStore(flags, sessionsSpec, { mustExist: true })
  let entries: Awaited<ReturnType<typeof sessionsOf>>
  try {
    entries = await sessionsOf(opened.store, user)
  } finally {
    await opened.store.close()
  }
  // NB: a store records when a session was created only with `maxLifetime`: otherwise the column stays empty.
  const rows = entries.map((entry) => ({
    handle: entry.handle,
    createdAt: entry.createdAt ?? null,
    expiresAt: entry.expiresAt,
    ...(showData ? { session: entry.session } : {}),
  }))
  if (flags.json === true) printJson({ user, sessions: rows })
  else
    printColumns(
      showData ? ['handle', 'created', 'expires', 'data'] : ['handle', 'created', 'expires'],
      rows.map((row) => [
        row.handle,
        row.createdAt === null ? '' : new Date(row.createdAt).toISOString(),
        new Date(row.expiresAt).toISOString(),
        ...(showData ? [JSON.stringify(row.session)] : []),
      ]),
    )
  checkDecoded(opened)
}

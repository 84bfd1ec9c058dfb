// `tiered-session import`: the NDJSON of `export` (stdin or --in FILE; see import-ndjson.ts), or with `--from
// session-file-store` the `<sid>.json` files of a session-file-store directory, into a store (a local SQLite
// file, or shared mode's Redis), each with the expiry it had there.

import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock } from '../../clock.js'
import { FILE_STORE_DEFAULT_TTL_S, parseFileStoreFile } from '../../migrate/file-store-format.js'
import { isValidSid } from '../../session-fields.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, requireFrom, STORE_FLAGS } from '../args.js'
import { CliError } from '../cli-error.js'
import { checkStoreFlags, openStore } from '../open-store.js'
import { note, Progress, printCounts } from '../output.js'
import { importNdjson, ndjsonInput } from './import-ndjson.js'

export const importSpec: CommandSpec = {
  name: 'import',
  summary:
    'Imports the NDJSON of `tiered-session export` (stdin, or --in FILE) into a local SQLite file (--db, created ' +
    'if missing) or into Redis (--redis); each session keeps its key and expiry, expired ones are skipped, a ' +
    'bad line is named by its number and skipped (exit 1). With --from session-file-store: the <sid>.json files ' +
    'of a session-file-store directory instead (encrypted ones are counted and skipped).',
  usage:
    'tiered-session import (--db PATH | --redis URL [--prefix P]) [--in FILE] [--json]\n' +
    '       tiered-session import --from session-file-store --dir DIR (--db PATH | --redis URL) [--prefix P] [--ttl S] [--json]',
  flags: {
    ...STORE_FLAGS,
    in: { type: 'string', value: 'FILE', help: 'read the NDJSON from this file instead of stdin' },
    from: { type: 'string', value: 'STORE', help: 'import from another store instead: session-file-store' },
    dir: {
      type: 'string',
      value: 'DIR',
      help: "with --from: session-file-store's directory (its `path` option)",
    },
    ttl: {
      type: 'string',
      value: 'S',
      help: "with --from: session-file-store's `ttl` option, in seconds",
      default: String(FILE_STORE_DEFAULT_TTL_S),
    },
    json: JSON_FLAG,
  },
}

const LABELS = {
  imported: 'imported',
  expired: 'expired (skipped)',
  encrypted: 'encrypted (skipped)',
  notASession: 'not a session (skipped)',
}

export async function importSessions(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(importSpec, argv)
  if (flags.help === true) return
  checkStoreFlags(flags, importSpec)
  if (flags.from === undefined) {
    if (flags.dir !== undefined) throw new CliError('--dir goes with --from session-file-store', 2)
    const input = ndjsonInput(typeof flags.in === 'string' ? flags.in : undefined)
    await importNdjson(input, await openStore(flags, importSpec, { mustExist: false }), flags.json === true)
    return
  }
  if (flags.in !== undefined) throw new CliError('--in reads NDJSON: it does not go with --from', 2)
  requireFrom(flags, 'session-file-store', importSpec)
  const dir = required(flags, 'dir', importSpec)
  const ttl = Number(flags.ttl)
  if (!Number.isFinite(ttl) || ttl <= 0) throw new CliError(`--ttl must be a number of seconds > 0`, 2)
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  )
  if (!isDir) throw new CliError(`no such directory: ${dir}`)
  const files = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort()
  const { store } = await openStore(flags, importSpec, { mustExist: false })
  const counts = { imported: 0, expired: 0, encrypted: 0, notASession: 0 }
  try {
    const progress = new Progress('import: files done', 500)
    for (const name of files) {
      const sid = name.slice(0, -'.json'.length)
      const entry = parseFileStoreFile(await readFile(join(dir, name), 'utf8'), systemClock.now(), ttl)
      if (entry.kind === 'session' && isValidSid(sid)) {
        await store.set(sid, entry.session as never)
        counts.imported++
      } else if (entry.kind === 'session' || entry.kind === 'not-a-session') counts.notASession++
      else counts[entry.kind]++
      progress.add(1)
    }
    progress.end()
  } finally {
    await store.close()
  }
  printCounts(counts, LABELS, flags.json === true)
  if (counts.encrypted > 0)
    note(
      `${counts.encrypted} encrypted file(s) skipped: session-file-store wrote them with its \`secret\` option, ` +
        'and they cannot be read without it; those users will log in again',
    )
}

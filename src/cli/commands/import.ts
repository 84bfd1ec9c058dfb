// `tiered-session import --from session-file-store`: the `<sid>.json` files of a session-file-store directory
// into a store (a local SQLite file, or shared mode's Redis), each with the expiry it had there.

import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { systemClock } from '../../clock.js'
import { FILE_STORE_DEFAULT_TTL_S, parseFileStoreFile } from '../../migrate/file-store-format.js'
import { isValidSid } from '../../session-fields.js'
import { TieredStore } from '../../store.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, requireFrom } from '../args.js'
import { CliError } from '../cli-error.js'
import { note, Progress, printCounts } from '../output.js'
import { closeRedis, connectRedis } from '../redis-client.js'

export const importSpec: CommandSpec = {
  name: 'import',
  summary:
    'Imports the sessions of a session-file-store directory (its <sid>.json files) into a local SQLite file ' +
    '(--db) or into Redis (--redis); each keeps the expiry it had. Encrypted files are counted and skipped.',
  usage:
    'tiered-session import --from session-file-store --dir DIR (--db PATH | --redis URL) [--prefix P] [--ttl S] [--json]',
  flags: {
    from: { type: 'string', value: 'STORE', help: 'where the sessions come from: session-file-store' },
    dir: { type: 'string', value: 'DIR', help: "session-file-store's directory (its `path` option)" },
    db: { type: 'string', value: 'PATH', help: 'the SQLite file of a store in local mode' },
    redis: { type: 'string', value: 'URL', help: 'the Redis of a store in shared mode' },
    prefix: { type: 'string', value: 'P', help: 'the key prefix in Redis', default: 'sess:' },
    ttl: {
      type: 'string',
      value: 'S',
      help: "session-file-store's `ttl` option, in seconds",
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
  requireFrom(flags, 'session-file-store', importSpec)
  const dir = required(flags, 'dir', importSpec)
  const ttl = Number(flags.ttl)
  if (!Number.isFinite(ttl) || ttl <= 0) throw new CliError(`--ttl must be a number of seconds > 0`, 2)
  if ((flags.db === undefined) === (flags.redis === undefined))
    throw new CliError('give one of --db PATH or --redis URL (see: tiered-session import --help)', 2)
  const isDir = await stat(dir).then(
    (s) => s.isDirectory(),
    () => false,
  )
  if (!isDir) throw new CliError(`no such directory: ${dir}`)
  const files = (await readdir(dir)).filter((name) => name.endsWith('.json')).sort()
  const store = await openStore(flags)
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

/** The store to import into: local mode on --db, or shared mode on --redis (no disk tier: nothing to spill). */
async function openStore(flags: Record<string, string | boolean>): Promise<TieredStore> {
  if (typeof flags.db === 'string') {
    try {
      return new TieredStore({ disk: { path: flags.db } })
    } catch (error) {
      throw new CliError(String((error as Error).message).split('\n')[0] as string)
    }
  }
  // NB: checked with a connection of our own first, for one clear line when Redis cannot be reached.
  await closeRedis(await connectRedis(flags.redis as string))
  const store = new TieredStore({
    redis: { url: flags.redis as string },
    prefix: flags.prefix as string,
    disk: false,
  })
  store.on('error', () => undefined)
  await store.ready()
  return store
}

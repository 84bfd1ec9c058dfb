// `tiered-session export`: every live session as NDJSON (ndjson-format.ts), one per line with its expiry, to
// stdout or --out FILE (0600: it holds every session). What was written goes to stderr, or stdout with --out.

import { once } from 'node:events'
import { createWriteStream, fchmodSync, openSync } from 'node:fs'
import type { Writable } from 'node:stream'
import { managerOf } from '../../store.js'
import { isDatabaseFile } from '../../tiers/sqlite-backup.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, STORE_FLAGS } from '../args.js'
import { CliError } from '../cli-error.js'
import { formatLine } from '../ndjson-format.js'
import { checkDecoded, openStore } from '../open-store.js'
import { Progress, printCounts } from '../output.js'

export const exportSpec: CommandSpec = {
  name: 'export',
  summary:
    'Writes every live session as NDJSON, one per line with its expiry (expired ones are left out), to ' +
    'stdout or --out FILE (created 0600). `import` reads it back, into either mode.',
  usage: 'tiered-session export (--db PATH | --redis URL [--prefix P]) [--out FILE] [--json]',
  flags: {
    ...STORE_FLAGS,
    out: { type: 'string', value: 'FILE', help: 'write to this file instead of stdout (0600)' },
    json: {
      ...JSON_FLAG,
      help: 'print the count as one JSON object (stderr when the sessions go to stdout)',
    },
  },
}

/** Writes `text`, waiting when the stream's buffer is full. */
async function write(stream: Writable, text: string): Promise<void> {
  if (!stream.write(text)) await once(stream, 'drain')
}

export async function exportSessions(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(exportSpec, argv)
  if (flags.help === true) return
  if (typeof flags.out === 'string' && typeof flags.db === 'string' && isDatabaseFile(flags.out, flags.db))
    throw new CliError('--out must not be the --db file (or its WAL)', 2)
  const opened = await openStore(flags, exportSpec, { mustExist: true })
  const toFile = typeof flags.out === 'string'
  let exported: number
  try {
    const stream: Writable = toFile ? openOut(flags.out as string) : process.stdout
    const failed = toFile ? once(stream, 'error').then(([error]) => Promise.reject(error)) : undefined
    failed?.catch(() => undefined)
    const engine = managerOf(opened.store)
    // NB: the total for the bar costs a count in SQLite; in Redis it would cost a second pass over every key.
    const total = opened.mode === 'local' ? await engine.length() : undefined
    const progress = new Progress('export: sessions written', 1000, total)
    exported = await engine.exportRows(async (rows) => {
      for (const row of rows) await written(write(stream, formatLine(row, opened.hashIds)), failed, flags.out)
      progress.add(rows.length)
    })
    if (toFile) {
      stream.end()
      await written(once(stream, 'finish'), failed, flags.out)
    }
    progress.end()
  } finally {
    await opened.store.close()
  }
  const counts = { exported }
  if (toFile) printCounts(counts, { exported: 'sessions exported' }, flags.json === true)
  else if (flags.json === true) process.stderr.write(`${JSON.stringify(counts)}\n`)
  checkDecoded(opened)
}

/** Waits for a write (or the end of the file), or a CliError when the --out file failed meanwhile. */
async function written(
  writing: Promise<unknown>,
  failed: Promise<never> | undefined,
  out: string | boolean | undefined,
): Promise<void> {
  try {
    await (failed === undefined ? writing : Promise.race([writing, failed]))
  } catch (error) {
    throw new CliError(`cannot write ${out}: ${String((error as Error).message).split('\n')[0]}`)
  }
}

/** The --out file, created (or truncated) 0600: it holds every session. */
function openOut(path: string): Writable {
  try {
    const fd = openSync(path, 'w', 0o600)
    fchmodSync(fd, 0o600)
    return createWriteStream('', { fd })
  } catch (error) {
    throw new CliError(`cannot write ${path}: ${String((error as Error).message).split('\n')[0]}`)
  }
}

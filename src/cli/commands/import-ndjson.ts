// `tiered-session import` without --from: the NDJSON of `export` (ndjson-format.ts) from stdin or --in FILE into
// a store, each session under its key with its expiry. A bad line is counted and named by its number (never by
// its content), and the rest go on.

import { createReadStream, existsSync } from 'node:fs'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { ErrorCodes, isTieredSessionError } from '../../errors.js'
import type { SessionEngine } from '../../manager/engine.js'
import { managerOf } from '../../store.js'
import { CliError } from '../cli-error.js'
import { parseLine, storedKeyOf } from '../ndjson-format.js'
import type { OpenedStore } from '../open-store.js'
import { note, Progress, printCounts } from '../output.js'

/** Sessions written at once (they share group commits, or Redis round trips). */
const BATCH = 256

/** Bad lines named one by one; past these only counted. */
const NAMED_BAD_LINES = 20

/** Codes that say a line's session cannot be stored here (the line is bad, the store is fine). */
const LINE_CODES = new Set<string>([
  ErrorCodes.INVALID_SID,
  ErrorCodes.SESSION_TOO_LARGE,
  ErrorCodes.ENCODE_FAILED,
])

const LABELS = { imported: 'imported', expired: 'expired (skipped)', bad: 'bad lines (skipped)' }

/** The input: --in FILE, or stdin. */
export function ndjsonInput(path: string | undefined): Readable {
  if (path === undefined) return process.stdin
  if (!existsSync(path)) throw new CliError(`no such file: ${path}`)
  return createReadStream(path)
}

/** Imports every line of `input` into the opened store; throws a CliError (exit 1) when lines were bad. */
export async function importNdjson(input: Readable, opened: OpenedStore, json: boolean): Promise<void> {
  const engine = managerOf(opened.store)
  const counts = { imported: 0, expired: 0, bad: 0 }
  const bad = (lineNo: number, reason: string) => {
    counts.bad++
    if (counts.bad <= NAMED_BAD_LINES) note(`line ${lineNo}: ${reason} (skipped)`)
  }
  const progress = new Progress('import: lines done')
  let pending: Array<Promise<void>> = []
  let lineNo = 0
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })
  try {
    for await (const text of lines) {
      lineNo++
      if (text.trim() === '') continue
      const parsed = parseLine(text)
      const stored = parsed.ok ? storedKeyOf(parsed.line, opened.hashIds) : parsed
      if (!stored.ok) bad(lineNo, stored.reason)
      else if (parsed.ok) {
        const row = { ...parsed.line, key: stored.key, createdAt: parsed.line.createdAt ?? undefined }
        pending.push(importOne(engine, row, lineNo, counts, bad))
      }
      if (pending.length >= BATCH) {
        await Promise.all(pending)
        progress.add(pending.length)
        pending = []
      }
    }
    await Promise.all(pending)
    progress.add(pending.length)
  } catch (error) {
    if (error instanceof CliError) throw error
    throw new CliError(String((error as Error).message).split('\n')[0] as string)
  } finally {
    await opened.store.close()
  }
  progress.end()
  printCounts(counts, LABELS, json)
  if (counts.bad > NAMED_BAD_LINES) note(`... and ${counts.bad - NAMED_BAD_LINES} more bad lines`)
  if (counts.bad > 0)
    throw new CliError(`${counts.bad} bad line(s) skipped; the other sessions were imported`)
}

async function importOne(
  engine: SessionEngine,
  line: Parameters<SessionEngine['importRow']>[0],
  lineNo: number,
  counts: { imported: number; expired: number },
  bad: (lineNo: number, reason: string) => void,
): Promise<void> {
  try {
    if (await engine.importRow(line)) counts.imported++
    else counts.expired++
  } catch (error) {
    if (isTieredSessionError(error) && LINE_CODES.has(error.code)) bad(lineNo, error.code)
    else throw error
  }
}

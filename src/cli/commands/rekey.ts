// `tiered-session rekey`: after a new key was put first in `encryption.keys` (TIERED_SESSION_KEYS), rewrites
// every stored session so it is sealed with it, online; then the old keys can be dropped.

import { managerOf } from '../../store.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, STORE_FLAGS } from '../args.js'
import { CliError } from '../cli-error.js'
import { checkDecoded, KEYS_ENV, openStore } from '../open-store.js'
import { Progress, printCounts } from '../output.js'

export const rekeySpec: CommandSpec = {
  name: 'rekey',
  summary:
    `Rewrites every stored session so it is encrypted with the first key of ${KEYS_ENV} (the new one, ` +
    'followed by the old ones), online: apps keep serving, and their writes meanwhile are kept. Sessions ' +
    'written before encryption was on are encrypted too. Afterwards the old keys can be dropped.',
  usage: `${KEYS_ENV}=NEW,OLD tiered-session rekey (--db PATH | --redis URL [--prefix P]) [--json]`,
  flags: { ...STORE_FLAGS, json: JSON_FLAG },
}

const LABELS = {
  rewritten: 'sessions rewritten',
  gone: 'gone meanwhile',
  undecodable: 'did not decode (left as they are)',
}

export async function rekey(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(rekeySpec, argv)
  if (flags.help === true) return
  if ((process.env[KEYS_ENV] ?? '').trim() === '')
    throw new CliError(`rekey needs the keys in ${KEYS_ENV} (the new key first, then the old ones)`, 2)
  const opened = await openStore(flags, rekeySpec, { mustExist: true })
  let counts: Awaited<ReturnType<ReturnType<typeof managerOf>['rekey']>>
  try {
    const progress = new Progress('rekey: sessions done')
    counts = await managerOf(opened.store).rekey((n) => progress.add(n))
    progress.end()
  } finally {
    await opened.store.close()
  }
  printCounts({ ...counts }, LABELS, flags.json === true)
  checkDecoded(opened)
}

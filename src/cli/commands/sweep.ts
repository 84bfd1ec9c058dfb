// `tiered-session sweep`: deletes expired sessions now, in bounded batches (one transaction each), with progress.
// Redis expires its own keys: with --redis there is nothing to sweep, and the tool says so.

import { managerOf } from '../../store.js'
import type { CommandSpec } from '../args.js'
import { count, JSON_FLAG, parseFlags, STORE_FLAGS } from '../args.js'
import { openStore } from '../open-store.js'
import { note, Progress, printCounts } from '../output.js'

export const sweepSpec: CommandSpec = {
  name: 'sweep',
  summary:
    'Deletes expired sessions now, in batches of --batch rows (one transaction each, so apps on the same file ' +
    'keep serving). Redis expires its own keys: with --redis there is nothing to sweep.',
  usage: 'tiered-session sweep (--db PATH | --redis URL [--prefix P]) [--batch N] [--json]',
  flags: {
    ...STORE_FLAGS,
    batch: { type: 'string', value: 'N', help: 'most rows deleted per transaction', default: '1000' },
    json: JSON_FLAG,
  },
}

export async function sweep(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(sweepSpec, argv)
  if (flags.help === true) return
  const batch = count(flags, 'batch', 1)
  const opened = await openStore(flags, sweepSpec, { mustExist: true, sweepBatchSize: batch })
  let removed = 0
  try {
    if (opened.mode === 'local') {
      const progress = new Progress('sweep: expired sessions deleted', batch)
      removed = await managerOf(opened.store).sweep((n) => progress.add(n))
      progress.end()
    }
  } finally {
    await opened.store.close()
  }
  printCounts({ removed }, { removed: 'expired sessions deleted' }, flags.json === true)
  if (opened.mode === 'shared') note('Redis expires sessions on its own: nothing to sweep')
}

// `tiered-session destroy HANDLE`: destroys one session, named by its handle (see `sessions`); exit 1 when no
// live session has it.

import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, STORE_FLAGS } from '../args.js'
import { CliError } from '../cli-error.js'
import { openStore } from '../open-store.js'
import { printCounts } from '../output.js'
import { destroyHandle } from '../session-handles.js'

export const destroySpec: CommandSpec = {
  name: 'destroy',
  summary:
    'Destroys the session with this handle (from `sessions`). Running apps stop serving it within a second.',
  usage: 'tiered-session destroy HANDLE (--db PATH | --redis URL [--prefix P]) [--json]',
  positional: { name: 'handle', value: 'HANDLE' },
  flags: { ...STORE_FLAGS, json: JSON_FLAG },
}

export async function destroy(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(destroySpec, argv)
  if (flags.help === true) return
  const handle = flags.handle
  if (typeof handle !== 'string' || handle === '')
    throw new CliError('give the HANDLE of the session to destroy (see: tiered-session destroy --help)', 2)
  const opened = await openStore(flags, destroySpec, { mustExist: true })
  let found: boolean
  try {
    found = await destroyHandle(opened.store, handle)
  } finally {
    await opened.store.close()
  }
  if (!found) throw new CliError('no live session has that handle')
  printCounts({ destroyed: 1 }, { destroyed: 'sessions destroyed' }, flags.json === true)
}

// `tiered-session logout --user ID [--except HANDLE]`: destroys every session of a user ("log out everywhere"),
// or all but one. Apps on the same file stop serving them within a second; on Redis, at once.

import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, STORE_FLAGS } from '../args.js'
import { checkDecoded, openStore } from '../open-store.js'
import { printCounts } from '../output.js'
import { logoutUser } from '../session-handles.js'

export const logoutSpec: CommandSpec = {
  name: 'logout',
  summary:
    'Destroys every session of a user, or every one but --except HANDLE (see `sessions`). Running apps stop ' +
    'serving them within a second.',
  usage: 'tiered-session logout --user ID (--db PATH | --redis URL [--prefix P]) [--except HANDLE] [--json]',
  flags: {
    user: { type: 'string', value: 'ID', help: "the user id (what the store's `userId` option gives)" },
    except: { type: 'string', value: 'HANDLE', help: 'the handle of a session to keep' },
    ...STORE_FLAGS,
    json: JSON_FLAG,
  },
}

export async function logout(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(logoutSpec, argv)
  if (flags.help === true) return
  const user = required(flags, 'user', logoutSpec)
  const except = typeof flags.except === 'string' ? flags.except : undefined
  const opened = await openStore(flags, logoutSpec, { mustExist: true })
  let destroyed: number
  try {
    destroyed = await logoutUser(opened.store, user, except)
  } finally {
    await opened.store.close()
  }
  printCounts({ destroyed }, { destroyed: 'sessions destroyed' }, flags.json === true)
  checkDecoded(opened)
}

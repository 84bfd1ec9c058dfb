// What a backup copy of a session database holds, read with a connection of its own (closed before returning).

import Database from 'better-sqlite3'

/** The copy's `PRAGMA integrity_check` answer ('ok' for a valid database) and the keys of its sessions. */
export function readBackup(path: string): { integrity: string; keys: Set<string> } {
  const copy = new Database(path, { readonly: true, fileMustExist: true })
  try {
    const integrity = String(copy.pragma('integrity_check', { simple: true }))
    const rows = copy.prepare<[], { sid: string }>('SELECT sid FROM sessions').all()
    return { integrity, keys: new Set(rows.map((row) => row.sid)) }
  } finally {
    copy.close()
  }
}

// A diagnostic contender (not a product): express-session's MemoryStore whose `set` also commits the session's
// JSON into SQLite, in the thinnest way a durable store could — better-sqlite3 on the event loop, WAL with
// synchronous NORMAL, one table with an index on expiry, one upsert per write, the writes of one turn of the
// event loop in one transaction, the callback after the commit. It measures the floor of what event-loop SQLite
// durability costs a request on this machine, beside what TieredStore local costs (HTTP contender
// `es-memory+sqlite`, run only when named with --http-only).

import { join } from 'node:path'
import Database from 'better-sqlite3'
import session from 'express-session'

const DAY_MS = 86_400_000

/** Opens the store on a new file in `dir`; `close()` closes the file. */
export function sqliteFloorStore(dir) {
  const store = new session.MemoryStore()
  const db = new Database(join(dir, 'floor.db'))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.exec(`CREATE TABLE IF NOT EXISTS sessions (sid TEXT PRIMARY KEY NOT NULL, payload TEXT NOT NULL,
             expiresAt INTEGER NOT NULL, version INTEGER NOT NULL);
           CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expiresAt)`)
  const put = db.prepare(`INSERT INTO sessions (sid, payload, expiresAt, version) VALUES (?, ?, ?, 1)
                          ON CONFLICT (sid) DO UPDATE SET payload = excluded.payload, expiresAt = excluded.expiresAt,
                          version = sessions.version + 1`)
  const commit = db.transaction((rows) => {
    for (const [sid, json, expiresAt] of rows) put.run(sid, json, expiresAt)
  })
  let queue = []
  const flush = () => {
    const rows = queue
    queue = []
    try {
      commit(rows)
    } catch (error) {
      for (const row of rows) row[3](error)
      return
    }
    for (const row of rows) row[3]()
  }
  const set = store.set.bind(store)
  store.set = (sid, sess, callback = () => {}) => {
    const json = JSON.stringify(sess)
    const expires = sess?.cookie?.expires
    const expiresAt = expires ? new Date(expires).getTime() : Date.now() + DAY_MS
    set(sid, sess, (error) => {
      if (error) return callback(error)
      if (queue.length === 0) setImmediate(flush)
      queue.push([sid, json, expiresAt, callback])
    })
  }
  return { store, close: () => db.close() }
}

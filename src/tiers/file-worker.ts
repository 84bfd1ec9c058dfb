// The code of the worker thread that does a SQLite file's background work, so that it never runs on the event
// loop: checkpoints of the write-ahead log (copying the log into the database file, and its fsync), and in
// shared mode the spill cache's writes (a spill's rows, random inserts into the B-trees). Plain JavaScript run
// with `eval: true`: no file of its own to find next to the bundle. One worker serves every database file of
// the process; each file it serves gets a connection of its own here.
//
// Messages in:  { type: 'open', id, path, synchronous, maxPageCount, putSql, replaceSql, deleteSql, progress } (progress: a
//               SharedArrayBuffer of one Int32, set to the seq of each cache batch once it is done) ·
//               { type: 'checkpoint', id } · { type: 'count', id } (the file's rows) ·
//               { type: 'cache', id, seq, ops, payloads } (ops: [sid, row] to upsert, row { payload, expiresAt,
//               version, userId, createdAt } or, its payload in `payloads` (UTF-8 bytes), { at, length, ... };
//               or [sid, null] to delete; one transaction) ·
//               { type: 'close', id, signal } (signal: a SharedArrayBuffer of one Int32, set to 1 once closed)
// Messages out: { type: 'done', id, log, checkpointed } · { type: 'failed', id, message } ·
//               { type: 'cached', id, seq, rows } · { type: 'cache-failed', id, seq, message } ·
//               { type: 'counted', id, rows } (rows -1: the count failed)
// workerData:   { sqlite } — the resolved path of better-sqlite3 (the worker's own require has no base to start from).

/** The nice value of the worker's thread (0 is normal, 19 the lowest priority). */
const WORKER_NICE = 10

export const FILE_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
const files = new Map()
// Background work: on Linux this lowers the priority of this thread only (its nice value), so that on a busy
// machine the event loop's thread is scheduled first. Elsewhere (or where it is refused) nothing changes.
try {
  require('node:os').setPriority(0, ${WORKER_NICE})
} catch {}
const messageOf = (error) => String((error && error.message) || error)
const fail = (id, error) => parentPort.postMessage({ type: 'failed', id, message: messageOf(error) })
function cache(file, m) {
  try {
    // NB: the file is being closed: what is still queued for it is only a cache, and is dropped.
    if (Atomics.load(file.progress, 1) === 1) return

    file.put ??= file.db.prepare(file.putSql)
    file.replace ??= file.db.prepare(file.replaceSql)
    file.del ??= file.db.prepare(file.deleteSql)
    const bytes = m.payloads === undefined ? undefined : Buffer.from(m.payloads.buffer, m.payloads.byteOffset, m.payloads.byteLength)
    file.db.transaction(() => {
      for (const [sid, row] of m.ops) {
        if (row === null) {
          file.del.run(sid)
          continue
        }
        const payload = row.payload ?? bytes.toString('utf8', row.at, row.at + row.length)
        const params = { sid, payload, expiresAt: row.expiresAt, version: row.version, userId: row.userId, createdAt: row.createdAt }
        // NB: a row already cached for the same user is an UPDATE that leaves the user index alone.
        if (file.replace.get(params) === undefined) file.put.get(params)
      }
    })()
    parentPort.postMessage({ type: 'cached', id: m.id, seq: m.seq, rows: m.ops.length })
  } catch (error) {
    parentPort.postMessage({ type: 'cache-failed', id: m.id, seq: m.seq, message: messageOf(error) })
  } finally {
    Atomics.store(file.progress, 0, m.seq)
    Atomics.notify(file.progress, 0)
  }
}
parentPort.on('message', (m) => {
  if (m.type === 'open') {
    try {
      const db = new Database(m.path, { fileMustExist: true })
      db.pragma('synchronous = ' + m.synchronous)
      db.pragma('busy_timeout = 5000')
      db.pragma('wal_autocheckpoint = 0')
      if (m.maxPageCount !== undefined) db.pragma('max_page_count = ' + m.maxPageCount)
      const progress = new Int32Array(m.progress)
      files.set(m.id, { db, putSql: m.putSql, replaceSql: m.replaceSql, deleteSql: m.deleteSql, progress })
    } catch (error) {
      fail(m.id, error)
    }
  } else if (m.type === 'checkpoint') {
    const file = files.get(m.id)
    if (file === undefined) return
    try {
      const [row] = file.db.pragma('wal_checkpoint(PASSIVE)')
      parentPort.postMessage({ type: 'done', id: m.id, log: row.log, checkpointed: row.checkpointed })
    } catch (error) {
      fail(m.id, error)
    }
  } else if (m.type === 'count') {
    const file = files.get(m.id)
    if (file === undefined) return
    try {
      const { n } = file.db.prepare('SELECT count(*) AS n FROM sessions').get()
      parentPort.postMessage({ type: 'counted', id: m.id, rows: n })
    } catch (error) {
      parentPort.postMessage({ type: 'counted', id: m.id, rows: -1, message: messageOf(error) })
    }
  } else if (m.type === 'cache') {
    const file = files.get(m.id)
    if (file !== undefined) cache(file, m)
  } else if (m.type === 'close') {
    const file = files.get(m.id)
    files.delete(m.id)
    try {
      if (file !== undefined) file.db.close()
    } finally {
      const flag = new Int32Array(m.signal)
      Atomics.store(flag, 0, 1)
      Atomics.notify(flag, 0)
    }
  }
})
`

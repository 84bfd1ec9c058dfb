// The code of the worker thread that checkpoints SQLite's write-ahead logs, so that copying the log into the
// database file (and its fsync) never runs on the event loop. Plain JavaScript run with `eval: true`: no file of
// its own to find next to the bundle. One worker serves every database file of the process; each file it serves
// gets a connection of its own here.
//
// Messages in:  { type: 'open', id, path, synchronous } · { type: 'checkpoint', id } ·
//               { type: 'close', id, signal } (signal: a SharedArrayBuffer of one Int32, set to 1 once closed)
// Messages out: { type: 'done', id, log, checkpointed } · { type: 'failed', id, message }
// workerData:   { sqlite } — the resolved path of better-sqlite3 (the worker's own require has no base to start from).

export const CHECKPOINT_WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Database = require(workerData.sqlite)
const files = new Map()
const fail = (id, error) =>
  parentPort.postMessage({ type: 'failed', id, message: String((error && error.message) || error) })
parentPort.on('message', (m) => {
  if (m.type === 'open') {
    try {
      const db = new Database(m.path, { fileMustExist: true })
      db.pragma('synchronous = ' + m.synchronous)
      files.set(m.id, db)
    } catch (error) {
      fail(m.id, error)
    }
  } else if (m.type === 'checkpoint') {
    const db = files.get(m.id)
    if (db === undefined) return
    try {
      const [row] = db.pragma('wal_checkpoint(PASSIVE)')
      parentPort.postMessage({ type: 'done', id: m.id, log: row.log, checkpointed: row.checkpointed })
    } catch (error) {
      fail(m.id, error)
    }
  } else if (m.type === 'close') {
    const db = files.get(m.id)
    files.delete(m.id)
    try {
      if (db !== undefined) db.close()
    } finally {
      const flag = new Int32Array(m.signal)
      Atomics.store(flag, 0, 1)
      Atomics.notify(flag, 0)
    }
  }
})
`

// The writes of the disk tier, as they run inside one group-committed SQLite transaction: upserts, deletes,
// read-modify-write updates, clear, and the outbox's entries (shared mode), each with its result.

import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import { withCookie } from '../codec.js'
import type { DiskStatements, RawRow } from './disk-statements.js'
import { toRecord } from './disk-statements.js'
import type { OutboxEntry } from './outbox-log.js'
import type { RecordInput, StoredRecord, TouchInput, UpdateResult } from './tier.js'

/** A touch waiting for its transaction; later touches of the session replace `latest` (coalescing). */
export interface TouchOp {
  readonly type: 'touch'
  readonly sid: string
  latest: TouchInput
  /**
   * True once a write that replaces the row was queued after it: it is never committed, and stays only to keep
   * the sweeper off the row until that write commits (later touches start a new op).
   */
  dropped?: boolean
}

/** One write in a group-committed transaction. */
export type DiskOp =
  | {
      readonly type: 'put'
      readonly sid: string
      readonly record: RecordInput
      readonly after: number
      /** Probably a new row: the upsert first (see {@link putRow}). */
      readonly fresh: boolean
    }
  | { readonly type: 'delete'; readonly sid: string; readonly upToVersion: number | undefined }
  | {
      readonly type: 'update'
      readonly sid: string
      readonly change: (current: StoredRecord) => RecordInput | undefined
    }
  | { readonly type: 'clear' }
  | TouchOp
  /** Shared mode, Redis down: queue a write for replay and keep the local copy. Resolves to its seq. */
  | { readonly type: 'outbox-set'; readonly sid: string; readonly record: StoredRecord }
  /** Shared mode, Redis down: queue a destroy for replay and drop the local copy. Resolves to its seq. */
  | { readonly type: 'outbox-delete'; readonly sid: string; readonly version: number }

/** What a {@link DiskOp} resolves to: a record, an update's outcome, whether a row was there, a seq or a count. */
export type DiskResult = StoredRecord | UpdateResult | boolean | number

const MISSING: UpdateResult = { status: 'missing' }
const UNCHANGED: UpdateResult = { status: 'unchanged' }

/**
 * True when the op writes the whole row of its session, or deletes it whatever its version: a touch collected
 * before it has nothing left to add.
 */
export function replacesRow(op: DiskOp): boolean {
  return op.type === 'put' || (op.type === 'delete' && op.upToVersion === undefined)
}

/** True when the op may leave a session row behind (so lookups can no longer be skipped). */
export function mayPut(op: DiskOp): boolean {
  return op.type === 'put' || op.type === 'update' || op.type === 'outbox-set'
}

/**
 * Upserts a row: with `version` (the record's, unless null is passed) exactly that version, else one more than
 * the old one, and than `after` when it is above 0. `fresh` (probably a new row): the upsert runs first, not
 * the UPDATE that would find nothing (~2 µs saved per new session; an existing row is then rewritten by the
 * upsert, user index included).
 */
export function putRow(
  stmt: DiskStatements,
  sid: string,
  record: RecordInput,
  after: number,
  version: number | null = record.version ?? null,
  fresh = false,
): StoredRecord {
  const payload = stmt.sealer.seal(sid, record.payload)
  const createdAt = record.createdAt ?? null
  const params = { sid, payload, expiresAt: record.expiresAt, version, userId: record.userId, createdAt }
  const withAfter = version === null && after > 0
  // NB: an existing row of the same user first (an UPDATE, see DiskStatements.replace), else the upsert.
  const row = (
    withAfter
      ? fresh
        ? stmt.putAfter.get({ ...params, after })
        : (stmt.replaceAfter.get({ ...params, after }) ?? stmt.putAfter.get({ ...params, after }))
      : fresh
        ? stmt.put.get(params)
        : (stmt.replace.get(params) ?? stmt.put.get(params))
  ) as { version: number }
  return {
    payload: record.payload,
    expiresAt: record.expiresAt,
    version: row.version,
    userId: record.userId,
    createdAt: record.createdAt,
  }
}

function update(
  stmt: DiskStatements,
  sid: string,
  change: (current: StoredRecord) => RecordInput | undefined,
  now: number,
): UpdateResult | Error {
  const raw = stmt.get.get(sid)
  if (raw === undefined) return MISSING
  let next: RecordInput | undefined
  try {
    // NB: lazy: `change` runs inside this try, so a payload that does not open is still this update's error.
    const current = toRecord(raw, stmt.sealer, true)
    if (current.expiresAt <= now) return MISSING
    next = change(current)
  } catch (error) {
    return error as Error
  }
  if (next === undefined) return UNCHANGED
  // NB: an update always raises the version, whatever `change` returned.
  return { status: 'written', record: putRow(stmt, sid, next, 0, null) }
}

/**
 * A deferred touch: the row, while still at the touch's version and expiring earlier, gets the new cookie in its
 * payload and the new expiry. A row that does not open or whose payload takes no cookie is left as it is.
 */
function touchRow(stmt: DiskStatements, sid: string, touch: TouchInput): boolean {
  const raw = stmt.get.get(sid)
  if (raw === undefined) return false
  let payload: string
  try {
    const current = toRecord(raw, stmt.sealer)
    // NB: the touch was acknowledged while the session was live, and memory has served its expiry since: it
    // applies even when committed after the row's old expiry (a sweep leaves rows with a touch pending alone).
    if (current.version !== touch.version || current.expiresAt >= touch.expiresAt) return false
    payload = stmt.sealer.seal(sid, withCookie(current.payload, touch.cookieText))
  } catch {
    return false
  }
  return stmt.touch.run({ sid, payload, expiresAt: touch.expiresAt, version: touch.version }).changes > 0
}

/** Runs one op inside the write transaction. SQLite errors throw (failing the batch); logic errors are results. */
export function applyOp(stmt: DiskStatements, op: DiskOp, now: number): DiskResult | Error {
  switch (op.type) {
    case 'put':
      return putRow(stmt, op.sid, op.record, op.after, op.record.version ?? null, op.fresh)
    case 'delete': {
      const run =
        op.upToVersion === undefined ? stmt.delete.run(op.sid) : stmt.deleteUpTo.run(op.sid, op.upToVersion)
      return run.changes > 0
    }
    case 'clear':
      return stmt.clear.run().changes
    case 'update':
      return update(stmt, op.sid, op.change, now)
    case 'touch':
      return touchRow(stmt, op.sid, op.latest)
    case 'outbox-set':
      putRow(stmt, op.sid, op.record, 0)
      return Number(
        stmt.outboxInsert.run({
          sid: op.sid,
          op: 'set',
          ...op.record,
          createdAt: op.record.createdAt ?? null,
          payload: stmt.sealer.seal(op.sid, op.record.payload),
        }).lastInsertRowid,
      )
    case 'outbox-delete':
      stmt.delete.run(op.sid)
      return Number(
        stmt.outboxInsert.run({
          sid: op.sid,
          op: 'delete',
          payload: null,
          expiresAt: 0,
          version: op.version,
          userId: null,
          createdAt: null,
        }).lastInsertRowid,
      )
  }
}

/** Turns a raw outbox row into an entry; throws TS_DECODE_FAILED for a row with columns of the wrong type. */
export function toOutboxEntry(raw: RawRow & { seq: number; op: string }, sealer: PayloadSealer): OutboxEntry {
  const op = raw.op === 'delete' ? 'delete' : 'set'
  const record =
    op === 'delete'
      ? { payload: '', expiresAt: 0, version: Number(raw.version), userId: null }
      : toRecord(raw, sealer)
  return { seq: raw.seq, sid: String(raw.sid), op, record }
}

// What the command line tool asks of the engine beyond express-session's contract: an online backup, an
// inventory of the authority, and export / import of rows under their stored keys (never hashed again).

import { encodeSession } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import { assertValidSid, normalizeUserId } from '../session-fields.js'
import type { Inventory } from '../tiers/inventory.js'
import { rowsInventory } from '../tiers/inventory.js'
import type { BackupProgress } from '../tiers/sqlite-backup.js'
import type { TierRow } from '../tiers/tier.js'
import type { EngineContext } from './context.js'
import type { ExportedRow } from './engine.js'
import type { WritePlan } from './write-plan.js'

/** Sessions per page of an export. */
const EXPORT_PAGE = 1000

/** The tool-side operations of one engine. */
export class StoreTools {
  readonly #ctx: EngineContext
  readonly #plan: WritePlan
  /** Backups under way (close waits for them). */
  readonly #backups = new Set<Promise<unknown>>()

  constructor(context: EngineContext, plan: WritePlan) {
    this.#ctx = context
    this.#plan = plan
  }

  /** Resolves once every backup under way has ended (close() waits for them). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.#backups])
  }

  /**
   * An online, consistent copy of the SQLite file at `path`, with every write acknowledged before the call in
   * it. TS_NO_DISK_TIER without a file (`disk: false`); TS_BACKUP_FAILED when `path` cannot be written.
   */
  async backup(path: string, onProgress: (progress: BackupProgress) => void): Promise<BackupProgress> {
    const ctx = this.#ctx
    ctx.checkOpen()
    if (typeof path !== 'string' || path === '')
      throw new TieredSessionError(ErrorCodes.BACKUP_FAILED, 'the backup path must be a non-empty string')
    if (ctx.disk === null)
      throw new TieredSessionError(
        ErrorCodes.NO_DISK_TIER,
        'backup copies the SQLite file, and this store has none (disk: false)',
      )
    // NB: the disk tier commits the queued writes (group commit) before the copy starts.
    const running = ctx.disk.backup(path, onProgress)
    this.#backups.add(running)
    try {
      return await running
    } finally {
      this.#backups.delete(running)
    }
  }

  /** What the authority holds, for an operator: by SQL on the file (local mode), or over Redis's rows. */
  async inventory(top: number): Promise<Inventory> {
    const ctx = this.#ctx
    ctx.checkOpen()
    try {
      if (ctx.shared === null && ctx.disk !== null) {
        ctx.disk.commitTouches()
        return ctx.disk.inventory(ctx.now(), top)
      }
      const rows = await ctx.authority.rows(ctx.onCorrupt)
      return {
        ...rowsInventory(rows, top),
        expiredNotSwept: null,
        outboxDepth: ctx.disk === null ? null : ctx.disk.outboxLog.size(),
      }
    } catch (error) {
      return ctx.fail(error)
    }
  }

  /**
   * Every live session under its stored key (stored key, not a session id), in pages of EXPORT_PAGE handed to
   * `onPage`, which is awaited before the next page is read (local mode pages through the file in key order, so
   * a large store never sits in memory whole); undecodable rows are reported and left out. Resolves to how many.
   */
  async exportRows(onPage: (rows: ExportedRow[]) => Promise<void>): Promise<number> {
    const ctx = this.#ctx
    const toExported = (rows: readonly TierRow[]): ExportedRow[] => {
      const out: ExportedRow[] = []
      for (const row of rows) {
        const session = ctx.decode(row)
        if (session !== undefined)
          out.push({
            key: row.sid,
            session,
            expiresAt: row.expiresAt,
            userId: row.userId,
            createdAt: row.createdAt,
          })
      }
      return out
    }
    let count = 0
    const disk = ctx.shared === null ? ctx.disk : null
    if (disk !== null) {
      ctx.checkOpen()
      disk.commitTouches()
      let after: string | undefined = ''
      while (after !== undefined) {
        let page: { rows: TierRow[]; last?: string }
        try {
          page = disk.rowsAfter(after, EXPORT_PAGE, ctx.onCorrupt)
        } catch (error) {
          return ctx.fail(error)
        }
        const rows = toExported(page.rows)
        count += rows.length
        await onPage(rows)
        after = page.last
      }
      return count
    }
    const rows = await this.#ctx.queryAuthority(
      () => ctx.authority.rows(ctx.onCorrupt),
      (found) => found,
    )
    for (let i = 0; i < rows.length; i += EXPORT_PAGE) {
      const page = toExported(rows.slice(i, i + EXPORT_PAGE))
      count += page.length
      await onPage(page)
    }
    return count
  }

  /**
   * Stores `row.session` under `row.key` as it is (stored key, not a session id: never hashed again) with its
   * expiry, replacing what was there; local copies are dropped at the commit. False for an expired row.
   */
  async importRow(row: ExportedRow): Promise<boolean> {
    const ctx = this.#ctx
    ctx.checkOpen()
    const record = ctx.prepare(() => {
      assertValidSid(row.key)
      const { payload, bytes } = encodeSession(row.session)
      this.#plan.checkSize(bytes)
      return {
        payload,
        expiresAt: row.expiresAt,
        userId: normalizeUserId(row.userId),
        createdAt: row.createdAt,
      }
    }, 'the session could not be imported')
    if (record.expiresAt <= ctx.now()) return false
    try {
      await ctx.authority.write(row.key, record, { onCommit: () => ctx.forget(row.key) })
    } catch (error) {
      return ctx.fail(error)
    }
    ctx.counters.writes++
    return true
  }
}

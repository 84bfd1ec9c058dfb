// The Redis tier's whole-store queries: every session (SCAN on every master, never KEYS), one user's sessions
// (the user index, pruned of entries that went stale), and clearing the prefix.

import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { ClearOptions, OnCorrupt, StoredRecord, TierRow } from '../tiers/tier.js'
import type { RedisConnection } from './connection.js'
import type { LegacySessions } from './legacy-sessions.js'
import type { UserIndex } from './user-index.js'

/** What the listings need of the tier. */
export interface RedisListingsOptions {
  readonly connection: RedisConnection
  readonly prefix: string
  readonly index: UserIndex
  /** `migrate`: connect-redis's sessions, cleared with ours. */
  readonly legacy: LegacySessions | undefined
  /** The tier's read of one session (TS_DECODE_FAILED for a value that is not ours). */
  readonly get: (sid: string) => Promise<StoredRecord | undefined>
  /** The tier's destroy of one session. */
  readonly delete: (sid: string) => Promise<boolean>
}

/** Listings and clearing of the Redis tier. */
export class RedisListings {
  readonly #options: RedisListingsOptions

  constructor(options: RedisListingsOptions) {
    this.#options = options
  }

  /** Every session key on every master, via SCAN (never KEYS). */
  async #keys(): Promise<string[]> {
    const { connection, prefix, index } = this.#options
    const keys = await connection.scan(`${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`)
    return keys.filter((key) => !index.isIndexKey(key))
  }

  /** Ids of live sessions. */
  async ids(): Promise<string[]> {
    return (await this.rows(() => undefined)).map((row) => row.sid)
  }

  /** How many live sessions there are. */
  async countLive(): Promise<number> {
    return (await this.ids()).length
  }

  /** Every live session; a value that is not ours goes to `onCorrupt`. */
  async rows(onCorrupt: OnCorrupt): Promise<TierRow[]> {
    const keys = await this.#keys()
    return this.#rowsOf(
      keys.map((key) => key.slice(this.#options.prefix.length)),
      onCorrupt,
    )
  }

  async #rowsOf(sids: string[], onCorrupt: OnCorrupt): Promise<TierRow[]> {
    const rows = await Promise.all(
      sids.map(async (sid) => {
        try {
          const record = await this.#options.get(sid)
          return record === undefined ? undefined : { sid, ...record }
        } catch (error) {
          if (error instanceof TieredSessionError && error.code === ErrorCodes.DECODE_FAILED) {
            onCorrupt(error)
            return undefined
          }
          throw error
        }
      }),
    )
    return rows.filter((row): row is TierRow => row !== undefined)
  }

  /** Live sessions of one user; index entries of sessions gone or moved to another user are pruned. */
  async rowsOfUser(userId: string, onCorrupt: OnCorrupt): Promise<TierRow[]> {
    const { index } = this.#options
    const sids = await index.members(userId)
    const rows = await this.#rowsOf(sids, onCorrupt)
    const live = new Set(rows.filter((row) => row.userId === userId).map((row) => row.sid))
    const stale = sids.filter((sid) => !live.has(sid))
    await index.prune(userId, stale)
    return rows.filter((row) => live.has(row.sid))
  }

  /** Deletes every session, tombstone and index under the prefix. */
  async clear(options: ClearOptions = {}): Promise<void> {
    const { connection, prefix, index, legacy } = this.#options
    for (const key of await this.#keys()) {
      await this.#options.delete(key.slice(prefix.length))
      await connection.run('a session delete', (c) => c.del(key))
    }
    // NB: `migrate` on another prefix: connect-redis's sessions are sessions of this store too.
    if (legacy !== undefined && !legacy.samePrefix)
      for (const key of await connection.scan(legacy.pattern)) await legacy.dropKey(key)
    // Index sets are removed with their last session; drop any left over.
    for (const key of await connection.scan(index.scanPattern))
      await connection.run('an index delete', (c) => c.del(key))
    options.onCommit?.()
  }
}

// The per-user index in Redis: one set of session ids per user, under a key no session id can produce, kept
// alive at least as long as its longest session; plus this instance's memo of which entries it added, so a
// write of a session whose entry is known to be there sends no index update.

import type { Clock } from '../clock.js'
import type { Budget } from './budget.js'
import type { RedisConnection } from './connection.js'
import { Script } from './connection.js'
import { INDEX_ADD_SCRIPT } from './scripts.js'

const indexAdd = new Script(INDEX_ADD_SCRIPT)

/** The separator between the prefix and the user index: sids are visible ASCII, so no sid can start with it. */
export const INDEX_MARK = '\u0001user:'

/**
 * How long past a session's expiry its user's index is kept, at most (ms). Within that margin later writes of
 * the same session (whose expiry creeps forward) need no index update; it also bounds how long an index
 * entry lost to a race with a prune stays lost while the session keeps being written.
 */
const INDEX_MARGIN_MS = 10 * 60_000

/** Sessions whose index entry this instance remembers, at most (~150 B each; a forgotten one costs one add). */
const INDEX_MEMO_MAX = 20_000

/** What this instance knows of one session's entry in its user's index. */
interface IndexEntry {
  readonly userId: string
  /** This instance added the sid to that user's index and made the index live at least until then (ms). */
  readonly until: number
}

/** One index add: `sid` joins the set at `key` (the index of `userId`), which must live at least until `until`. */
export interface IndexAdd {
  readonly key: string
  readonly userId: string
  readonly until: number
}

/** Options of {@link UserIndex}. */
export interface UserIndexOptions {
  readonly connection: RedisConnection
  readonly prefix: string
  readonly clock: Clock
}

/** The user index of one key prefix. */
export class UserIndex {
  readonly #redis: RedisConnection
  readonly #prefix: string
  readonly #clock: Clock
  /** sid → its index entry as this instance last added it, on the current connection. */
  readonly #memo = new Map<string, IndexEntry>()

  constructor(options: UserIndexOptions) {
    this.#redis = options.connection
    this.#prefix = options.prefix
    this.#clock = options.clock
    // NB: a new connection may be a restarted or failed-over Redis: nothing remembered about it holds.
    this.#redis.on('status', () => this.#memo.clear())
  }

  /** The key of a user's index set; the hash tag keeps it in one slot whatever the user id. */
  key(userId: string): string {
    return `${this.#prefix}${INDEX_MARK}{${userId}}`
  }

  /** True for a key under the prefix that is an index, not a session. */
  isIndexKey(key: string): boolean {
    return key.startsWith(`${this.#prefix}${INDEX_MARK}`)
  }

  /** A SCAN pattern matching every index key of the prefix. */
  get scanPattern(): string {
    return `${this.#prefix}${INDEX_MARK}*`
  }

  /** Adds `sid` to its user's index; the index outlives its longest session (by up to INDEX_MARGIN_MS). */
  async add(sid: string, userId: string | null, expiresAt: number, budget?: Budget): Promise<void> {
    const entry = this.entry(userId, expiresAt)
    if (entry === undefined) return
    await this.#redis.script('a user index update', indexAdd, [entry.key], [sid, entry.until], budget)
    this.remember(sid, entry)
  }

  /**
   * What adding `sid` with this expiry writes: the index key and how long the index must live at least (ms);
   * undefined for no user. A write script that adds the entry in its own step passes these, then calls
   * {@link remember} once Redis acknowledged it.
   */
  entry(userId: string | null, expiresAt: number): IndexAdd | undefined {
    if (userId === null) return undefined
    const now = this.#clock.now()
    const until = expiresAt + Math.min(Math.max(expiresAt - now, 0), INDEX_MARGIN_MS)
    return { key: this.key(userId), userId, until }
  }

  /** Records that `sid` was added to its user's index as `entry` says (Redis acknowledged the add). */
  remember(sid: string, entry: IndexAdd): void {
    if (this.#memo.size >= INDEX_MEMO_MAX && !this.#memo.has(sid))
      this.#memo.delete(this.#memo.keys().next().value as string)
    this.#memo.set(sid, { userId: entry.userId, until: entry.until })
  }

  /**
   * True when a write of `sid` needs no index update: the session already belongs to `userId`, this instance
   * added `sid` to that user's index itself and made the index live past `expiresAt`. While the sid is a member
   * the index key cannot disappear (a set is deleted only when emptied) and its expiry only ever moves later.
   * Entries are per session, dropped when we remove the sid from an index, and re-added at least every
   * INDEX_MARGIN_MS of a session's activity, so an entry lost some other way (a prune racing the first write,
   * a failover) comes back.
   */
  isIndexed(
    sid: string,
    previousUser: string | null | undefined,
    userId: string | null,
    expiresAt: number,
  ): boolean {
    if (userId === null) return true
    const known = this.#memo.get(sid)
    return (
      previousUser === userId && known !== undefined && known.userId === userId && known.until >= expiresAt
    )
  }

  /** Removes `sid` from a user's index. */
  async remove(sid: string, userId: string | null | undefined, budget?: Budget): Promise<void> {
    if (userId === null || userId === undefined || userId === '') return
    if (this.#memo.get(sid)?.userId === userId) this.#memo.delete(sid)
    await this.#redis.run('a user index update', (c) => c.srem(this.key(userId), sid), budget)
  }

  /** The session ids a user's index lists (some may be gone or moved to another user). */
  members(userId: string): Promise<string[]> {
    return this.#redis.run('a user index read', (c) => c.smembers(this.key(userId)))
  }

  /** Drops entries of sessions that are gone or belong to another user now. */
  async prune(userId: string, stale: readonly string[]): Promise<void> {
    if (stale.length === 0) return
    for (const sid of stale) if (this.#memo.get(sid)?.userId === userId) this.#memo.delete(sid)
    await this.#redis.run('a user index prune', (c) => c.srem(this.key(userId), ...stale))
  }
}

// The Redis tier's reads of one session: our hash (tracked, or untracked in tracking mode), and with `migrate`
// connect-redis's string beside or instead of it (its own prefix or ours, and with dualWrite both at once).

import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import type { Clock } from '../clock.js'
import { ErrorCodes, isTieredSessionError, TieredSessionError } from '../errors.js'
import type { StoredRecord } from '../tiers/tier.js'
import type { Budget } from './budget.js'
import { isWrongType, type RedisConnection } from './connection.js'
import type { LegacySessions } from './legacy-sessions.js'
import { fromHash, SESSION_FIELDS } from './session-hash.js'

/** What the reads need of the tier. */
export interface SessionReadsOptions {
  readonly connection: RedisConnection
  readonly clock: Clock
  readonly sealer: PayloadSealer
  /** `migrate`: sessions connect-redis wrote, read and converted. */
  readonly legacy: LegacySessions | undefined
  /** Our key of a session. */
  readonly key: (sid: string) => string
  /** The tier's destroy of one session (dualWrite: an old instance deleted connect-redis's copy). */
  readonly delete: (sid: string, budget: Budget | undefined) => Promise<boolean>
}

/** Reads of one session in Redis. */
export class SessionReads {
  readonly #options: SessionReadsOptions

  constructor(options: SessionReadsOptions) {
    this.#options = options
  }

  /**
   * The live record of `sid`. A value that is not ours is a TS_DECODE_FAILED (the caller's miss). `track: false`
   * (tracking mode): Redis does not remember the read for this instance, which then hears of no later change:
   * the caller keeps what it read unverified (see RedisConnection.readUntracked).
   */
  async get(sid: string, budget?: Budget, track = true): Promise<StoredRecord | undefined> {
    const { legacy } = this.#options
    if (legacy?.dualWrite) return this.#dualGet(sid, budget)
    const ours = await this.#readOurs(sid, budget, track)
    // NB: `migrate`: a string at our key (our own prefix), or no key of ours at all, not even a tombstone
    // (another prefix), may be a session connect-redis wrote.
    if (legacy === undefined || (ours !== 'not-a-hash' && (ours[1] !== null || legacy.samePrefix)))
      return ours === 'not-a-hash' ? undefined : this.#live(sid, ours)
    const found = await this.#readLegacy(legacy, sid, budget)
    if (found !== undefined) return found
    // NB: converted (or moved) by another instance between the two reads: ours is read once more.
    const again = await this.#readOurs(sid, budget)
    // NB: still neither our hash nor a string: another type (a list, a set) at our key, which is no session.
    if (again === 'not-a-hash')
      throw new TieredSessionError(
        ErrorCodes.DECODE_FAILED,
        'a session key in Redis holds a value that is not ours',
      )
    return this.#live(sid, again)
  }

  /** The stored version of `sid`, or undefined when it does not exist (or was destroyed). */
  async version(sid: string, budget?: Budget): Promise<number | undefined> {
    const { connection, legacy, key } = this.#options
    // NB: dualWrite: a copy is current only while connect-redis's key agrees (old instances never announce).
    if (legacy?.dualWrite) {
      const record = await this.#dualGet(sid, budget)
      return record === undefined || record.legacy !== undefined ? undefined : record.version
    }
    let v: string | null | undefined
    let dead: string | null | undefined
    try {
      ;[v, dead] = await connection.run('a version check', (c) => c.hmget(key(sid), 'v', 'd'), budget)
    } catch (error) {
      // NB: `migrate` on our prefix: an old instance wrote its string over our hash: no version of ours.
      if (legacy?.samePrefix && isWrongType(error)) return undefined
      throw error
    }
    return v === null || v === undefined || dead === '1' ? undefined : Number(v)
  }

  /** HMGET of our hash; 'not-a-hash' for a string there with `migrate` on our prefix. */
  async #readOurs(
    sid: string,
    budget: Budget | undefined,
    track = true,
  ): Promise<Array<string | null> | 'not-a-hash'> {
    const { connection, key } = this.#options
    try {
      return track
        ? await connection.run('a session read', (c) => c.hmget(key(sid), ...SESSION_FIELDS), budget)
        : await connection.readUntracked('a session read', key(sid), SESSION_FIELDS, budget)
    } catch (error) {
      if (!isWrongType(error)) throw error
      if (this.#options.legacy?.samePrefix) return 'not-a-hash'
      throw new TieredSessionError(
        ErrorCodes.DECODE_FAILED,
        'a session key in Redis holds a value that is not ours',
        {
          cause: error,
        },
      )
    }
  }

  /** connect-redis's session of `sid`, or undefined (none, or no string any more: converted meanwhile). */
  async #readLegacy(legacy: LegacySessions, sid: string, budget: Budget | undefined) {
    const key = legacy.samePrefix ? this.#options.key(sid) : legacy.key(sid)
    try {
      return await legacy.read(key, budget)
    } catch (error) {
      // NB: our own prefix: the string became our hash between the two reads.
      if (legacy.samePrefix && isTieredSessionError(error) && /not a string/.test(error.message))
        return undefined
      throw error
    }
  }

  /** Our record of HMGET `values` (its payload opened), if live. */
  #live(sid: string, values: Array<string | null>): StoredRecord | undefined {
    const record = fromHash(values, (stored) => this.#options.sealer.open(sid, stored))
    return record !== undefined && record.expiresAt > this.#options.clock.now() ? record : undefined
  }

  /**
   * dualWrite: ours while connect-redis's key still holds what we last mirrored; connect-redis's value when an
   * old instance changed it (adopted by the next write); nothing when an old instance deleted it (a logout
   * there), and then ours goes too.
   */
  async #dualGet(sid: string, budget: Budget | undefined): Promise<StoredRecord | undefined> {
    const { legacy, sealer, clock, key } = this.#options as SessionReadsOptions & { legacy: LegacySessions }
    const both = await legacy.readBoth(key(sid), sid, budget)
    const { ours } = both
    if (ours[4] === '1') return undefined
    const record = fromHash(ours, (stored) => sealer.open(sid, stored))
    const live = record !== undefined && record.expiresAt > clock.now()
    if (both.legacy === null) {
      if (live) await this.#options.delete(sid, budget)
      return undefined
    }
    if (live && ours[0] === both.legacy) return record
    return legacy.record(both.legacy, both.pttl, ours[1] === null ? 0 : Number(ours[1]))
  }
}

// The Redis tier: sessions as hashes under `${prefix}${sid}` with a version and a PEXPIREAT expiry, written
// by Lua scripts that also publish the invalidation; a per-user index of sids (one set per user). Its reads of
// one session are in session-reads.ts, its whole-store listings in redis-listings.ts.

import type { PayloadSealer } from '../at-rest/payload-sealer.js'
import { plainPayloads } from '../at-rest/payload-sealer.js'
import type { Clock } from '../clock.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type {
  ClearOptions,
  DeferredTouches,
  DeleteOptions,
  OnCorrupt,
  RecordInput,
  StoredRecord,
  Tier,
  TierRow,
  TouchInput,
  UpdateOptions,
  UpdateResult,
  WriteOptions,
} from '../tiers/tier.js'
import type { Budget } from './budget.js'
import type { RedisConnection } from './connection.js'
import { Script } from './connection.js'
import type { LegacySessions } from './legacy-sessions.js'
import { RedisListings } from './redis-listings.js'
import { ReplicaConfirmation } from './replica-confirmation.js'
import {
  CAS_SCRIPT,
  DELETE_SCRIPT,
  LEGACY_SAFE,
  SET_IF_NEWER_SCRIPT,
  SET_SCRIPT,
  TOUCH_SCRIPT,
} from './scripts.js'
import { SessionReads } from './session-reads.js'
import { TouchBatch } from './touch-batch.js'
import { UserIndex } from './user-index.js'

const scripts = {
  set: new Script(SET_SCRIPT),
  cas: new Script(CAS_SCRIPT),
  setIfNewer: new Script(SET_IF_NEWER_SCRIPT),
  delete: new Script(DELETE_SCRIPT),
  touch: new Script(TOUCH_SCRIPT),
}

/** The same, for `migrate` on our own prefix: connect-redis's strings at our keys are left in place. */
const legacySafeScripts = {
  ...scripts,
  cas: new Script(LEGACY_SAFE.cas),
  setIfNewer: new Script(LEGACY_SAFE.setIfNewer),
  touch: new Script(LEGACY_SAFE.touch),
}

/** Options of {@link RedisTier}. */
export interface RedisTierOptions {
  readonly connection: RedisConnection
  readonly prefix: string
  /** Pub/sub channel of invalidations. */
  readonly channel: string
  /** This instance's id in invalidation messages, so it can skip its own. */
  readonly origin: string
  readonly clock: Clock
  /** Replicas that must confirm a write (`redis.waitForReplicas`); 0 confirms every write at once. */
  readonly replicas?: number
  /** WAIT's own timeout, in ms (below the command timeout, so a lagging replica is no outage). */
  readonly confirmTimeoutMs?: number
  /** Hears of a background failure that is not an outage (a touch Redis refused). */
  readonly report?: (error: TieredSessionError) => void
  /** `migrate`: sessions connect-redis wrote, read and converted. */
  readonly legacy?: LegacySessions
  /** Seals payloads at rest (`encryption`). @default no encryption */
  readonly sealer?: PayloadSealer
}

/** What a compare-and-set did. */
type CasResult =
  | { readonly ok: true; readonly record: StoredRecord }
  | { readonly ok: false; readonly gone: boolean }

/** Most compare-and-set attempts of one update before giving up (heavy contention on one session). */
export const MAX_CAS_ATTEMPTS = 32

/** Redis-backed tier; the authority in shared mode. */
export class RedisTier implements Tier, DeferredTouches {
  readonly kind = 'redis' as const
  readonly #redis: RedisConnection
  readonly #prefix: string
  readonly #channel: string
  readonly #origin: string
  readonly #clock: Clock
  readonly #index: UserIndex
  readonly #replicas: ReplicaConfirmation
  readonly #report: (error: TieredSessionError) => void
  readonly #touches = new TouchBatch((sid, touch) => this.#touch(sid, touch))
  readonly #legacy: LegacySessions | undefined
  readonly #listings: RedisListings
  readonly #reads: SessionReads
  readonly #scripts: typeof scripts
  readonly #sealer: PayloadSealer

  constructor(options: RedisTierOptions) {
    this.#replicas = new ReplicaConfirmation({
      connection: options.connection,
      replicas: options.replicas ?? 0,
      timeoutMs: options.confirmTimeoutMs ?? 100,
    })
    this.#report = options.report ?? (() => undefined)
    this.#sealer = options.sealer ?? plainPayloads
    this.#legacy = options.legacy
    this.#scripts = options.legacy?.samePrefix ? legacySafeScripts : scripts
    this.#redis = options.connection
    this.#prefix = options.prefix
    this.#channel = options.channel
    this.#origin = options.origin
    this.#clock = options.clock
    this.#index = new UserIndex(options)
    this.#reads = new SessionReads({
      connection: options.connection,
      clock: options.clock,
      sealer: this.#sealer,
      legacy: options.legacy,
      key: (sid) => this.key(sid),
      delete: (sid, budget) => this.delete(sid, { budget }),
    })
    this.#listings = new RedisListings({
      connection: options.connection,
      prefix: options.prefix,
      index: this.#index,
      legacy: options.legacy,
      get: (sid) => this.get(sid),
      delete: (sid) => this.delete(sid),
    })
  }

  /** The keys of a session's scripts: ours, and with dualWrite connect-redis's (mirrored). */
  #keysOf(sid: string): string[] {
    const legacy = this.#legacy
    return legacy?.dualWrite ? [this.key(sid), legacy.key(sid)] : [this.key(sid)]
  }

  key(sid: string): string {
    return `${this.#prefix}${sid}`
  }

  /** True for a key under the prefix that is a user index, not a session. */
  isIndexKey(key: string): boolean {
    return this.#index.isIndexKey(key)
  }

  /** The key of a user's index set. */
  userKey(userId: string): string {
    return this.#index.key(userId)
  }

  /** A version for a new write: wall-clock microseconds-ish, so writes order across instances. */
  proposedVersion(after = 0): number {
    return Math.max(after + 1, this.#clock.now() * 1000)
  }

  /**
   * The live record of `sid`. A value that is not ours is a TS_DECODE_FAILED (the caller's miss). `track: false`
   * (tracking mode): Redis does not remember the read for this instance, which then hears of no later change:
   * the caller keeps what it read unverified (see RedisConnection.readUntracked).
   */
  get(sid: string, budget?: Budget, track = true): Promise<StoredRecord | undefined> {
    return this.#reads.get(sid, budget, track)
  }

  /** The stored version of `sid`, or undefined when it does not exist (or was destroyed). */
  version(sid: string, budget?: Budget): Promise<number | undefined> {
    return this.#reads.version(sid, budget)
  }

  /**
   * Writes `record` (version = max(old + 1, `record.version` or a proposal after `options.after`)); the user
   * index entry is added with the write, unless `options.previousUser` (the user of the copy the caller holds)
   * says it is there already.
   */
  async write(sid: string, record: RecordInput, options: WriteOptions = {}): Promise<StoredRecord> {
    const { budget } = options
    const skipped = this.#index.isIndexed(sid, options.previousUser, record.userId, record.expiresAt)
    // NB: on one node (or Sentinel) the index add is part of the write script: one command, and the script adds
    // the entry before it writes the session, so a refused add (OOM, READONLY) leaves neither, and an error
    // after it at worst a stale entry. On Cluster the index is on another
    // slot: its script goes out beside the write (one round trip; an index add that fails fails the write, and
    // the worst a crash leaves is a stale entry, never a session missing from its index).
    const entry = skipped ? undefined : this.#index.entry(record.userId, record.expiresAt)
    const inScript = entry !== undefined && !this.#redis.isCluster
    const keys = this.#keysOf(sid)
    if (inScript) keys.push(entry.key)
    const [, , reply] = (await Promise.all([
      entry === undefined || inScript
        ? undefined
        : this.#index.add(sid, record.userId, record.expiresAt, budget),
      // NB: `migrate` on another prefix: a connect-redis copy left behind could outlive ours and come back.
      this.#legacy?.samePrefix === false && !this.#legacy.dualWrite
        ? this.#legacy.drop(sid, budget)
        : undefined,
      this.#redis.script(
        'a session write',
        scripts.set,
        keys,
        [
          this.#sealer.seal(sid, record.payload),
          record.expiresAt,
          record.userId ?? '',
          record.version ?? this.proposedVersion(options.after ?? 0),
          this.#channel,
          this.#origin,
          sid,
          record.createdAt ?? '',
          options.maxLifetimeMs ?? '',
          inScript ? entry.until : '',
        ],
        budget,
      ),
    ])) as [unknown, unknown, [number, string, number, string, string]]
    if (inScript) this.#index.remember(sid, entry)
    const version = Number(reply[0])
    // NB: `maxLifetime`: a live session kept its creation time, and its expiry may have been capped by it.
    const expiresAt = reply[3] === undefined ? record.expiresAt : Number(reply[3])
    const createdAt = reply[4] === undefined || reply[4] === '' ? record.createdAt : Number(reply[4])
    const previousUser = reply[1]
    // NB: the caller's copy was stale (another instance changed the user): add the entry now, after the write.
    if (skipped && previousUser !== (record.userId ?? ''))
      await this.#index.add(sid, record.userId, record.expiresAt, budget)
    if (previousUser !== '' && previousUser !== record.userId)
      await this.#index.remove(sid, previousUser, budget)
    const stored = { payload: record.payload, expiresAt, userId: record.userId, createdAt, version }
    // NB: before onCommit: a touch collected until now was made on an older copy (the script would refuse it).
    this.#touches.dropOlder(sid, version)
    if (Number(reply[2]) === 1) options.onCreated?.()
    options.onCommit?.(stored)
    return stored
  }

  /**
   * Read-modify-write by compare-and-set (the Lua script retries nothing: we do, on a conflict), so parallel
   * changes to different keys all survive. Starts from `options.base` when it is live (no read first: a stale
   * base is refused by the compare, then the current record is read); a `change` that writes nothing on an
   * unverified base is checked on Redis's own copy. TS_WRITE_CONFLICT after MAX_CAS_ATTEMPTS lost races.
   */
  async update(
    sid: string,
    change: (current: StoredRecord) => RecordInput | undefined,
    options: UpdateOptions = {},
  ): Promise<UpdateResult> {
    const { base, budget } = options
    let current: StoredRecord | undefined =
      base !== undefined && base.expiresAt > this.#clock.now() ? base : undefined
    let unverified = current !== undefined && options.unverifiedBase === true
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      current ??= await this.get(sid, budget)
      if (current === undefined) return { status: 'missing' }
      const next = change(current)
      if (next === undefined && unverified) {
        unverified = false
        current = undefined
        continue
      }
      unverified = false
      if (next === undefined) return { status: 'unchanged' }
      const result =
        current.legacy === undefined
          ? await this.#compareAndSet(sid, next, current.version, current.userId, budget)
          : await this.#convert(sid, next, current, budget)
      if (result.ok) {
        options.onCommit?.(result.record)
        return { status: 'written', record: result.record }
      }
      if (result.gone) return { status: 'missing' }
      current = undefined
    }
    throw new TieredSessionError(
      ErrorCodes.WRITE_CONFLICT,
      `a session kept changing under ${MAX_CAS_ATTEMPTS} merge attempts`,
    )
  }

  /** Writes `record` only if the stored version is still `expected`. */
  async #compareAndSet(
    sid: string,
    record: RecordInput,
    expected: number,
    previousUser: string | null,
    budget: Budget | undefined,
  ): Promise<CasResult> {
    const entry = this.#index.isIndexed(sid, previousUser, record.userId, record.expiresAt)
      ? undefined
      : this.#index.entry(record.userId, record.expiresAt)
    // NB: as in write(): one script on one node (the entry added only once the compare succeeded), two on Cluster.
    const inScript = entry !== undefined && !this.#redis.isCluster
    const keys = this.#keysOf(sid)
    if (inScript) keys.push(entry.key)
    const [, reply] = (await Promise.all([
      entry === undefined || inScript
        ? undefined
        : this.#index.add(sid, record.userId, record.expiresAt, budget),
      this.#redis.script(
        'a session merge',
        this.#scripts.cas,
        keys,
        [
          this.#sealer.seal(sid, record.payload),
          record.expiresAt,
          record.userId ?? '',
          String(expected),
          this.proposedVersion(expected),
          this.#channel,
          this.#origin,
          sid,
          record.createdAt ?? '',
          inScript ? entry.until : '',
        ],
        budget,
      ),
    ])) as [unknown, Array<number | string>]
    if (inScript && Number(reply[0]) === 1) this.#index.remember(sid, entry)
    if (Number(reply[0]) === -1) return { ok: false, gone: true }
    if (Number(reply[0]) === 0) return { ok: false, gone: false }
    if (previousUser !== null && previousUser !== record.userId)
      await this.#index.remove(sid, previousUser, budget)
    return {
      ok: true,
      record: {
        payload: record.payload,
        expiresAt: record.expiresAt,
        userId: record.userId,
        createdAt: record.createdAt,
        version: Number(reply[1]),
      },
    }
  }

  /** A legacy session's first write: converted to ours only if connect-redis's value is still `legacyText`. */
  async #convert(
    sid: string,
    record: RecordInput,
    current: StoredRecord,
    budget: Budget | undefined,
  ): Promise<CasResult> {
    const legacy = this.#legacy as LegacySessions
    // NB: a legacy session's expiry is its key's TTL (connect-redis's touch never rewrites the JSON's cookie):
    // its first write, a merge with that stale cookie or a touch, keeps at least that.
    const next = { ...record, expiresAt: Math.max(record.expiresAt, current.expiresAt) }
    const [, reply] = await Promise.all([
      this.#index.add(sid, next.userId, next.expiresAt, budget),
      legacy.convert(
        sid,
        this.key(sid),
        { ...next, payload: this.#sealer.seal(sid, next.payload) },
        current.legacy as string,
        {
          version: this.proposedVersion(current.version),
          expected: current.version,
          channel: this.#channel,
          origin: this.#origin,
          budget,
        },
      ),
    ])
    if (reply.status === 'gone') return { ok: false, gone: true }
    if (reply.status === 'changed') return { ok: false, gone: false }
    const { payload, expiresAt, userId, createdAt } = next
    return { ok: true, record: { payload, expiresAt, userId, createdAt, version: reply.version } }
  }

  /** Replicas that must confirm a write (`redis.waitForReplicas`). */
  get replicas(): number {
    return this.#replicas.replicas
  }

  /** Whether the replicas asked for hold the writes sent so far to the node of `sid` (see ReplicaConfirmation). */
  confirm(sid: string, budget?: Budget): Promise<boolean> {
    return this.#replicas.confirm(this.key(sid), budget)
  }

  /**
   * Queues a touch, acknowledged at once (promise 8); sent once its window is up with the others due then (the
   * latest of each session), as one small script each (no payload). Lost, should Redis be down then: the
   * session may expire earlier.
   */
  touchLater(sid: string, touch: TouchInput): void {
    this.#touches.add(sid, touch)
  }

  /** Sends the queued touches now and waits for them (and for a batch already in flight). */
  commitTouches(): Promise<void> {
    return this.#touches.commit()
  }

  async #touch(sid: string, touch: TouchInput): Promise<void> {
    try {
      if (!this.#index.isIndexed(sid, touch.userId, touch.userId, touch.expiresAt))
        await this.#index.add(sid, touch.userId, touch.expiresAt)
      await this.#redis.script('a touch', this.#scripts.touch, this.#keysOf(sid), [
        touch.version,
        touch.expiresAt,
        touch.cookieText,
      ])
    } catch (error) {
      // NB: an outage is reported by the connection already; a lost touch only shortens a session's life.
      if (error instanceof TieredSessionError && error.code === ErrorCodes.REDIS_REFUSED) this.#report(error)
    }
  }

  /** Outbox replay of a write: applied only if Redis holds nothing newer; true also when it holds this write. */
  async setIfNewer(sid: string, record: StoredRecord): Promise<boolean> {
    // NB: `migrate` on another prefix: a connect-redis copy left behind could outlive ours and come back.
    if (this.#legacy?.samePrefix === false && !this.#legacy.dualWrite) await this.#legacy.drop(sid, undefined)
    await this.#index.add(sid, record.userId, record.expiresAt)
    const written = await this.#redis.script(
      'an outbox replay',
      this.#scripts.setIfNewer,
      this.#keysOf(sid),
      [
        this.#sealer.seal(sid, record.payload),
        record.expiresAt,
        record.userId ?? '',
        record.version,
        this.#channel,
        this.#origin,
        sid,
        record.createdAt ?? '',
      ],
    )
    return Number(written) >= 1
  }

  /** Deletes `sid`, leaving a tombstone (with `upToVersion`: only if not newer, for outbox replay). */
  async delete(sid: string, options: DeleteOptions = {}): Promise<boolean> {
    const { upToVersion, tombstoneUntil, budget } = options
    // NB: `migrate` on another prefix: connect-redis's copy goes too (first: a crash between the two leaves the
    // session alive, never a legacy copy that would bring it back); on our prefix the script removes it.
    const legacyExisted =
      this.#legacy?.samePrefix === false && !this.#legacy.dualWrite
        ? await this.#legacy.drop(sid, budget)
        : false
    const reply = (await this.#redis.script(
      'a session delete',
      scripts.delete,
      this.#keysOf(sid),
      [
        upToVersion === undefined ? 'inf' : upToVersion,
        this.#channel,
        this.#origin,
        sid,
        tombstoneUntil ?? '',
      ],
      budget,
    )) as [number, string]
    const existed = Number(reply[0]) === 1 || legacyExisted
    // NB: a tombstone (or, for a key that had no expiry, no key) stands now: the script refuses every touch of the
    // session (not so when only connect-redis's copy was there: ours may be newer than a replay's `upToVersion`).
    if (Number(reply[0]) === 1) this.#touches.dropOlder(sid, Number.POSITIVE_INFINITY)
    if (existed) await this.#index.remove(sid, reply[1], budget)
    options.onCommit?.(existed)
    return existed
  }

  /**
   * `hashIds`: removes a session kept under its plain id (moved, or destroyed) with no tombstone: a tombstone's
   * key would keep the plain id on the floor, and no outbox write of ours targets a plain key. Resolves to
   * whether there was one.
   */
  async purge(sid: string): Promise<boolean> {
    const key = this.key(sid)
    const [userId] = await this.#redis.run('a plain-id purge', (c) => c.hmget(key, 'u'))
    const removed = Number(await this.#redis.run('a plain-id purge', (c) => c.del(key))) === 1
    if (removed && userId) await this.#index.remove(sid, userId)
    return removed
  }

  /** Ids of live sessions. */
  ids(): Promise<string[]> {
    return this.#listings.ids()
  }

  /** How many live sessions there are. */
  countLive(): Promise<number> {
    return this.#listings.countLive()
  }

  /** Redis expires its own keys (PEXPIREAT): nothing to sweep. */
  sweep(): number {
    return 0
  }

  /** Every live session; a value that is not ours goes to `onCorrupt`. */
  rows(onCorrupt: OnCorrupt): Promise<TierRow[]> {
    return this.#listings.rows(onCorrupt)
  }

  /** Live sessions of one user; index entries of sessions gone or moved to another user are pruned. */
  rowsOfUser(userId: string, onCorrupt: OnCorrupt): Promise<TierRow[]> {
    return this.#listings.rowsOfUser(userId, onCorrupt)
  }

  /** Deletes every session, tombstone and index under the prefix. */
  clear(options: ClearOptions = {}): Promise<void> {
    return this.#listings.clear(options)
  }

  close(): void {
    // The connection is closed by its owner (the manager).
  }
}

// The outbox of shared mode: writes Redis has not acknowledged, kept in the disk tier's log (acknowledged once
// committed there), the latest entry of each session in memory, and their ordered replay when Redis is back.

import type { Clock } from './clock.js'
import { ErrorCodes, TieredSessionError, wrapError } from './errors.js'
import type { Budget } from './redis/budget.js'
import type { OutboxEntry, OutboxLog } from './tiers/outbox-log.js'
import type { RecordInput, StoredRecord } from './tiers/tier.js'

/** What the outbox needs of Redis to replay an entry. */
export interface ReplayTarget {
  /** Writes `record` only if Redis holds nothing newer (and no tombstone); resolves to whether it wrote. */
  setIfNewer(sid: string, record: StoredRecord): Promise<boolean>
  /** Deletes `sid` if Redis holds nothing newer than `upToVersion`. */
  delete(sid: string, options: { readonly upToVersion: number }): Promise<boolean>
  /** Whether the replicas asked for (`redis.waitForReplicas`) hold what was written to `sid`'s node so far. */
  confirm(sid: string): Promise<boolean>
}

/** Options of {@link Outbox}. */
export interface OutboxOptions {
  readonly log: OutboxLog
  readonly redis: ReplayTarget
  /** Whether Redis is up now. */
  readonly isUp: () => boolean
  /** Longest a live write waits for the replay of its session's entry, in ms (the command timeout). */
  readonly settleMs: number
  readonly clock: Clock
  /** Counts and emits a background failure. */
  readonly report: (error: TieredSessionError) => void
  /** Redis held something newer than a replayed write: the local copy of `sid` is stale. */
  readonly onStale: (sid: string) => void
}

/** Rounds of replay a live write waits for before it goes ahead anyway. */
const SETTLE_ROUNDS = 3

/** How the replay of one entry ended. */
type ReplayOutcome = 'done' | 'refused' | 'unconfirmed' | 'down'

/** Shortest and longest wait before retrying entries Redis refused, in ms. */
const RETRY_MIN_MS = 250
const RETRY_MAX_MS = 30_000
/** Wait before replaying entries again that the replicas did not confirm, in ms. */
const UNCONFIRMED_RETRY_MS = 1000

/** The outbox of one shared-mode store. */
export class Outbox {
  readonly #options: OutboxOptions
  /** The latest entry of each session that Redis has not acknowledged yet. */
  readonly #pending = new Map<string, OutboxEntry>()
  /**
   * The log's entries this store answers for: those it appended, and those it found at its start.
   * Any other entry is another store's on the same file (another process): replayed all the same, never dropped
   * unreplayed; so entries this store drops unreplayed (superseded, cleared) leave the log at once.
   */
  readonly #mine = new Set<number>()
  /** When (store clock, ms) each entry still in the log was queued, oldest first (seq order); for health. */
  readonly #queuedAt = new Map<number, number>()
  #replaying: Promise<void> | undefined
  #retryTimer: NodeJS.Timeout | undefined
  /** replay() was called while a replay ran: run again once it ends. */
  #again = false
  #retryDelayMs = RETRY_MIN_MS
  #closed = false

  /** Loads the entries a previous run left (acknowledged writes that Redis never got). */
  constructor(options: OutboxOptions) {
    this.#options = options
    // NB: the log keeps no time: entries a previous run left count as queued when this store started.
    const startedAt = options.clock.now()
    for (const entry of options.log.entries(options.report)) {
      this.#pending.set(entry.sid, entry)
      this.#mine.add(entry.seq)
      this.#queuedAt.set(entry.seq, startedAt)
    }
  }

  /** The latest entry of `sid` waiting for Redis, if any. */
  get(sid: string): OutboxEntry | undefined {
    return this.#pending.get(sid)
  }

  has(sid: string): boolean {
    return this.#pending.has(sid)
  }

  /** The version of the latest entry of `sid` (0 if none), to order a new write after it. */
  versionOf(sid: string): number {
    return this.#pending.get(sid)?.record.version ?? 0
  }

  /**
   * A live write of `sid` at `version` reached Redis (no entry of ours is newer): the entries before it need no
   * replay. They leave the log now, every store's up to that version (another store would replay them otherwise),
   * and a replay of ours under way skips them.
   */
  superseded(sid: string, version: number): void {
    if (this.#pending.delete(sid)) this.#remove(() => this.#options.log.removeSession(sid, version))
  }

  /**
   * A live destroy of `sid` reached Redis: every entry of it up to `upToVersion` (the version a write made now
   * would get: entries made before it) leaves the log now, another store's too, even with none of ours pending
   * (replayed later, after a destroy of a key Redis never had, which leaves no tombstone, it would bring the
   * session back).
   */
  destroyed(sid: string, upToVersion: number): void {
    const pending = this.#pending.get(sid)
    if (pending !== undefined && pending.record.version <= upToVersion) this.#pending.delete(sid)
    this.#remove(() => this.#options.log.removeSession(sid, upToVersion))
  }

  /**
   * Until when (ms) a write of `sid` waiting in the log (any store's on the file) would bring the session back if
   * replayed: the latest expiry among them, if later than now; undefined for none. A live destroy asks first and
   * has Redis keep a tombstone that long even where it never had the session: another process may be replaying
   * one of those writes at that very moment (its entry leaves the log only once Redis answered).
   */
  replayableUntil(sid: string): number | undefined {
    let until: number | undefined
    try {
      until = this.#options.log.latestExpiry(sid)
    } catch (error) {
      this.#options.report(wrapError(ErrorCodes.DISK_IO, 'reading the outbox failed', error))
      return undefined
    }
    return until !== undefined && until > this.#options.clock.now() ? until : undefined
  }

  /** Forgets every entry (the store was cleared) and empties the log, of other stores' entries too. */
  clear(): void {
    this.#pending.clear()
    this.#remove(() => this.#options.log.removeAll())
  }

  /** Removes entries from the log now (a failure is reported; the replay rules hold). */
  #remove(removal: () => void): void {
    try {
      removal()
    } catch (error) {
      // NB: left in the log: our next replay drops ours (another store on the file may replay them before that).
      this.#options.report(wrapError(ErrorCodes.DISK_IO, 'removing outbox entries failed', error))
    }
  }

  /**
   * Queues a write (`record`) or a destroy (null) of `sid` at `version`; resolves once the log has committed it
   * (that is its acknowledgement). `onCommit` runs at the commit, after the entry became the latest.
   */
  async append(
    sid: string,
    record: RecordInput | null,
    version: number,
    onCommit: (entry: OutboxEntry) => void,
  ): Promise<void> {
    if (record === null) {
      await this.#options.log.appendDelete(sid, version, (seq) => {
        const entry: OutboxEntry = {
          seq,
          sid,
          op: 'delete',
          record: { payload: '', expiresAt: 0, version, userId: null },
        }
        this.#pending.set(sid, entry)
        this.#mine.add(seq)
        this.#queuedAt.set(seq, this.#options.clock.now())
        onCommit(entry)
      })
      return
    }
    const stored: StoredRecord = { ...record, version }
    await this.#options.log.appendWrite(sid, stored, (seq) => {
      const entry: OutboxEntry = { seq, sid, op: 'set', record: stored }
      this.#pending.set(sid, entry)
      this.#mine.add(seq)
      this.#queuedAt.set(seq, this.#options.clock.now())
      onCommit(entry)
    })
  }

  /** Writes waiting for Redis (the log's count; the in-memory count should the log be unreadable). */
  depth(): number {
    if (this.#closed) return 0
    try {
      return this.#options.log.size()
    } catch (error) {
      this.#options.report(wrapError(ErrorCodes.DISK_IO, 'counting the outbox failed', error))
      return this.#pending.size
    }
  }

  /** Age of the oldest entry still in the log, in ms (store clock), or null when there is none. */
  oldestAgeMs(): number | null {
    if (this.#closed) return null
    for (const [seq, queuedAt] of this.#queuedAt) {
      // NB: another store on the file may have replayed (removed) it since: checked, one point read each.
      let held = true
      try {
        held = this.#options.log.has(seq)
      } catch {
        // NB: unknown: counted as still there (the log's read failure is reported by depth()).
      }
      if (held) return Math.max(0, this.#options.clock.now() - queuedAt)
      this.#queuedAt.delete(seq)
    }
    return null
  }

  /**
   * Before a live write of a session that still has an entry, let the replay put that entry into Redis first
   * (otherwise the live write, newer, would make the replay skip an acknowledged outage write), for at most
   * `settleMs` and what is left of the request's `budget`: a long log, or replicas slow to confirm, never hold
   * a request up longer. An entry still there afterwards sends a merge or touch to the outbox too.
   */
  async settle(sid: string, budget?: Budget): Promise<void> {
    const deadline = performance.now() + (budget?.left(this.#options.settleMs) ?? this.#options.settleMs)
    for (let i = 0; i < SETTLE_ROUNDS && this.#pending.has(sid) && this.#options.isUp(); i++) {
      const left = deadline - performance.now()
      if (left <= 0) return
      this.replay()
      let timer: NodeJS.Timeout | undefined
      const timeUp = new Promise<void>((resolve) => {
        timer = setTimeout(resolve, left).unref()
      })
      await Promise.race([this.replayed(), timeUp])
      clearTimeout(timer)
    }
  }

  /**
   * Replays the log once Redis is back: of this store's entries, for each session only its latest (older ones
   * are superseded), and only if no live operation replaced it meanwhile; every entry of another store on the
   * same file (another process, running or gone), in log order. A newer value in Redis is kept, a destroy deletes
   * anything not newer, a tombstone blocks a write, expired entries are dropped. An entry Redis refuses stays
   * (it was acknowledged) and is retried with a growing delay; one the replicas did not confirm stays and is
   * retried a second later; an outage stops the replay until Redis is back.
   */
  replay(): void {
    // NB: an entry queued while a replay runs is not in the list that replay read: it runs once more after it.
    if (this.#replaying !== undefined) {
      this.#again = true
      return
    }
    if (this.#closed || !this.#options.isUp()) return
    this.#again = false
    const { log, isUp, report } = this.#options
    this.#replaying = (async () => {
      let refused = 0
      let unconfirmed = 0
      const entries = log.entries(report)
      this.#followLog(entries)
      for (const entry of entries) {
        if (!isUp() || this.#closed) return
        if (this.#mine.has(entry.seq) && this.#pending.get(entry.sid)?.seq !== entry.seq) {
          this.#leaveLog(entry.seq)
          continue
        }
        // NB: an entry is replayed only if it is still there: a store on the same file may have replayed it, or
        // dropped it (a live write or destroy superseded it, a clear) since this replay read the log.
        if (!log.has(entry.seq)) {
          this.#leftElsewhere(entry)
          continue
        }
        const outcome = await this.#replayEntry(entry)
        if (outcome === 'down') return
        if (outcome === 'refused') refused++
        else if (outcome === 'unconfirmed') unconfirmed++
      }
      this.#retryDelayMs = refused > 0 ? Math.min(this.#retryDelayMs * 2, RETRY_MAX_MS) : RETRY_MIN_MS
      if (unconfirmed > 0) {
        report(
          new TieredSessionError(
            ErrorCodes.REDIS_UNAVAILABLE,
            `${unconfirmed} outbox writes not confirmed by the replicas (redis.waitForReplicas); kept for a retry`,
          ),
        )
      }
      const retryMs = refused > 0 ? this.#retryDelayMs : unconfirmed > 0 ? UNCONFIRMED_RETRY_MS : undefined
      if (retryMs !== undefined) this.#retryTimer = setTimeout(() => this.replay(), retryMs).unref()
    })()
      .catch((error: unknown) => report(wrapError(ErrorCodes.DISK_IO, 'replaying the outbox failed', error)))
      .finally(() => {
        this.#replaying = undefined
        if (this.#again) this.replay()
      })
  }

  /**
   * Brings what this store knows in line with the log (`entries`, read just now). Entries of ours no longer in it
   * were replayed by another store on the same file: whether Redis took them or held something newer is unknown,
   * so our copies are dropped (the next read asks Redis). Other stores' entries count, for the age of the oldest,
   * from when this store first saw them.
   */
  #followLog(entries: readonly OutboxEntry[]): void {
    const inLog = new Set<number>()
    const now = this.#options.clock.now()
    for (const entry of entries) {
      inLog.add(entry.seq)
      if (!this.#queuedAt.has(entry.seq)) this.#queuedAt.set(entry.seq, now)
    }
    for (const entry of this.#pending.values()) if (!inLog.has(entry.seq)) this.#leftElsewhere(entry)
    for (const seq of this.#mine) if (!inLog.has(seq)) this.#mine.delete(seq)
    for (const seq of this.#queuedAt.keys()) if (!inLog.has(seq)) this.#queuedAt.delete(seq)
  }

  /** Replays one entry; it leaves the log unless Redis refused it, an outage stopped it, or it is unconfirmed. */
  async #replayEntry(entry: OutboxEntry): Promise<ReplayOutcome> {
    const { redis, isUp, clock, report, onStale } = this.#options
    const foreign = !this.#mine.has(entry.seq)
    try {
      let written = true
      if (entry.op === 'delete') await redis.delete(entry.sid, { upToVersion: entry.record.version })
      else if (entry.record.expiresAt > clock.now()) written = await redis.setIfNewer(entry.sid, entry.record)
      // NB: our copy is stale when Redis had something newer (or a tombstone), and when the entry was another
      // store's: it went out through our connection, and Redis tells no connection of its own writes (NOLOOP).
      if (!written || foreign) onStale(entry.sid)
      if (!(await redis.confirm(entry.sid))) return 'unconfirmed'
    } catch (error) {
      if (!isUp()) return 'down'
      report(wrapError(ErrorCodes.REDIS_REFUSED, 'Redis refused an outbox entry', error))
      return 'refused'
    }
    this.#leaveLog(entry.seq)
    if (this.#pending.get(entry.sid)?.seq === entry.seq) this.#pending.delete(entry.sid)
    return 'done'
  }

  /**
   * `entry` left the log without this store (another store on the file replayed it, or a live write or destroy
   * superseded it): if it was our pending one, we no longer answer for its session from it, and our copy goes
   * (whether Redis took it or held something newer is unknown here: the next read asks Redis).
   */
  #leftElsewhere(entry: OutboxEntry): void {
    if (this.#pending.get(entry.sid)?.seq === entry.seq) {
      this.#pending.delete(entry.sid)
      this.#options.onStale(entry.sid)
    }
    this.#mine.delete(entry.seq)
    this.#queuedAt.delete(entry.seq)
  }

  /** Entry `seq` leaves the log (replayed, or superseded by a later one of ours), and what this store knew of it. */
  #leaveLog(seq: number): void {
    this.#options.log.remove(seq)
    this.#mine.delete(seq)
    this.#queuedAt.delete(seq)
  }

  /** Resolves once the replay now running (if any) has finished. */
  async replayed(): Promise<void> {
    while (this.#replaying !== undefined) await this.#replaying
  }

  /** Stops retrying and waits for a replay in progress; the log stays for the next start. */
  async close(): Promise<void> {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    await this.#replaying
    this.#closed = true
  }
}

// Sessions connect-redis wrote (option `migrate`): read where they are, converted to ours on their first write
// (only if the legacy value is still the one read), and their keys removed once ours holds the session.

import type { Clock } from '../clock.js'
import type { SessionObject } from '../codec.js'
import { ErrorCodes, TieredSessionError } from '../errors.js'
import type { LegacyRecord } from '../migrate/connect-redis-format.js'
import { fromLegacy } from '../migrate/connect-redis-format.js'
import type { RecordInput } from '../tiers/tier.js'
import type { Budget } from './budget.js'
import type { RedisConnection } from './connection.js'
import { isWrongType, Script } from './connection.js'
import { DUAL_READ_SCRIPT, LEGACY_CONVERT_SCRIPT, LEGACY_DROP_SCRIPT } from './scripts.js'

const convertScript = new Script(LEGACY_CONVERT_SCRIPT)
const dropScript = new Script(LEGACY_DROP_SCRIPT)
const dualReadScript = new Script(DUAL_READ_SCRIPT)
/** Deletes KEYS[1] if it holds a string. */
const dropAnyString = new Script(
  "if redis.call('TYPE', KEYS[1]).ok == 'string' then return redis.call('DEL', KEYS[1]) end return 0",
)

/** Options of {@link LegacySessions}. */
export interface LegacySessionsOptions {
  readonly connection: RedisConnection
  /** connect-redis's prefix (`migrate.prefix`). */
  readonly prefix: string
  /** Our own prefix: the same one means the legacy value sits at our key until converted. */
  readonly ourPrefix: string
  /** `migrate.dualWrite`: every write mirrored to connect-redis's key, which every read checks. */
  readonly dualWrite: boolean
  readonly clock: Clock
  readonly userIdOf: (session: SessionObject) => string | null
}

/** A GET refused with WRONGTYPE (a list, a set at a legacy key): no session, reported as such. */
function notAString(error: unknown): never {
  if (isWrongType(error))
    throw new TieredSessionError(
      ErrorCodes.DECODE_FAILED,
      'a connect-redis session key holds a value that is not a string',
    )
  throw error
}

/** What a conversion did: as a compare-and-set answers. */
export type ConvertReply = { readonly status: 'converted' | 'changed' | 'gone'; readonly version: number }

/** The connect-redis side of a migration. */
export class LegacySessions {
  readonly #options: LegacySessionsOptions
  /** True when connect-redis's keys are ours (a full-stop switch on the same prefix). */
  readonly samePrefix: boolean
  /** True with `migrate.dualWrite` (a rolling deploy: instances still on connect-redis share the sessions). */
  readonly dualWrite: boolean

  constructor(options: LegacySessionsOptions) {
    this.#options = options
    this.samePrefix = options.prefix === options.ourPrefix
    this.dualWrite = options.dualWrite
  }

  /**
   * dualWrite: our hash of `sid` (HMGET p v e u d c t) and connect-redis's value and PTTL, read in one atomic
   * step.
   */
  async readBoth(
    ourKey: string,
    sid: string,
    budget: Budget | undefined,
  ): Promise<{ ours: Array<string | null>; legacy: string | null; pttl: number }> {
    const reply = (await this.#options.connection.script(
      'a session read',
      dualReadScript,
      [ourKey, this.key(sid)],
      [],
      budget,
    )) as Array<string | number | null>
    const ours = Array.from({ length: 8 }, (_, i) => (reply[i] ?? null) as string | null)
    const legacy = reply[8]
    return { ours, legacy: typeof legacy === 'string' ? legacy : null, pttl: Number(reply[9] ?? -2) }
  }

  /** The legacy record of `text` (dualWrite: at our version `version`, 0 when we have none). */
  record(text: string, pttl: number, version: number): LegacyRecord | undefined {
    const { clock, userIdOf } = this.#options
    const record = fromLegacy(text, pttl, clock.now(), userIdOf)
    return record.expiresAt > clock.now() ? { ...record, version } : undefined
  }

  key(sid: string): string {
    return `${this.#options.prefix}${sid}`
  }

  /**
   * The live legacy session at `key` (ours, with the same prefix; else connect-redis's), or undefined; throws
   * TS_DECODE_FAILED for a value that is not a session (left in place).
   */
  async read(key: string, budget: Budget | undefined): Promise<LegacyRecord | undefined> {
    const { connection, clock, userIdOf } = this.#options
    // NB: sent together (one round trip: one socket write; on Cluster to the one node of the key).
    const [text, pttl] = await Promise.all([
      connection.run('a connect-redis session read', (c) => c.get(key), budget).catch(notAString),
      connection.run('a connect-redis session read', (c) => c.pttl(key), budget),
    ])
    if (text === null || Number(pttl) === -2) return undefined
    const record = fromLegacy(text, Number(pttl), clock.now(), userIdOf)
    return record.expiresAt > clock.now() ? record : undefined
  }

  /**
   * Writes `next` as our session `sid` in place of the legacy value `legacyText`, only if that is still what
   * the legacy key holds. On Cluster, with another prefix, the two keys live on different slots: ours is created
   * (only if absent) and the legacy key dropped after, in that order.
   */
  async convert(
    sid: string,
    ourKey: string,
    next: RecordInput,
    legacyText: string,
    args: {
      version: number
      expected: number
      channel: string
      origin: string
      budget: Budget | undefined
    },
  ): Promise<ConvertReply> {
    const { connection } = this.#options
    const mode = this.dualWrite ? 'dual' : this.samePrefix ? 'same' : connection.isCluster ? 'create' : 'move'
    const reply = (await connection.script(
      'a connect-redis session conversion',
      convertScript,
      mode === 'move' || mode === 'dual' ? [ourKey, this.key(sid)] : [ourKey],
      [
        legacyText,
        next.payload,
        next.expiresAt,
        next.userId ?? '',
        args.version,
        args.channel,
        args.origin,
        sid,
        mode,
        String(args.expected),
        next.createdAt ?? '',
      ],
      args.budget,
    )) as [number, string?]
    const status = Number(reply[0]) === 1 ? 'converted' : Number(reply[0]) === 0 ? 'changed' : 'gone'
    if (status === 'converted' && mode === 'create') {
      // NB: best effort: a legacy copy left behind is never read again (ours is found first).
      await connection
        .script('a connect-redis key removal', dropScript, [this.key(sid)], [legacyText], args.budget)
        .catch(() => undefined)
    }
    return { status, version: Number(reply[1] ?? 0) }
  }

  /** A SCAN pattern of connect-redis's keys. */
  get pattern(): string {
    return `${this.#options.prefix.replace(/[*?[\]\\]/g, '\\$&')}*`
  }

  /** Deletes a connect-redis key found by SCAN if it holds a string (a session, or garbage left in place). */
  async dropKey(key: string): Promise<void> {
    await this.#options.connection.script('a connect-redis key removal', dropAnyString, [key], [])
  }

  /** Deletes connect-redis's key of `sid` (another prefix than ours: a destroy, or a write that replaces it). */
  async drop(sid: string, budget: Budget | undefined): Promise<boolean> {
    const removed = await this.#options.connection.run(
      'a connect-redis key removal',
      (c) => c.del(this.key(sid)),
      budget,
    )
    return Number(removed) > 0
  }
}

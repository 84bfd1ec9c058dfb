// `tiered-session migrate --from connect-redis`: converts every session connect-redis wrote into ours, with
// SCAN on every master (never KEYS), each by the same script the store uses on a first write (only if the
// legacy value is still the one read), so it is idempotent and safe while apps serve traffic.

import { randomUUID } from 'node:crypto'
import { systemClock } from '../../clock.js'
import { ErrorCodes, isTieredSessionError } from '../../errors.js'
import { defaultUserId } from '../../options.js'
import { LegacySessions } from '../../redis/legacy-sessions.js'
import { RedisTier } from '../../redis/redis-tier.js'
import { normalizeUserId } from '../../session-fields.js'
import type { CommandSpec } from '../args.js'
import { JSON_FLAG, parseFlags, required, requireFrom } from '../args.js'
import { CliError } from '../cli-error.js'
import { Progress, printCounts } from '../output.js'
import { closeRedis, connectRedis } from '../redis-client.js'

/** Sessions converted at once. */
const BATCH = 64

export const migrateSpec: CommandSpec = {
  name: 'migrate',
  summary:
    "Converts every session connect-redis wrote into tiered-session's format (SCAN on every master; safe to run " +
    'while apps serve traffic, and again).',
  usage:
    'tiered-session migrate --from connect-redis --redis URL [--legacy-prefix sess:] [--prefix P] [--dual-write] [--json]',
  flags: {
    from: { type: 'string', value: 'STORE', help: 'where the sessions come from: connect-redis' },
    redis: { type: 'string', value: 'URL', help: 'the Redis both stores use (redis:// or rediss://)' },
    'legacy-prefix': { type: 'string', value: 'P', help: "connect-redis's key prefix", default: 'sess:' },
    prefix: { type: 'string', value: 'P', help: "tiered-session's prefix (default: --legacy-prefix)" },
    channel: {
      type: 'string',
      value: 'NAME',
      help: 'the invalidation channel (default: <prefix>invalidations)',
    },
    'dual-write': {
      type: 'boolean',
      help: "keep connect-redis's keys, mirrored (a rolling deploy: old instances still serving)",
    },
    json: JSON_FLAG,
  },
}

const LABELS = {
  scanned: 'keys scanned',
  migrated: 'migrated',
  alreadyOurs: 'already ours',
  expired: 'expired (or gone meanwhile)',
  notASession: 'not a session (left in place)',
}

export async function migrate(argv: readonly string[]): Promise<void> {
  const flags = parseFlags(migrateSpec, argv)
  if (flags.help === true) return
  requireFrom(flags, 'connect-redis', migrateSpec)
  const url = required(flags, 'redis', migrateSpec)
  const legacyPrefix = required(flags, 'legacy-prefix', migrateSpec)
  const prefix = typeof flags.prefix === 'string' ? flags.prefix : legacyPrefix
  const dualWrite = flags['dual-write'] === true
  if (dualWrite && prefix === legacyPrefix)
    throw new CliError('--dual-write needs a --prefix other than --legacy-prefix', 2)
  if (prefix !== legacyPrefix && (prefix.startsWith(legacyPrefix) || legacyPrefix.startsWith(prefix)))
    throw new CliError('--prefix and --legacy-prefix overlap (one starts with the other): pick another', 2)
  const connection = await connectRedis(url)
  try {
    if (dualWrite && connection.isCluster)
      throw new CliError(
        '--dual-write is not supported on Redis Cluster (the two keys live on other slots)',
        2,
      )
    const legacy = new LegacySessions({
      connection,
      prefix: legacyPrefix,
      ourPrefix: prefix,
      dualWrite,
      clock: systemClock,
      userIdOf: (session) => normalizeUserId(defaultUserId(session)),
    })
    const tier = new RedisTier({
      connection,
      prefix,
      channel: typeof flags.channel === 'string' ? flags.channel : `${prefix}invalidations`,
      origin: `cli-${randomUUID()}`,
      clock: systemClock,
      legacy,
    })
    const pattern = `${legacyPrefix.replace(/[*?[\]\\]/g, '\\$&')}*`
    const keys = (await connection.scan(pattern)).filter((key) => !tier.isIndexKey(key))
    const counts = { scanned: keys.length, migrated: 0, alreadyOurs: 0, expired: 0, notASession: 0 }
    const progress = new Progress('migrate: keys done')
    for (let i = 0; i < keys.length; i += BATCH) {
      const batch = keys.slice(i, i + BATCH).map((key) => key.slice(legacyPrefix.length))
      const outcomes = await Promise.all(batch.map((sid) => convertOne(tier, legacy, sid, dualWrite)))
      for (const outcome of outcomes) counts[outcome]++
      progress.add(batch.length)
    }
    progress.end()
    printCounts(counts, LABELS, flags.json === true)
  } finally {
    await closeRedis(connection)
  }
}

/** Converts one legacy session; says what it found. */
async function convertOne(
  tier: RedisTier,
  legacy: LegacySessions,
  sid: string,
  dualWrite: boolean,
): Promise<'migrated' | 'alreadyOurs' | 'expired' | 'notASession'> {
  try {
    const result = await tier.update(sid, (current) =>
      current.legacy === undefined
        ? undefined
        : { payload: current.payload, expiresAt: current.expiresAt, userId: current.userId },
    )
    if (result.status === 'written') return 'migrated'
    if (result.status === 'missing') return 'expired'
    // NB: ours already (converted by an app meanwhile, or by an earlier run); on another prefix, without
    // dualWrite, a legacy copy left beside ours is never read again: it goes.
    if (!legacy.samePrefix && !dualWrite) await legacy.drop(sid, undefined)
    return 'alreadyOurs'
  } catch (error) {
    if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) return 'notASession'
    throw error
  }
}

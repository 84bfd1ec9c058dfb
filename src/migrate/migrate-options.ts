// The `migrate` option: switching from connect-redis without logging anyone out (see README, "Switching from
// connect-redis"). Validated here; the Redis tier reads and converts what connect-redis wrote.

import { boolean, checkKeys, invalid, plainObject } from '../option-checks.js'

/** `migrate`: where connect-redis's sessions are, and whether our writes are mirrored there. */
export interface MigrateOptions {
  /** The store the sessions come from. Only `'connect-redis'`. */
  from: 'connect-redis'
  /**
   * connect-redis's key prefix.
   * @default the store's own `prefix` (a full-stop switch: the same keys)
   */
  prefix?: string
  /**
   * Mirror every write, touch and destroy to connect-redis's key in its format, and check that key on every
   * read, so instances still on connect-redis see our changes and we see theirs (a rolling deploy). Needs a
   * `prefix` other than the store's.
   * @default false
   */
  dualWrite?: boolean
}

/** `migrate`, validated. */
export interface ResolvedMigrate {
  readonly from: 'connect-redis'
  readonly prefix: string
  readonly dualWrite: boolean
}

/** Validates `migrate` against the store's `prefix`; null when absent. Throws TS_INVALID_OPTION. */
export function resolveMigrate(input: unknown, prefix: string, shared: boolean): ResolvedMigrate | null {
  const migrate = plainObject(input, 'migrate')
  if (migrate === undefined) return null
  checkKeys(migrate, ['from', 'prefix', 'dualWrite'], 'migrate')
  if (migrate.from !== 'connect-redis') throw invalid('migrate.from', "'connect-redis'")
  if (!shared) throw invalid('migrate', 'used with `redis` (connect-redis keeps its sessions in Redis)')
  const legacyPrefix = migrate.prefix ?? prefix
  if (typeof legacyPrefix !== 'string' || legacyPrefix === '')
    throw invalid('migrate.prefix', 'a non-empty string')
  const dualWrite = boolean(migrate.dualWrite, 'migrate.dualWrite', false)
  if (dualWrite && legacyPrefix === prefix)
    throw invalid('migrate.prefix', 'a prefix other than `prefix` with `dualWrite` (both formats are kept)')
  // NB: one prefix starting with the other would make a key of one store look like a key of the other.
  if (legacyPrefix !== prefix && (legacyPrefix.startsWith(prefix) || prefix.startsWith(legacyPrefix)))
    throw invalid('migrate.prefix', `a prefix that does not overlap \`prefix\` ('${prefix}')`)
  return { from: 'connect-redis', prefix: legacyPrefix, dualWrite }
}

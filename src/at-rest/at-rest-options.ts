// The at-rest options — `hashIds`, `encryption`, `maxLifetime` — validated (naming the option) and resolved.

import type { SessionObject } from '../codec.js'
import type { ResolvedMigrate } from '../migrate/migrate-options.js'
import { boolean, checkKeys, invalid, plainObject } from '../option-checks.js'
import type { PayloadSealer } from './payload-sealer.js'
import { AesGcmSealer, plainPayloads } from './payload-sealer.js'

/** `encryption`: AES-256-GCM of payloads in SQLite and Redis. */
export interface EncryptionOptions {
  /**
   * 32-byte keys, as Buffers or base64 strings. The first encrypts; every one decrypts (rotation: put the new
   * key first, keep the old ones until every row was rewritten, e.g. by `tiered-session rekey`).
   */
  keys: ReadonlyArray<Buffer | Uint8Array | string>
}

/** The at-rest options, resolved. */
export interface ResolvedAtRest {
  readonly hashIds: boolean
  readonly sealer: PayloadSealer
  /**
   * Seconds a session may live from its creation, however active (a function gets the whole stored session);
   * null: no absolute lifetime.
   */
  readonly maxLifetimeSeconds: number | ((session: SessionObject) => number) | null
}

/** A 32-byte key from a Buffer, a Uint8Array or a base64 (or base64url) string. */
function keyBytes(value: unknown, option: string): Buffer {
  let key: Buffer | undefined
  if (Buffer.isBuffer(value)) key = value
  else if (value instanceof Uint8Array) key = Buffer.from(value)
  else if (typeof value === 'string' && /^[A-Za-z0-9+/_-]+={0,2}$/.test(value))
    key = Buffer.from(value, 'base64')
  if (key === undefined || key.length !== 32)
    throw invalid(option, 'a 32-byte key (a Buffer or a base64 string)')
  return Buffer.from(key)
}

function resolveEncryption(input: unknown, migrate: ResolvedMigrate | null): PayloadSealer {
  const encryption = plainObject(input, 'encryption')
  if (encryption === undefined) return plainPayloads
  checkKeys(encryption, ['keys'], 'encryption')
  const { keys } = encryption
  if (!Array.isArray(keys) || keys.length === 0)
    throw invalid('encryption.keys', 'a non-empty array of 32-byte keys (Buffers or base64 strings)')
  // NB: connect-redis's mirror holds plain JSON: it would put every payload back on the floor.
  if (migrate?.dualWrite)
    throw invalid('encryption', 'absent with `migrate.dualWrite` (the mirror is plain JSON)')
  return new AesGcmSealer(keys.map((key, i) => keyBytes(key, `encryption.keys[${i}]`)))
}

function resolveMaxLifetime(input: unknown): ResolvedAtRest['maxLifetimeSeconds'] {
  if (input === undefined) return null
  if (typeof input === 'function') return input as (session: SessionObject) => number
  if (typeof input !== 'number' || !Number.isFinite(input) || input <= 0)
    throw invalid('maxLifetime', 'a number of seconds > 0, or a function')
  return input
}

/**
 * Validates the at-rest options. `hashIds` defaults to true, except with `migrate` (connect-redis's keys are
 * the ids themselves), where it defaults to false and true is refused.
 */
export function resolveAtRest(
  options: Record<string, unknown>,
  migrate: ResolvedMigrate | null,
): ResolvedAtRest {
  const hashIds = boolean(options.hashIds, 'hashIds', migrate === null)
  if (hashIds && migrate !== null)
    throw invalid(
      'hashIds',
      'false with `migrate` (switch hashIds on once the switch from connect-redis is done)',
    )
  return {
    hashIds,
    sealer: resolveEncryption(options.encryption, migrate),
    maxLifetimeSeconds: resolveMaxLifetime(options.maxLifetime),
  }
}

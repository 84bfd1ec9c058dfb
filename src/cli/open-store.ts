// The store a command works on, from `--db PATH` (a TieredStore in local mode on that SQLite file) or `--redis
// URL` (a TieredStore in shared mode without a disk tier), with the encryption keys of TIERED_SESSION_KEYS: one
// clear line when it cannot be opened or reached, and one when stored sessions did not decode.

import { existsSync, statSync } from 'node:fs'
import { ErrorCodes } from '../errors.js'
import type { TieredStoreOptions } from '../options.js'
import { TieredStore } from '../store.js'
import { storedIdMode } from '../tiers/sqlite-file.js'
import type { CommandSpec } from './args.js'
import { CliError } from './cli-error.js'
import { closeRedis, connectRedis } from './redis-client.js'

/**
 * The environment variable the tool reads the store's encryption keys from: base64, comma-separated, the first
 * the one that encrypts (as the `encryption.keys` option). Never a flag: a command line is visible to every user.
 */
export const KEYS_ENV = 'TIERED_SESSION_KEYS'

/** An open store, which kind it is, and whether it keys sessions by hashed ids (`hashIds`). */
export type OpenedStore = (
  | { readonly mode: 'local'; readonly path: string }
  | { readonly mode: 'shared'; readonly url: string }
) & {
  readonly store: TieredStore
  readonly hashIds: boolean
  /** Stored sessions that did not decode (TS_DECODE_FAILED) so far: left out of listings and exports. */
  readonly undecodable: () => number
}

/** Options of {@link openStore}. */
export interface OpenStoreOptions {
  /** A command that only reads (or changes what is there): a missing --db file is an error, not a new database. */
  readonly mustExist: boolean
  /** Most rows one sweep transaction deletes (`sweep --batch`). */
  readonly sweepBatchSize?: number
}

/** Throws a CliError (exit 2) unless exactly one of `--db` and `--redis` is given. */
export function checkStoreFlags(flags: Record<string, string | boolean>, spec: CommandSpec): void {
  if ((flags.db === undefined) === (flags.redis === undefined))
    throw new CliError(`give one of --db PATH or --redis URL (see: tiered-session ${spec.name} --help)`, 2)
}

/** `encryption` from TIERED_SESSION_KEYS, or nothing when it is unset. */
function encryption(): Pick<TieredStoreOptions, 'encryption'> {
  const keys = (process.env[KEYS_ENV] ?? '')
    .split(',')
    .map((key) => key.trim())
    .filter((key) => key !== '')
  return keys.length === 0 ? {} : { encryption: { keys } }
}

/** A store, or a CliError with the first line of why not (a bad key names its option, never its value). */
function newStore(options: TieredStoreOptions): TieredStore {
  try {
    return new TieredStore({ ...options, ...encryption() })
  } catch (error) {
    const message = String((error as Error).message).split('\n')[0] as string
    throw new CliError(message.includes('encryption.keys') ? `${KEYS_ENV}: ${message}` : message)
  }
}

/** Counts the stored sessions that did not decode; every other error reaches the command as a rejection. */
function countUndecodable(store: TieredStore): () => number {
  let count = 0
  store.on('error', (error: { code?: string }) => {
    if (error.code === ErrorCodes.DECODE_FAILED) count++
  })
  return () => count
}

/** Opens the store of `--db` or `--redis` (exactly one must be given). */
export async function openStore(
  flags: Record<string, string | boolean>,
  spec: CommandSpec,
  options: OpenStoreOptions,
): Promise<OpenedStore> {
  checkStoreFlags(flags, spec)
  const plainIds = flags['plain-ids'] === true
  if (typeof flags.db === 'string') {
    const path = flags.db
    const exists = existsSync(path)
    if (options.mustExist && !exists) throw new CliError(`no such file: ${path}`)
    if (exists && !statSync(path).isFile()) throw new CliError(`not a file: ${path}`)
    let stored: 'sha256' | 'plain' | undefined
    try {
      // NB: an existing file is opened keyed as it is, so the tool never moves a running app's rows.
      stored = storedIdMode(path)
    } catch (error) {
      throw new CliError(`cannot read ${path}: ${String((error as Error).message).split('\n')[0]}`)
    }
    const hashIds = stored === undefined ? !plainIds : stored === 'sha256'
    if (stored === 'sha256' && plainIds)
      throw new CliError(`${path} keys its sessions by hashed ids: drop --plain-ids`, 2)
    const sweepBatchSize = options.sweepBatchSize
    const store = newStore({
      disk: { path },
      hashIds,
      ...(sweepBatchSize === undefined ? {} : { sweepBatchSize }),
    })
    return { mode: 'local', store, path, hashIds, undecodable: countUndecodable(store) }
  }
  const url = flags.redis as string
  // NB: checked with a connection of our own first, for one clear line when Redis cannot be reached.
  await closeRedis(await connectRedis(url))
  const hashIds = !plainIds
  const store = newStore({ redis: { url }, prefix: flags.prefix as string, disk: false, hashIds })
  const undecodable = countUndecodable(store)
  await store.ready()
  return { mode: 'shared', store, url, hashIds, undecodable }
}

/** Throws a CliError (exit 1) when stored sessions did not decode (after the command's output). */
export function checkDecoded(opened: OpenedStore): void {
  const count = opened.undecodable()
  if (count === 0) return
  throw new CliError(
    `${count} stored session(s) did not decode (TS_DECODE_FAILED) and were left out; ` +
      `if the store is encrypted, give its keys in ${KEYS_ENV}`,
  )
}

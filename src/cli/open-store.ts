// The store a command works on, from `--db PATH` (a TieredStore in local mode on that SQLite file) or `--redis
// URL` (a TieredStore in shared mode without a disk tier): one clear line when it cannot be opened or reached.

import { existsSync, statSync } from 'node:fs'
import { TieredStore } from '../store.js'
import { idKeysOf } from '../tiers/sqlite-file.js'
import type { CommandSpec } from './args.js'
import { CliError } from './cli-error.js'
import { closeRedis, connectRedis } from './redis-client.js'

/** An open store, which kind it is, and whether it keys sessions by hashed ids (`hashIds`). */
export type OpenedStore = (
  | { readonly mode: 'local'; readonly path: string }
  | { readonly mode: 'shared'; readonly url: string }
) & { readonly store: TieredStore; readonly hashIds: boolean }

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
    try {
      // NB: an existing file is opened keyed as it is, so the tool never moves a running app's rows.
      const hashIds = exists ? idKeysOf(path) === 'sha256' : !plainIds
      if (exists && hashIds && plainIds)
        throw new CliError(`${path} keys its sessions by hashed ids: drop --plain-ids`, 2)
      const sweepBatchSize = options.sweepBatchSize
      const store = new TieredStore({
        disk: { path },
        hashIds,
        ...(sweepBatchSize === undefined ? {} : { sweepBatchSize }),
      })
      return { mode: 'local', store, path, hashIds }
    } catch (error) {
      if (error instanceof CliError) throw error
      throw new CliError(String((error as Error).message).split('\n')[0] as string)
    }
  }
  const url = flags.redis as string
  // NB: checked with a connection of our own first, for one clear line when Redis cannot be reached.
  await closeRedis(await connectRedis(url))
  const hashIds = !plainIds
  const store = new TieredStore({ redis: { url }, prefix: flags.prefix as string, disk: false, hashIds })
  // NB: a failure the tool meets is thrown to the command, which reports it in one line.
  store.on('error', () => undefined)
  await store.ready()
  return { mode: 'shared', store, url, hashIds }
}

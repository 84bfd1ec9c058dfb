// The store a command works on, from `--db PATH` (a TieredStore in local mode on that SQLite file) or `--redis
// URL` (a TieredStore in shared mode without a disk tier): one clear line when it cannot be opened or reached.

import { existsSync, statSync } from 'node:fs'
import { TieredStore } from '../store.js'
import type { CommandSpec } from './args.js'
import { CliError } from './cli-error.js'
import { closeRedis, connectRedis } from './redis-client.js'

/** An open store and which kind it is. */
export type OpenedStore =
  | { readonly mode: 'local'; readonly store: TieredStore; readonly path: string }
  | { readonly mode: 'shared'; readonly store: TieredStore; readonly url: string }

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
  if (typeof flags.db === 'string') {
    const path = flags.db
    if (options.mustExist && !existsSync(path)) throw new CliError(`no such file: ${path}`)
    if (existsSync(path) && !statSync(path).isFile()) throw new CliError(`not a file: ${path}`)
    try {
      const sweepBatchSize = options.sweepBatchSize
      const store = new TieredStore({
        disk: { path },
        ...(sweepBatchSize === undefined ? {} : { sweepBatchSize }),
      })
      return { mode: 'local', store, path }
    } catch (error) {
      throw new CliError(String((error as Error).message).split('\n')[0] as string)
    }
  }
  const url = flags.redis as string
  // NB: checked with a connection of our own first, for one clear line when Redis cannot be reached.
  await closeRedis(await connectRedis(url))
  const store = new TieredStore({ redis: { url }, prefix: flags.prefix as string, disk: false })
  // NB: a failure the tool meets is thrown to the command, which reports it in one line.
  store.on('error', () => undefined)
  await store.ready()
  return { mode: 'shared', store, url }
}

// `rekey`: every stored session rewritten as it is, each atomically on its latest version, so its payload is
// sealed with the first encryption key (rows written under an older key, or before encryption, move to it).
// Online: an app's write made meanwhile is what gets rewritten, never undone.

import type { TieredSessionError } from '../errors.js'
import { ErrorCodes, isTieredSessionError } from '../errors.js'
import type { EngineContext } from './context.js'

/** Sessions rewritten at once. */
const BATCH = 64

/** What a rekey did. */
export interface RekeyCounts {
  /** Sessions rewritten under the first key. */
  readonly rewritten: number
  /** Sessions gone or expired before their turn. */
  readonly gone: number
  /** Sessions that did not decode with any of the keys (left as they are, reported). */
  readonly undecodable: number
}

/** Rewrites every stored session; `onBatch` hears how many each batch handled. */
export async function rekeyAll(ctx: EngineContext, onBatch: (handled: number) => void): Promise<RekeyCounts> {
  const counts = { rewritten: 0, gone: 0, undecodable: 0 }
  const keys = await ctx.authority.ids()
  for (let i = 0; i < keys.length; i += BATCH) {
    const batch = keys.slice(i, i + BATCH)
    const outcomes = await Promise.all(batch.map((key) => rewrite(ctx, key)))
    for (const outcome of outcomes) counts[outcome]++
    onBatch(batch.length)
  }
  return counts
}

/** Rewrites one session (its stored key) as it is. */
async function rewrite(ctx: EngineContext, key: string): Promise<keyof RekeyCounts> {
  try {
    const result = await ctx.authority.update(
      key,
      (current) => ({
        payload: current.payload,
        expiresAt: current.expiresAt,
        userId: current.userId,
        createdAt: current.createdAt,
      }),
      // NB: the copies in memory hold the same data; dropped all the same, so no copy outlives its row's version.
      { onCommit: () => ctx.forget(key) },
    )
    return result.status === 'written' ? 'rewritten' : 'gone'
  } catch (error) {
    if (isTieredSessionError(error) && error.code === ErrorCodes.DECODE_FAILED) {
      ctx.report(error as TieredSessionError)
      return 'undecodable'
    }
    return ctx.fail(error)
  }
}

// Shared mode with `hashIds`: sessions Redis still holds under their plain ids (written by 0.1.0 or with
// `hashIds: false`) — found on a miss so they can be moved to their hashed keys, and purged without a tombstone.

import type { SessionObject } from '../codec.js'
import { ErrorCodes, wrapError } from '../errors.js'
import type { EngineContext } from './context.js'

/** Reads and removes sessions kept under plain ids, when Redis is reachable (best effort). */
export class PlainIds {
  readonly #ctx: EngineContext

  constructor(context: EngineContext) {
    this.#ctx = context
  }

  /** The live session Redis holds under the plain id `sid`, or undefined (none, unreachable, undecodable). */
  async find(sid: string): Promise<SessionObject | undefined> {
    const ctx = this.#ctx
    const redis = ctx.shared?.redis
    if (redis === undefined || !ctx.shared?.connection.usable) return undefined
    try {
      const record = await redis.get(sid)
      if (record === undefined || record.expiresAt <= ctx.now()) return undefined
      return ctx.decode(record)
    } catch (error) {
      ctx.report(
        wrapError(ErrorCodes.REDIS_UNAVAILABLE, 'reading a session under its plain id failed', error),
      )
      return undefined
    }
  }

  /** Deletes the session kept under the plain id `sid` (no tombstone: its key would keep the id on the floor). */
  async purge(sid: string): Promise<void> {
    const ctx = this.#ctx
    const redis = ctx.shared?.redis
    if (redis === undefined || !ctx.shared?.connection.usable) return
    try {
      await redis.purge(sid)
    } catch (error) {
      ctx.report(
        wrapError(ErrorCodes.REDIS_UNAVAILABLE, 'deleting a session under its plain id failed', error),
      )
    }
  }
}

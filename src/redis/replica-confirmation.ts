// redis.waitForReplicas: whether enough replicas hold the writes sent so far to the node of a key (WAIT on that
// node), without letting a master left with too few replicas stall every request.

import { ErrorCodes, isTieredSessionError } from '../errors.js'
import type { Budget } from './budget.js'
import type { RedisConnection } from './connection.js'

/** Of a budget, what WAIT leaves for the round trip (ms). */
const WAIT_MARGIN_MS = 20

/** The replicas of a node that are connected and in sync, from its INFO replication text. */
function onlineReplicas(info: unknown): number {
  return String(info).match(/^slave\d+:.*state=online/gm)?.length ?? 0
}

/** Options of {@link ReplicaConfirmation}. */
export interface ReplicaConfirmationOptions {
  readonly connection: RedisConnection
  /** Replicas that must confirm a write; 0 confirms every write at once. */
  readonly replicas: number
  /** WAIT's own timeout, in ms (below the command timeout, so a lagging replica is no outage). */
  readonly timeoutMs: number
}

/** WAIT after writes, with a non-blocking INFO check after a shortfall. */
export class ReplicaConfirmation {
  readonly #options: ReplicaConfirmationOptions
  /** True after a WAIT the replicas did not answer in time: the next confirmation asks INFO first. */
  #short = false

  constructor(options: ReplicaConfirmationOptions) {
    this.#options = options
  }

  get replicas(): number {
    return this.#options.replicas
  }

  /**
   * Whether the replicas hold the writes sent so far to the node of `key` (WAIT on that node, pipelined behind
   * an EXISTS of the key so that a Cluster sends it there; it blocks this connection until they confirm or the
   * timeout passes). After a shortfall it first asks the node (INFO, which does not block) whether that many
   * replicas are online, and answers false without a WAIT while they are not.
   */
  async confirm(key: string, budget?: Budget): Promise<boolean> {
    const { connection, replicas } = this.#options
    if (replicas === 0) return true
    if (this.#short) {
      const info = await connection.run(
        'a replica check',
        (c) => c.pipeline().exists(key).info('replication').exec(),
        budget,
      )
      if (onlineReplicas(info?.[1]?.[1]) < replicas) return false
      this.#short = false
    }
    // NB: WAIT answers within its own timeout, so it gets what is left of the budget less a margin for the
    // round trip; with (almost) nothing left the write counts as unconfirmed (WAIT 0 would block for ever).
    const cap = this.#options.timeoutMs
    const timeoutMs =
      budget === undefined
        ? cap
        : Math.min(cap, Math.floor(budget.left(Number.POSITIVE_INFINITY)) - WAIT_MARGIN_MS)
    if (timeoutMs < 1) return false
    // NB: WAIT blocks by design: a reply that comes late (a busy event loop, a slow network) is a shortfall, and
    // no sign of a hung Redis (which would send the next writes to the outbox alone).
    let replies: Array<[Error | null, unknown]> | null
    try {
      replies = await connection.run(
        'a replica confirmation',
        (c) => c.pipeline().exists(key).wait(replicas, timeoutMs).exec(),
        budget,
        true,
      )
    } catch (error) {
      if (!isTieredSessionError(error) || error.code !== ErrorCodes.REDIS_UNAVAILABLE) throw error
      if (timeoutMs === cap) this.#short = true
      return false
    }
    const [error, confirmed] = replies?.[1] ?? [null, 0]
    if (error === null && Number(confirmed) >= replicas) return true
    // NB: a WAIT cut short by the budget says nothing about the replicas.
    if (timeoutMs === cap) this.#short = true
    return false
  }
}
